"""The appraisal service app: ledger (台账), annual and term rounds, grades, notices and commendations."""

import dataclasses

from fastapi import FastAPI

from services.appraisal.config import AppraisalSettings
from services.appraisal.consumers import HANDLERS
from services.appraisal.models import metadata, platform
from services.appraisal.router import router
from services.appraisal.worklists import deadline_compute
from shared.app import ServiceSpec, create_service_app
from shared.deadlines import deadlines_router

DESCRIPTION = """人民监督员考核服务（《威海市人民监督员履职管理实施办法》第二十五条至第三十九条）。

- 履职工作台账（R28.1）：由 FeedbackSigned、OpinionAdoptionNotified、TrainingRecorded 事件及司法局录入的记录生成；
  按人按年查看、导出 xlsx；区市司法局仅见本辖区，人民监督员仅见本人。
- 考核程序（R34.1）：启动 → 个人总结 → 全面了解 → 区市征求同级检察院意见后提出建议 → 市司法局拟定并征求市检察院意见
  → 优秀名单公示（自服务器当日起）→ 确定；每一步记录操作人和时间；确定前可说明理由退回上一步或更正等次，
  确定后可说明理由更正结果（发布新版本，原结果保留）；确定后 5 个工作日内录入、10 个工作日内上报，逾期列出。
- 等次（R30.1–R33.1）：优秀一般不超过参加考核人数的 15%（向下取整）：拟定等次时即提示超出，须记录理由并经另一名
  市司法局人员批准方可继续；系统按台账提出优秀候选和建议等次，由人确定；优秀须逐项确认第三十一条五项条件并注明依据；
  不合格须有第三十二条情形、考核年度内拟定前的提醒教育记录及提醒后仍未改正的记录。
- 陈述申辩（R35.1）、任期考核（R36.1）、结果运用与通知（R37.1–R39.1）。
"""

spec = ServiceSpec(name="appraisal", title="人民监督员考核服务", metadata=metadata, platform=platform,
                   routers=[router], handlers=HANDLERS, description=DESCRIPTION)


def create_app(settings: AppraisalSettings | None = None) -> FastAPI:
    settings = settings or AppraisalSettings()
    # GET /deadlines (shared/deadlines.py): its items depend on the settings' periods (R29.1)
    deadlines = deadlines_router(deadline_compute(settings))
    return create_service_app(dataclasses.replace(spec, routers=[*spec.routers, deadlines]), settings)

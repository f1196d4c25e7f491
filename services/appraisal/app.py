"""The appraisal service app: ledger (台账), annual and term rounds, grades, notices and commendations."""

from fastapi import FastAPI

from services.appraisal.config import AppraisalSettings
from services.appraisal.consumers import HANDLERS
from services.appraisal.models import metadata, platform
from services.appraisal.router import router
from shared.app import ServiceSpec, create_service_app

DESCRIPTION = """人民监督员考核服务（《威海市人民监督员管理办法》第二十五条至第三十九条）。

- 履职工作台账（R28.1）：由 FeedbackSigned、OpinionAdoptionNotified、TrainingRecorded 事件及司法局录入的记录生成；
  按人按年查看、导出 xlsx；区市司法局仅见本辖区，人民监督员仅见本人。
- 考核程序（R34.1）：启动 → 个人总结 → 全面了解 → 区市建议 → 市司法局拟定并征求市检察院意见 → 优秀名单公示 → 确定；
  每一步记录操作人和时间；确定后 5 个工作日内录入、10 个工作日内上报，逾期列出。
- 等次（R30.1–R33.1）：优秀不超过参加考核人数的 15%（向下取整）；系统按台账提出优秀候选和建议等次，由人确定；
  不合格须有第三十二条情形且有提醒教育记录。
- 陈述申辩（R35.1）、任期考核（R36.1）、结果运用与通知（R37.1–R39.1）。
"""

spec = ServiceSpec(name="appraisal", title="人民监督员考核服务", metadata=metadata, platform=platform,
                   routers=[router], handlers=HANDLERS, description=DESCRIPTION)


def create_app(settings: AppraisalSettings | None = None) -> FastAPI:
    return create_service_app(spec, settings or AppraisalSettings())

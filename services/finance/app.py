"""The finance service app: rates, annual plan and budget, subsidy lines, travel claims, disbursement table."""

import dataclasses

from fastapi import FastAPI

from services.finance.config import FinanceSettings
from services.finance.consumers import HANDLERS
from services.finance.models import metadata, platform
from services.finance.router import router
from services.finance.worklists import deadline_compute
from shared.app import ServiceSpec, create_service_app
from shared.deadlines import deadlines_router

DESCRIPTION = """人民监督员经费服务（《威海市人民监督员履职管理实施办法》第四十一条至第四十三条）。

- 补助标准（N-RATE）：按活动类型分版本，按活动日期适用；调整标准不影响已生成的明细；追溯生效的标准须另一名财务人员批准。
- 年度计划与预算（R41.1）：检察院提交下一年度活动计划（活动次数 × 每次人民监督员人数），
  预算 = 计划人次 × 补助标准 + 差旅费预估；超出预算的批准须另一名财务人员说明理由批准超支。
- 履职补助（R42.1）：仅依据已签字的《威海市人民监督员履职情况反馈表》（FeedbackSigned）生成，每人每次活动一条；
  流程 草稿 → 已审核 → 已批准 → 已支付（支付前可驳回并说明理由），不得自行批准，每一步留痕；
  支付前须核验检察院出具的履职情况反馈函。
- 差旅费（R43.1）：附票据，超标准提示，须对应所参加的活动，限期申报，可部分核定或驳回。
- 《威海市人民监督员履职补助发放表》：草稿、签发（批次号，定稿不再变动，逾期明细列入下期）、更正（新版本，原版本保留），
  JSON 与 xlsx，显示支付状态，银行账号默认脱敏；对账检查。
金额一律以“分”为单位的整数。
"""

spec = ServiceSpec(name="finance", title="人民监督员经费服务", metadata=metadata, platform=platform,
                   routers=[router], handlers=HANDLERS, description=DESCRIPTION)


def create_app(settings: FinanceSettings | None = None) -> FastAPI:
    settings = settings or FinanceSettings()
    # GET /deadlines (shared/deadlines.py): items are due by their month's table (DISBURSEMENT_DUE_DAY, R42.1)
    deadlines = deadlines_router(deadline_compute(settings))
    return create_service_app(dataclasses.replace(spec, routers=[*spec.routers, deadlines]), settings)

"""The casework service app: activities, requests, materials, opinions, feedback forms, reports."""

import dataclasses

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter

from services.casework import deadlines
from services.casework.activities.router import router as activities_router
from services.casework.config import CaseworkSettings
from services.casework.consumers import build_handlers
from services.casework.edge import problem
from services.casework.feedback.router import router as feedback_router
from services.casework.models import metadata, platform
from services.casework.receipts import check_receipts, close_verifier, selection_receipt_fetch
from services.casework.reports.router import router as reports_router
from services.casework.requests.router import router as requests_router
from services.casework.rules import RuleViolation
from services.casework.statistics.router import router as statistics_router
from shared.app import PeriodicJob, ServiceSpec, create_service_app
from shared.db import read
from shared.deadlines import deadlines_router
from shared.errors import problem_response

DESCRIPTION = """检察院办案活动与人民监督员监督（《威海市人民监督员履职管理实施办法》第十条至第二十条）。

- 办案活动（N-ACT、N-MUST：法定应当邀请的审查听证事项自动标记）；取消与改期（原申请撤回、新申请关联原申请）；
  申请选派人民监督员，提前通知期限当即审查（R10.1、R10.2）；确认名单与联系方式（R12.1、R15.1）。
- 抽选协议（DRAW.md）：申请只附本院随机数的承诺，市司法局受理后才公开随机数；逐轮核对抽选回执，不符即告警。
- 回避（R13.2）；案件材料仅向确认参加的人民监督员提供，每次查阅记入审计（R15.1、R3.1）。
- 监督意见如实记录并保留历次版本，检察院不得改写人民监督员本人书写的意见（R16.1）；
  《威海市人民监督员履职情况反馈表》在活动开始后现场签字，各人签字各自生效，签字后内容固定（R17.1）。
- 采纳情况告知（R18.1），打印的反馈表以附页载明采纳决定及日期；观摩人员（R19.1）；
  履职情况通报与月度转送及逾期名单（R20.1、R20.2）。
外部系统的 POST 可携带 `Idempotency-Key`，重试返回首次结果。
"""

spec = ServiceSpec(name="casework", title="检察办案活动监督服务", metadata=metadata, platform=platform,
                   routers=[activities_router, requests_router, feedback_router, reports_router, statistics_router],
                   build_handlers=build_handlers, description=DESCRIPTION)


def create_app(settings: CaseworkSettings | None = None) -> FastAPI:
    """The app; tests replace `app.state.receipt_fetch` (selection's receipts) or call `check_receipts` directly."""
    settings = settings or CaseworkSettings()
    jobs = [PeriodicJob("receipt-check", settings.receipt_check_seconds, check_receipts)]

    async def due_items(session, query):
        """GET /deadlines (R15.1, R17.1, R20.1, R20.2) with the app's working-day calendar."""
        return await deadlines.compute(session, query, calendar=app.state.calendar)

    routers = [*spec.routers, deadlines_router(due_items)]
    app = create_service_app(dataclasses.replace(spec, routers=routers, jobs=jobs, on_shutdown=[close_verifier]),
                             settings)
    app.state.receipt_fetch = selection_receipt_fetch(settings)
    read.install(app)  # the activities work list's read-only engine

    @app.exception_handler(RuleViolation)
    async def _rule_violation(request: Request, exc: RuleViolation) -> JSONResponse:
        """The edge: a rule's domain error becomes its problem+json answer (the transaction was rolled back)."""
        refusal = problem(exc)
        return problem_response(refusal.status, refusal.code, refusal.title, refusal.detail, request.url.path,
                                **refusal.extra)

    # DRAW.md step 5 "an alert metric": alert on any increase
    app.state.receipt_mismatches = Counter("draw_receipt_mismatches", "Draw receipts that failed casework's check",
                                           ["service"], registry=app.state.metrics.registry)
    return app

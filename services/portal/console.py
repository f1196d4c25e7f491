"""The bureau's console: selection requests, their call list in draw order, the outcomes of each call (R12.1).

Every page calls the services with the signed-in clerk's own token; the services decide and check
(district scope R2.1, draw order R12.1, evidence of R12.1 for "unreachable"), the portal relays their
Chinese refusals. Nothing here keeps state: a stale form (a second tab) is refused by the service (its
409 shown as it is), never applied twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from services.portal.backend import ServiceError
from services.portal.web import SHANGHAI, PageError, portal_of
from shared import clock

router = APIRouter(prefix="/console")
# who works the requests and the call list (selection's READERS and CALLERS; recording needs bureau_admin)
CLERKS = ("bureau_admin", "district_bureau", "auditor")
CALLERS = ("bureau_admin", "district_bureau")
# selection's RequestStatus with its STATUS_LABELS ("" is every state)
REQUEST_STATES = {
    "": "全部", "awaiting_consent": "待决定是否同意缩短通知期限", "accepted": "已受理，待抽选",
    "drawn": "已抽选，联络中", "staffed": "人员已确认", "refused": "不予受理", "cancelled": "已撤回",
}
OUTCOMES = {"confirmed": "确认参加", "declined": "有正当理由不能参加", "unreachable": "无法联系", "recused": "需回避"}
ATTEMPT_CHANNELS = {"phone": "电话", "sms": "短信", "in_person": "当面", "email": "电子邮件"}


def parse_uuid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise PageError(404, "not_found", f"{what}不存在", f"“{value[:60]}”不是有效的编号。") from exc


@router.get("/requests", summary="抽选申请工作清单")
async def requests_page(request: Request, status: str = "", short_staffed: str = "", cursor: str | None = None,
                        ) -> Response:
    portal = portal_of(request)
    session = portal.signed_in(request, *CLERKS)
    if status not in REQUEST_STATES:
        raise PageError(422, "validation_error", "未知的申请状态",
                        f"可选的状态：{'、'.join(REQUEST_STATES.values())}。")
    params = {"status": status or None, "short_staffed": "true" if short_staffed else None, "cursor": cursor,
              "limit": 25}
    answer = await request.app.state.backend.get("selection", "/requests", session.token, params)
    return portal.page(request, "console/requests.html", session, active="requests", answer=answer,
                       states=REQUEST_STATES, status=status, short_staffed=bool(short_staffed))


async def _request_view(request: Request, request_id: str, token: str) -> dict[str, Any]:
    backend = request.app.state.backend
    detail = await backend.get("selection", f"/requests/{request_id}", token)
    try:
        calls = await backend.get("selection", f"/requests/{request_id}/call-list", token)
    except ServiceError as error:  # an auditor reads the request, not the names and phones
        if error.status != 403:
            raise
        calls = None
    # the first attempt defaults to now (the clerk is on the phone); it stays the clerk's stated time (R12.1)
    now_local = clock.now().astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M:%S")
    return {"detail": detail, "calls": calls, "request_states": REQUEST_STATES, "now_local": now_local}


@router.get("/requests/{request_id}", summary="抽选申请详情与联络名单")
async def request_page(request: Request, request_id: str) -> Response:
    portal = portal_of(request)
    session = portal.signed_in(request, *CLERKS)
    request_id = parse_uuid(request_id, "抽选申请")
    view = await _request_view(request, request_id, session.token)
    return portal.page(request, "console/request.html", session, active="requests", outcomes=OUTCOMES,
                       channels=ATTEMPT_CHANNELS, done=request.query_params.get("done"), revealed=None, **view)


@router.post("/requests/{request_id}/calls/{supervisor_id}/phone", summary="查看完整电话（记入审计）")
async def reveal_phone(request: Request, request_id: str, supervisor_id: str) -> Response:
    """The full phone of the person to call, shown on this answer only (POST: audited by selection, never in a URL)."""
    portal = portal_of(request)
    session, _ = await portal.signed_form(request, *CALLERS)
    request_id, supervisor_id = parse_uuid(request_id, "抽选申请"), parse_uuid(supervisor_id, "人民监督员")
    revealed = await request.app.state.backend.post(
        "selection", f"/requests/{request_id}/call-list/{supervisor_id}/phone", session.token)
    view = await _request_view(request, request_id, session.token)
    return portal.page(request, "console/request.html", session, active="requests", outcomes=OUTCOMES,
                       channels=ATTEMPT_CHANNELS, done=None, revealed={"supervisor_id": supervisor_id, **revealed},
                       **view)


def _attempts(form: dict[str, str]) -> list[dict[str, str]]:
    """The contact attempts the clerk states (R12.1: "unreachable" needs two, apart): Shanghai local times."""
    attempts = []
    for n in (1, 2, 3):
        at = form.get(f"attempt{n}_at", "").strip()
        if not at:
            continue
        try:
            moment = datetime.fromisoformat(at)
        except ValueError as exc:
            raise PageError(422, "validation_error", "联系时间格式错误",
                            f"第 {n} 次联系的时间无法识别：{at[:40]}") from exc
        channel = form.get(f"attempt{n}_channel", "phone")
        if channel not in ATTEMPT_CHANNELS:
            raise PageError(422, "validation_error", "联系方式无效", "请选择电话、短信、当面或电子邮件。")
        local = moment if moment.tzinfo else moment.replace(tzinfo=SHANGHAI)
        attempts.append({"at": local.isoformat(), "channel": channel})
    return attempts


@router.post("/requests/{request_id}/calls/{supervisor_id}", summary="记录联络结果（R12.1、R14.2）")
async def record_call(request: Request, request_id: str, supervisor_id: str) -> Response:
    """One outcome for one person, relayed to selection (which keeps the draw order and its evidence rules)."""
    portal = portal_of(request)
    session, form = await portal.signed_form(request, *CALLERS)
    request_id, supervisor_id = parse_uuid(request_id, "抽选申请"), parse_uuid(supervisor_id, "人民监督员")
    draw_id = parse_uuid(form.get("draw_id", ""), "抽选轮次")
    outcome = form.get("outcome", "")
    if outcome not in OUTCOMES:
        raise PageError(422, "validation_error", "请选择联络结果", f"可选：{'、'.join(OUTCOMES.values())}。")
    body: dict[str, Any] = {"supervisor_id": supervisor_id, "outcome": outcome, "attempts": _attempts(form)}
    if reason := form.get("reason", "").strip():
        body["reason"] = reason
    await request.app.state.backend.post("selection", f"/draws/{draw_id}/contacts", session.token, body)
    return RedirectResponse(f"/console/requests/{request_id}?done={supervisor_id}#call-list", status_code=303)


@router.post("/requests/{request_id}/short-notice-decision", summary="决定是否同意缩短通知期限（R10.2）")
async def short_notice_decision(request: Request, request_id: str) -> Response:
    portal = portal_of(request)
    session, form = await portal.signed_form(request, "bureau_admin")
    request_id = parse_uuid(request_id, "抽选申请")
    if form.get("granted") not in ("true", "false"):
        raise PageError(422, "validation_error", "请选择同意或不同意", None)
    body: dict[str, Any] = {"granted": form["granted"] == "true"}
    if reason := form.get("reason", "").strip():
        body["reason"] = reason
    await request.app.state.backend.post("selection", f"/requests/{request_id}/short-notice-decision",
                                         session.token, body)
    return RedirectResponse(f"/console/requests/{request_id}", status_code=303)

"""The supervisor's own pages, phone first: my assignments (confirm, decline, recuse), an activity with its
materials while allowed (R15.1), the feedback form to sign on site (R17.1), my record (the year's ledger of R28.1,
my training, my subsidies of R42.1), and my messages (inbox).

Self only: every call carries the supervisor's own token, and the services answer for that person alone
(selection's /assignments, casework's participant check, notify's audience). The portal adds nothing.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from services.appraisal.rules import RECIPIENT_ZH
from services.portal.backend import ServiceError
from services.portal.console import parse_uuid, parts_of, result_notices
from services.portal.finance_pages import LINE_STATES
from services.portal.web import PageError, portal_of
from services.registry.rules import FORMAT_ZH, KIND_ZH
from shared import clock

router = APIRouter(prefix="/me")
SUPERVISOR = "supervisor"
ASSIGNMENT_LABELS = {"pending": "待确认", "confirmed": "已确认参加", "declined": "不能参加", "unreachable": "未能联系",
                     "recused": "已回避", "skipped": "未轮到", "released": "已取消", "absent": "缺席"}
SIGNING_METHODS = {"on_site_token": "现场签字确认"}


async def _unread(request: Request, token: str) -> int | None:
    """How many of my messages are unread (None when the notification service is down: the page goes on)."""
    try:
        answer = await request.app.state.backend.get("notify", "/inbox", token, {"unread": "true", "limit": 1})
        return answer["unread"]
    except ServiceError:
        return None


@router.get("", summary="我的抽选与参加")
async def my_page(request: Request) -> Response:
    portal = portal_of(request)
    session = portal.signed_in(request, SUPERVISOR)
    assignments = await request.app.state.backend.get("selection", "/assignments", session.token)
    return portal.page(request, "me/assignments.html", session, active="me", assignments=assignments,
                       labels=ASSIGNMENT_LABELS, unread=await _unread(request, session.token),
                       done=request.query_params.get("done"))


@router.post("/assignments/{request_id}/{action}", summary="确认参加、不能参加或自行回避")
async def answer_assignment(request: Request, request_id: str, action: str) -> Response:
    """confirm; decline with a reason (R14.2); recusal with its ground (R13.1): relayed to selection."""
    portal = portal_of(request)
    session, form = await portal.signed_form(request, SUPERVISOR)
    request_id = parse_uuid(request_id, "抽选")
    text = form.get("reason", "").strip()
    if action == "confirm":
        body: dict = {}
    elif action == "decline":
        body = {"reason": text} if text else {}
    elif action == "recusal":
        if not text:
            raise PageError(422, "validation_error", "请填写回避理由", "自行回避须说明理由（R13.1）。")
        body = {"ground": text}
    else:
        raise PageError(404, "not_found", "页面不存在", None)
    await request.app.state.backend.post("selection", f"/assignments/{request_id}/{action}", session.token, body)
    return RedirectResponse(f"/me?done={action}", status_code=303)


@router.get("/activities/{activity_id}", summary="活动详情、案件材料与反馈表")
async def activity_page(request: Request, activity_id: str) -> Response:
    portal = portal_of(request)
    session = portal.signed_in(request, SUPERVISOR)
    activity_id = parse_uuid(activity_id, "活动")
    backend = request.app.state.backend
    activity = await backend.get("casework", f"/activities/{activity_id}", session.token)
    try:
        materials, materials_error = await backend.get("casework", f"/activities/{activity_id}/materials",
                                                       session.token), None
    except ServiceError as error:  # R15.1: materials only while allowed; the service says why not
        materials, materials_error = [], error
    form = await backend.get("casework", f"/activities/{activity_id}/feedback-form", session.token)
    me = session.user.supervisor_id if session.user else None
    opinion = next((p for p in (form.get("content") or {}).get("participants", []) if p.get("supervisor_id") == me),
                   None)
    signed = next((s for s in form.get("signatures", []) if s.get("supervisor_id") == me), None)
    return portal.page(request, "me/activity.html", session, active="me", activity=activity, materials=materials,
                       materials_error=materials_error, form=form, opinion=opinion, signed=signed,
                       methods=SIGNING_METHODS, done=request.query_params.get("done"))


@router.get("/activities/{activity_id}/materials/{material_id}", summary="查阅案件材料（记入审计）")
async def material(request: Request, activity_id: str, material_id: str) -> Response:
    portal = portal_of(request)
    session = portal.signed_in(request, SUPERVISOR)
    activity_id, material_id = parse_uuid(activity_id, "活动"), parse_uuid(material_id, "材料")
    answer = await request.app.state.backend.download(
        "casework", f"/activities/{activity_id}/materials/{material_id}", session.token)
    media_type = answer.headers.get("content-type", "application/octet-stream")
    return Response(answer.content, media_type=media_type,
                    headers={"Cache-Control": "no-store", "Content-Disposition": "inline",
                             "X-Content-SHA256": answer.headers.get("x-content-sha256", "")})


@router.post("/activities/{activity_id}/sign", summary="现场签字确认反馈表（R17.1）")
async def sign(request: Request, activity_id: str) -> Response:
    """The form's content hash the supervisor saw goes with the signature: a form changed since is refused."""
    portal = portal_of(request)
    session, form = await portal.signed_form(request, SUPERVISOR)
    activity_id = parse_uuid(activity_id, "活动")
    content_hash = form.get("content_hash", "")
    if len(content_hash) != 64:
        raise PageError(422, "validation_error", "反馈表内容标识缺失", "请返回重新打开反馈表后再签字。")
    await request.app.state.backend.post("casework", f"/activities/{activity_id}/feedback-form/signatures",
                                         session.token, {"method": "on_site_token", "content_hash": content_hash})
    return RedirectResponse(f"/me/activities/{activity_id}?done=signed", status_code=303)


@router.post("/activities/{activity_id}/opinion", summary="提交本人的监督意见（R16.1）")
async def opinion(request: Request, activity_id: str) -> Response:
    """My own opinion, kept verbatim by casework (which refuses it once the form is being signed)."""
    portal = portal_of(request)
    session, form = await portal.signed_form(request, SUPERVISOR)
    activity_id = parse_uuid(activity_id, "活动")
    text = form.get("text", "").strip()
    if not text:
        raise PageError(422, "validation_error", "请填写监督意见", None)
    me = session.user.supervisor_id if session.user else None
    await request.app.state.backend.put("casework", f"/activities/{activity_id}/opinions/{me}", session.token,
                                        {"text": text})
    return RedirectResponse(f"/me/activities/{activity_id}?done=opinion", status_code=303)


FIRST_YEAR = 2024  # the measures of 2024: no ledger before


@router.get("/record", summary="我的履职记录：台账、培训、补助")
async def record_page(request: Request, year: str | None = None) -> Response:
    """The year's ledger (appraisal, R28.1), my training (registry) and my subsidy lines (finance, R42.1), each read
    with my own token; a service that is down is named and the other parts still show."""
    portal = portal_of(request)
    session = portal.signed_in(request, SUPERVISOR)
    this_year = clock.today().year
    if year is None or year == "":
        year_number = this_year
    elif year.isdigit() and FIRST_YEAR <= int(year) <= this_year:
        year_number = int(year)
    else:
        raise PageError(422, "validation_error", "年度有误", f"请选择 {FIRST_YEAR} 至 {this_year} 年之间的年度。")
    me = session.user.supervisor_id if session.user else None
    parts = {"ledger": ("appraisal", f"/ledger/{me}/{year_number}", None),
             "training": ("registry", f"/supervisors/{me}/training", None),
             "appraisals": ("appraisal", f"/supervisors/{me}/appraisals", None),
             "lines": ("finance", "/subsidy-lines", {"supervisor_id": me, "from": f"{year_number}-01-01",
                                                     "to": f"{year_number}-12-31", "limit": 100})}
    view, errors = await parts_of(request, session.token, parts)
    view["notices"], more = await result_notices(request, session.token, me, view["appraisals"])
    errors += [e for e in more if all(e.service != x.service for x in errors)]
    if view["training"] is not None:  # registry answers every year; the page shows the one asked for
        view["training"] = [t for t in view["training"] if t["held_on"].startswith(str(year_number))]
    if view["lines"] is not None:
        view["paid_fen"] = sum(line["amount_fen"] for line in view["lines"]["items"] if line["status"] == "paid")
    return portal.page(request, "me/record.html", session, active="record", year=year_number, me=me,
                       years=list(range(this_year, FIRST_YEAR - 1, -1)), kinds=KIND_ZH, formats=FORMAT_ZH,
                       line_states=LINE_STATES, recipients=RECIPIENT_ZH, errors=errors, **view)


@router.get("/inbox", summary="我的消息")
async def inbox(request: Request, cursor: str | None = None) -> Response:
    portal = portal_of(request)
    session = portal.signed_in(request)
    answer = await request.app.state.backend.get("notify", "/inbox", session.token, {"cursor": cursor, "limit": 20})
    return portal.page(request, "me/inbox.html", session, active="inbox", answer=answer)


@router.post("/inbox/{message_id}/read", summary="标记为已读")
async def mark_read(request: Request, message_id: str) -> Response:
    portal = portal_of(request)
    session, _ = await portal.signed_form(request)
    message_id = parse_uuid(message_id, "消息")
    await request.app.state.backend.post("notify", f"/inbox/{message_id}/read", session.token)
    return RedirectResponse("/me/inbox", status_code=303)

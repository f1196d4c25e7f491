"""The bureau's console: selection requests, their call list in draw order, the outcomes of each call (R12.1).

Every page calls the services with the signed-in clerk's own token; the services decide and check
(district scope R2.1, draw order R12.1, evidence of R12.1 for "unreachable"), the portal relays their
Chinese refusals. Nothing here keeps state: a stale form (a second tab) is refused by the service (its
409 shown as it is), never applied twice.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from services.appraisal.rules import BACK as ROUND_BACK
from services.appraisal.rules import STATE_ZH as ROUND_STATE_ZH
from services.appraisal.rules import STATES as ROUND_STATES
from services.appraisal.rules import TRANSITIONS as ROUND_TRANSITIONS
from services.portal.backend import ServiceError
from services.portal.web import SHANGHAI, PageError, portal_of
from services.registry.rules import FORMAT_ZH, KIND_ZH, STATUS_ZH
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


def staffing_of(detail: dict[str, Any]) -> dict[str, Any]:
    """The request's live staffing line (R12.1): its state, the seats, how many confirmed and how many are waiting
    for an answer, and a version that changes whenever the state or anyone's status does (the open page then
    offers a reload: the call list is not rewritten under a clerk's hands). From selection's request detail, which
    carries ids only, so asking every few seconds puts no names in selection's audit log (the call list does)."""
    counts = Counter(c["status"] for c in detail["candidates"])
    marks = [detail["status"], sorted((c["supervisor_id"], c["round"], c["status"]) for c in detail["candidates"])]
    return {"status": detail["status"], "status_label": REQUEST_STATES.get(detail["status"], detail["status"]),
            "seats": detail["seats"], "confirmed": counts["confirmed"], "pending": counts["pending"],
            "shortfall": sum((detail.get("shortfall") or {}).values()),
            "version": hashlib.sha256(json.dumps(marks).encode()).hexdigest()[:16]}


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
    return {"detail": detail, "calls": calls, "request_states": REQUEST_STATES, "now_local": now_local,
            "staffing": staffing_of(detail), "refresh_seconds": request.app.state.settings.live_refresh_seconds}


@router.get("/requests/{request_id}", summary="抽选申请详情与联络名单")
async def request_page(request: Request, request_id: str) -> Response:
    portal = portal_of(request)
    session = portal.signed_in(request, *CLERKS)
    request_id = parse_uuid(request_id, "抽选申请")
    view = await _request_view(request, request_id, session.token)
    return portal.page(request, "console/request.html", session, active="requests", outcomes=OUTCOMES,
                       channels=ATTEMPT_CHANNELS, done=request.query_params.get("done"), revealed=None, **view)


@router.get("/requests/{request_id}/staffing", summary="人员确认情况（申请页面定时读取）")
async def request_staffing(request: Request, request_id: str) -> Response:
    portal = portal_of(request)
    session = portal.signed_in(request, *CLERKS)
    request_id = parse_uuid(request_id, "抽选申请")
    detail = await request.app.state.backend.get("selection", f"/requests/{request_id}", session.token)
    return JSONResponse(staffing_of(detail), headers={"Cache-Control": "no-store"})


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


# --- finance: subsidy lines (R42.1, four eyes) and the monthly table -------------------------------------
FINANCE_READERS = ("finance", "bureau_admin", "auditor")
LINE_STATES = {"": "全部", "draft": "待审核", "checked": "待批准", "approved": "已批准", "paid": "已支付",
               "rejected": "已驳回"}
LINE_ACTIONS = {"check": "审核通过", "approve": "批准"}


def parse_period(value: str) -> str:
    if len(value) != 7 or value[4] != "-" or not (value[:4] + value[5:]).isdigit() or not 1 <= int(value[5:]) <= 12:
        raise PageError(404, "not_found", "月份格式错误", "月份应写作 2026-11。")
    return value


@router.get("/finance/lines", summary="履职补助明细：审核与批准（四眼原则）")
async def lines_page(request: Request, status: str = "", period: str = "", cursor: str | None = None) -> Response:
    portal = portal_of(request)
    session = portal.signed_in(request, *FINANCE_READERS)
    if status not in LINE_STATES:
        raise PageError(422, "validation_error", "未知的明细状态", f"可选的状态：{'、'.join(LINE_STATES.values())}。")
    params = {"status": status or None, "period": parse_period(period) if period else None, "cursor": cursor,
              "limit": 25}
    answer = await request.app.state.backend.get("finance", "/subsidy-lines", session.token, params)
    return portal.page(request, "console/lines.html", session, active="finance", answer=answer, states=LINE_STATES,
                       status=status, period=period, actions=LINE_ACTIONS, done=request.query_params.get("done"))


@router.post("/finance/lines/{line_id}/{action}", summary="审核或批准一条明细")
async def line_action(request: Request, line_id: str, action: str) -> Response:
    """Relayed to finance, which keeps the four eyes (never approve what one checked) and the budget rule."""
    portal = portal_of(request)
    session, form = await portal.signed_form(request, "finance")
    line_id = parse_uuid(line_id, "补助明细")
    if action not in LINE_ACTIONS:
        raise PageError(404, "not_found", "页面不存在", None)
    await request.app.state.backend.post("finance", f"/subsidy-lines/{line_id}/{action}", session.token)
    back = form.get("back", "")
    back = back if back.startswith("/console/finance/lines") else "/console/finance/lines"
    return RedirectResponse(back + ("&" if "?" in back else "?") + f"done={action}", status_code=303)


@router.get("/finance/disbursements/{period}", summary="《威海市人民监督员履职补助发放表》")
async def disbursement_page(request: Request, period: str) -> Response:
    portal = portal_of(request)
    session = portal.signed_in(request, *FINANCE_READERS)
    period = parse_period(period)
    table = await request.app.state.backend.get("finance", f"/disbursements/{period}", session.token)
    return portal.page(request, "console/disbursement.html", session, active="finance", table=table, period=period)


# --- the roster (registry): search and a person's page, masked by default (R3.1) --------------------------
ROSTER_READERS = ("bureau_admin", "district_bureau", "auditor")
ROSTER_STATES = {"": "全部", **STATUS_ZH}  # the registry's own labels (R3.1 lists, R4.1 terms)
TRAINING_STATES = {"trained": "已完成初任培训", "pending": "初任培训待完成", "overdue": "初任培训逾期"}
ENDING_CHOICES = {"": "不限", "3": "3 个月内", "6": "6 个月内", "12": "12 个月内"}


@router.get("/roster", summary="人民监督员名册")
async def roster_page(request: Request, name: str = "", status: str = "", ending: str = "",
                      cursor: str | None = None) -> Response:
    """Search by name prefix, state and "terms ending in N months" (R4.1); registry scopes a district bureau (R2.1)."""
    portal = portal_of(request)
    session = portal.signed_in(request, *ROSTER_READERS)
    if status not in ROSTER_STATES or ending not in ENDING_CHOICES:
        raise PageError(422, "validation_error", "未知的筛选条件", "请通过页面上的选项筛选。")
    params = {"name": name.strip() or None, "status": status or None, "ending_within_months": ending or None,
              "cursor": cursor, "limit": 25}
    answer = await request.app.state.backend.get("registry", "/supervisors", session.token, params)
    return portal.page(request, "console/roster.html", session, active="roster", answer=answer, name=name,
                       status=status, ending=ending, states=ROSTER_STATES, endings=ENDING_CHOICES,
                       training_states=TRAINING_STATES)


async def _person_view(request: Request, supervisor_id: str, token: str, *, unmasked: bool) -> dict[str, Any]:
    """The person (masked unless revealed), their terms and training from the registry, this year's ledger from
    appraisal (a service that is down leaves its part empty and is named)."""
    backend = request.app.state.backend
    person = await backend.get("registry", f"/supervisors/{supervisor_id}", token,
                               {"unmasked": "true"} if unmasked else None)
    year = clock.today().year
    parts = {"appointments": ("registry", f"/supervisors/{supervisor_id}/appointments"),
             "training": ("registry", f"/supervisors/{supervisor_id}/training"),
             "ledger": ("appraisal", f"/ledger/{supervisor_id}/{year}")}
    view: dict[str, Any] = {"person": person, "year": year, "errors": []}
    for key, (service, path) in parts.items():
        try:
            view[key] = await backend.get(service, path, token)
        except ServiceError as error:
            view[key] = None
            view["errors"].append(error)
    return view


@router.get("/roster/{supervisor_id}", summary="人民监督员详情（脱敏）")
async def person_page(request: Request, supervisor_id: str) -> Response:
    portal = portal_of(request)
    session = portal.signed_in(request, *ROSTER_READERS)
    supervisor_id = parse_uuid(supervisor_id, "人民监督员")
    view = await _person_view(request, supervisor_id, session.token, unmasked=False)
    return portal.page(request, "console/person.html", session, active="roster", revealed=False,
                       states=ROSTER_STATES, kinds=KIND_ZH, formats=FORMAT_ZH, **view)


@router.post("/roster/{supervisor_id}/reveal", summary="查看完整身份号码与手机号（记入审计，R3.1）")
async def reveal_person(request: Request, supervisor_id: str) -> Response:
    """bureau_admin only (registry checks and audits it); shown on this answer only, never in a URL."""
    portal = portal_of(request)
    session, _ = await portal.signed_form(request, "bureau_admin")
    supervisor_id = parse_uuid(supervisor_id, "人民监督员")
    view = await _person_view(request, supervisor_id, session.token, unmasked=True)
    return portal.page(request, "console/person.html", session, active="roster", revealed=True,
                       states=ROSTER_STATES, kinds=KIND_ZH, formats=FORMAT_ZH, **view)


# --- appraisal rounds as a stepper (R34.1): each step's who and when, forward and back ------------------------
APPRAISAL_READERS = ("bureau_admin", "district_bureau", "auditor")


@router.get("/appraisal", summary="考核轮次")
async def rounds_page(request: Request, cursor: str | None = None) -> Response:
    portal = portal_of(request)
    session = portal.signed_in(request, *APPRAISAL_READERS)
    answer = await request.app.state.backend.get("appraisal", "/rounds", session.token, {"cursor": cursor, "limit": 25})
    return portal.page(request, "console/rounds.html", session, active="appraisal", answer=answer)


@router.get("/appraisal/{round_id}", summary="考核轮次：步骤、操作人和时间")
async def round_page(request: Request, round_id: str) -> Response:
    portal = portal_of(request)
    session = portal.signed_in(request, *APPRAISAL_READERS)
    round_id = parse_uuid(round_id, "考核轮次")
    data = await request.app.state.backend.get("appraisal", f"/rounds/{round_id}", session.token)
    forward_to, back_to = round_moves(data["state"])
    return portal.page(request, "console/round.html", session, active="appraisal", round=data,
                       stepper=stepper(data), forward_to=forward_to, back_to=back_to, labels=ROUND_STATE_ZH,
                       done=request.query_params.get("done"))


def round_moves(state: str) -> tuple[str | None, str | None]:
    """The step forward and the step back appraisal's own state machine allows from a state (R34.1, R30.1)."""
    return ROUND_TRANSITIONS.get(state), ROUND_BACK.get(state)


def stepper(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every state of R34.1 in order: done (with its last who/when), current, or to come."""
    last = {}
    for step in data.get("steps", []):  # in order: a step redone after a "back" shows its latest time
        last[step["state"]] = step
    current = ROUND_STATES.index(data["state"]) if data["state"] in ROUND_STATES else -1
    return [{"state": s, "label": ROUND_STATE_ZH[s], "step": last.get(s) if i <= current else None,
             "status": "done" if i < current else "current" if i == current else "todo"}
            for i, s in enumerate(ROUND_STATES)]


@router.post("/appraisal/{round_id}/forward", summary="推进到下一步（R34.1）")
async def round_forward(request: Request, round_id: str) -> Response:
    portal = portal_of(request)
    session, form = await portal.signed_form(request, "bureau_admin")
    round_id = parse_uuid(round_id, "考核轮次")
    to = form.get("to", "")
    if to not in ROUND_TRANSITIONS.values():
        raise PageError(422, "validation_error", "未知的考核步骤", None)
    body: dict[str, Any] = {"note": form["note"].strip()} if form.get("note", "").strip() else {}
    await request.app.state.backend.post("appraisal", f"/rounds/{round_id}/steps/{to}", session.token, body)
    return RedirectResponse(f"/console/appraisal/{round_id}?done=forward", status_code=303)


@router.post("/appraisal/{round_id}/back", summary="退回上一步（须说明理由，R30.1、R34.1）")
async def round_back(request: Request, round_id: str) -> Response:
    portal = portal_of(request)
    session, form = await portal.signed_form(request, "bureau_admin")
    round_id = parse_uuid(round_id, "考核轮次")
    reason = form.get("reason", "").strip()
    if not reason:
        raise PageError(422, "validation_error", "请填写退回理由", "退回上一步须说明理由（R30.1）。")
    await request.app.state.backend.post("appraisal", f"/rounds/{round_id}/back", session.token, {"reason": reason})
    return RedirectResponse(f"/console/appraisal/{round_id}?done=back", status_code=303)


# --- training (R21.1–R24.1): the sessions and who still needs which training ---------------------------------
TRAINING_LISTS = {  # registry's lists of people due: path, title
    "overdue": ("/training/overdue", "初任培训逾期（R22.1）"),
    "makeup": ("/training/makeup-needed", "需补训补考（R22.2）"),
    "term": ("/training/term-pending", "本届任期尚未参加任期培训（R21.1）"),
}


@router.get("/training", summary="培训班次与待培训名单")
async def training_page(request: Request) -> Response:
    portal = portal_of(request)
    session = portal.signed_in(request, *ROSTER_READERS)
    backend = request.app.state.backend
    year = clock.today().year
    sessions = await backend.get("registry", "/training/sessions", session.token, {"year": year, "limit": 100})
    lists = {key: {"title": title, **await backend.get("registry", path, session.token, {"limit": 100})}
             for key, (path, title) in TRAINING_LISTS.items()}
    lists["annual"] = {"title": f"{year} 年度集中培训缺训（R23.1）", **await backend.get(
        "registry", "/training/annual-check", session.token, {"year": year, "limit": 100})}
    return portal.page(request, "console/training.html", session, active="training", year=year, sessions=sessions,
                       lists=lists, kinds=KIND_ZH, formats=FORMAT_ZH)


TRAINING_EXAMS = ("initial", "makeup")  # the kinds with an exam (R22.1, R22.2)
ATTENDANCE = {"yes": True, "no": False}
EXAM = {"pass": True, "fail": False}


def training_results(form: dict[str, str]) -> list[dict[str, Any]]:
    """The rows the clerk filled in on a session's results form: `attended-<id>` 出勤/缺勤 (a row left at 未录入
    is not sent), `exam-<id>` 合格/不合格/未考. Values outside the form's choices are a clear refusal; whether a
    result may be recorded (R22.2 attempts, R21.1 term, an absent person passing) is registry's to say."""
    results = []
    for name, value in form.items():
        if not name.startswith("attended-") or value == "":
            continue
        supervisor_id = parse_uuid(name.removeprefix("attended-"), "人民监督员")
        exam = form.get(f"exam-{supervisor_id}", "")
        if value not in ATTENDANCE or exam not in ("", *EXAM):
            raise PageError(422, "validation_error", "培训结果无效",
                            "出勤请选择出勤或缺勤，考试请选择合格、不合格或未考。")
        results.append({"supervisor_id": supervisor_id, "attended": ATTENDANCE[value],
                        "exam_passed": EXAM.get(exam)})
    if not results:
        raise PageError(422, "validation_error", "请至少录入一人的培训结果", "未录入的人员不会提交。")
    return results


@router.post("/training/sessions", summary="新建培训班次（R21.1–R24.1）")
async def create_training_session(request: Request) -> Response:
    """Relayed to registry as typed: its own validation (kind, format of R24.1, date, hours) answers."""
    portal = portal_of(request)
    session, form = await portal.signed_form(request, "bureau_admin")
    body = {field: form.get(field, "").strip() for field in ("kind", "format", "title", "held_on", "hours")}
    created = await request.app.state.backend.post("registry", "/training/sessions", session.token, body)
    return RedirectResponse(f"/console/training/sessions/{created['id']}?done=created", status_code=303)


@router.get("/training/sessions/{session_id}", summary="培训班次：已记录的结果与录入")
async def training_session_page(request: Request, session_id: str, district: str = "", name: str = "",
                                cursor: str | None = None) -> Response:
    """The session and who was recorded; for bureau_admin, the active people of a district (or by name) to record,
    those already recorded left out."""
    portal = portal_of(request)
    session = portal.signed_in(request, *ROSTER_READERS)
    session_id = parse_uuid(session_id, "培训班次")
    backend = request.app.state.backend
    course = await backend.get("registry", f"/training/sessions/{session_id}", session.token)
    candidates = None
    if session.user and "bureau_admin" in session.user.roles:
        params = {"status": "active", "district": district.strip() or None, "name": name.strip() or None,
                  "limit": 50, "cursor": cursor}
        candidates = await backend.get("registry", "/supervisors", session.token, params)
        recorded = {r["supervisor_id"] for r in course["results"]}
        candidates["items"] = [p for p in candidates["items"] if p["id"] not in recorded]
    return portal.page(request, "console/training_session.html", session, active="training", course=course,
                       candidates=candidates, kinds=KIND_ZH, formats=FORMAT_ZH, with_exam=course["kind"] in
                       TRAINING_EXAMS, district=district, name=name, done=request.query_params.get("done"))


@router.post("/training/sessions/{session_id}/results", summary="录入出勤与考试结果（R22.1、R22.2、R23.1）")
async def record_training_results(request: Request, session_id: str) -> Response:
    """All rows or none (registry records them in one transaction); a row already recorded (a second tab) is its
    409, nothing recorded twice."""
    portal = portal_of(request)
    session, form = await portal.signed_form(request, "bureau_admin")
    session_id = parse_uuid(session_id, "培训班次")
    answer = await request.app.state.backend.post("registry", f"/training/sessions/{session_id}/results",
                                                  session.token, {"results": training_results(form)})
    return RedirectResponse(f"/console/training/sessions/{session_id}?done={answer['recorded']}", status_code=303)

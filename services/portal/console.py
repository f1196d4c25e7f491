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
from services.appraisal.rules import EDITABLE_IN as ROUND_EDITABLE_IN
from services.appraisal.rules import RECIPIENT_ZH
from services.appraisal.rules import STATE_ZH as ROUND_STATE_ZH
from services.appraisal.rules import STATES as ROUND_STATES
from services.appraisal.rules import TRANSITIONS as ROUND_TRANSITIONS
from services.portal.backend import ServiceError
from services.portal.web import SHANGHAI, PageError, portal_of, refusal_of
from services.registry.config import DEFAULT_DISTRICTS
from services.registry.rules import FORMAT_ZH, GROUND_LABELS, KIND_ZH, LEVEL_ZH, STATUS_ZH
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


# --- roster writes (registry): register, appoint (R4.1, R5.1), bulk import, resignation (R7.1), dismissal (R8.1, R9.1)
# Registry decides and checks everything (R2.1 district scope, N-TERM, N-BAN, N-EXCL, id number, phone…); a refused
# form comes back with what was typed and the service's own Chinese message beside the field it names.
REGISTRARS = ("bureau_admin", "district_bureau")  # registry's POST /supervisors (a district bureau: its district)
CANDIDATE_FIELDS = ("name", "id_number", "phone", "district", "employer", "recommending_body")
APPOINTMENT_FIELDS = ("decision_no", "decision_date", "term_start", "certificate_no", "work_card_no", "level")
# registry's rule codes that belong to one field of the forms (its detail is shown beside that field)
FIELD_CODES = {"invalid_id_number": "id_number", "id_number_mismatch": "id_number", "duplicate_id_number": "id_number",
               "invalid_phone": "phone", "unknown_district": "district", "unknown_specialty": "specialties",
               "duplicate_certificate_no": "certificate_no", "duplicate_work_card_no": "work_card_no",
               "invalid_transition": "decision_date", "N-TERM": "decision_date", "R8.1": "appraisal_round_id"}
RESIGNATION_REASONS = {"job_change": "工作变动", "health": "健康原因", "other": "其他原因"}  # R7.1
DISMISSAL_STATES = {"": "全部", "pending": "待确认（R37.1）", "confirmed": "已免除", "rejected": "已驳回"}
RECIPIENTS = {"person": "本人", "employer": "工作单位", "recommending_body": "推荐单位", "procuratorate": "人民检察院"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def parts_of(request: Request, token: str, parts: dict[str, tuple[str, str, dict[str, Any] | None]],
                   ) -> tuple[dict[str, Any], list[ServiceError]]:
    """Several reads for one page: each answer, or None and its ServiceError (each service that failed named once on
    the page, the rest shown)."""
    backend = request.app.state.backend
    view: dict[str, Any] = {}
    errors: list[ServiceError] = []
    for key, (service, path, params) in parts.items():
        try:
            view[key] = await backend.get(service, path, token, params)
        except ServiceError as error:
            view[key] = None
            if all(e.service != error.service for e in errors):  # a service is named once on the page
                errors.append(error)
    return view, errors


CITY_READERS = ("bureau_admin", "auditor")  # appraisal lets the city roles (and the person) read notices


async def result_notices(request: Request, token: str, supervisor_id: str, appraisals: list[dict] | None,
                         ) -> tuple[dict[str, list], list[ServiceError]]:
    """A person's result notices (R39.1) per finalized round, for links to their PDFs: round id -> notices."""
    finalized = [a["round_id"] for a in appraisals or [] if a.get("final_grade")]
    return await parts_of(request, token, {rid: ("appraisal", f"/rounds/{rid}/notices",
                                                 {"supervisor_id": supervisor_id, "kind": "result"})
                                           for rid in finalized})


async def _candidate_form(request: Request, session: Any, values: dict[str, Any], refusal: dict | None = None,
                          ) -> Response:
    portal = portal_of(request)
    view, errors = await parts_of(request, session.token, {"specialties": ("registry", "/specialties", None)})
    return portal.page(request, "console/candidate.html", session, active="roster", values=values, refusal=refusal,
                       errors=errors, specialties=view["specialties"], districts=DEFAULT_DISTRICTS,
                       http_status=refusal["status"] if refusal else 200)


def _own_district(session: Any, district: str) -> str:
    """A district bureau registers in its own district only (R2.1: registry checks it too)."""
    user = session.user
    return user.district if "bureau_admin" not in user.roles and user.district else district


@router.get("/roster/new", summary="登记人民监督员（候选）")
async def candidate_page(request: Request) -> Response:
    portal = portal_of(request)
    session = portal.signed_in(request, *REGISTRARS)
    return await _candidate_form(request, session, {"district": _own_district(session, ""), "specialties": []})


@router.post("/roster/new", summary="登记人民监督员（候选）")
async def create_candidate(request: Request) -> Response:
    """Relayed to registry's POST /supervisors; a bureau_admin goes on to the appointment, a district bureau's
    candidate waits for the city bureau's appointment (R4.1)."""
    portal = portal_of(request)
    session, form = await portal.signed_form(request, *REGISTRARS)
    values: dict[str, Any] = {k: form.get(k, "").strip() for k in CANDIDATE_FIELDS}
    values["district"] = _own_district(session, values["district"])
    values["specialties"] = [k.split(":", 1)[1] for k, v in form.items() if k.startswith("specialty:") and v]
    try:
        created = await request.app.state.backend.post("registry", "/supervisors", session.token, values)
    except ServiceError as error:
        return await _candidate_form(request, session, values, refusal_of(error, FIELD_CODES))
    if "bureau_admin" in session.user.roles:
        return RedirectResponse(f"/console/roster/{created['id']}/appoint?done=created", status_code=303)
    return RedirectResponse(f"/console/roster/{created['id']}?done=created", status_code=303)


async def _appointment_form(request: Request, session: Any, supervisor_id: str, values: dict[str, Any],
                            refusal: dict | None = None) -> Response:
    portal = portal_of(request)
    person = await request.app.state.backend.get("registry", f"/supervisors/{supervisor_id}", session.token)
    return portal.page(request, "console/appoint.html", session, active="roster", person=person, values=values,
                       refusal=refusal, levels={"": "本局默认层级", **LEVEL_ZH}, states=ROSTER_STATES,
                       done=request.query_params.get("done"),
                       http_status=refusal["status"] if refusal else 200)


@router.get("/roster/{supervisor_id}/appoint", summary="任命（R4.1、R5.1）")
async def appointment_page(request: Request, supervisor_id: str) -> Response:
    portal = portal_of(request)
    session = portal.signed_in(request, "bureau_admin")
    supervisor_id = parse_uuid(supervisor_id, "人民监督员")
    today = clock.today().isoformat()
    return await _appointment_form(request, session, supervisor_id, {"decision_date": today})


@router.post("/roster/{supervisor_id}/appoint", summary="任命（R4.1、R5.1、N-TERM、N-BAN、N-EXCL）")
async def appoint(request: Request, supervisor_id: str) -> Response:
    """Relayed to registry's POST /supervisors/{id}/appointments: empty numbers are issued by registry (R5.1); a
    second tab's form for a person already appointed gets registry's 409 (上一任期未结束), nothing twice."""
    portal = portal_of(request)
    session, form = await portal.signed_form(request, "bureau_admin")
    supervisor_id = parse_uuid(supervisor_id, "人民监督员")
    values = {k: form.get(k, "").strip() for k in APPOINTMENT_FIELDS}
    body = {k: v for k, v in values.items() if v}
    try:
        await request.app.state.backend.post("registry", f"/supervisors/{supervisor_id}/appointments",
                                             session.token, body)
    except ServiceError as error:
        if error.status >= 500 or error.status == 404:
            raise
        return await _appointment_form(request, session, supervisor_id, values, refusal_of(error, FIELD_CODES))
    return RedirectResponse(f"/console/roster/{supervisor_id}?done=appointed", status_code=303)


@router.get("/roster/import", summary="批量导入任命人员（xlsx）")
async def import_page(request: Request) -> Response:
    portal = portal_of(request)
    session = portal.signed_in(request, "bureau_admin")
    return portal.page(request, "console/import.html", session, active="roster", result=None, refusal=None)


@router.get("/roster/import/template", summary="下载批量导入模板（xlsx）")
async def import_template(request: Request) -> Response:
    """Registry's template (its districts and specialties in the notes sheet), passed on as it made it."""
    portal = portal_of(request)
    session = portal.signed_in(request, "bureau_admin")
    answer = await request.app.state.backend.download("registry", "/supervisors/import-template", session.token)
    return Response(answer.content, media_type=XLSX, headers={
        "Cache-Control": "no-store", "Content-Disposition": "attachment; filename*=UTF-8''%E4%BA%BA%E6%B0%91%E7%9B%91"
                                                            "%E7%9D%A3%E5%91%98%E6%89%B9%E9%87%8F%E5%AF%BC%E5%85%A5"
                                                            "%E6%A8%A1%E6%9D%BF.xlsx"})


@router.post("/roster/import", summary="批量导入任命人员（全部正确才导入）")
async def import_file(request: Request) -> Response:
    """The file goes to registry as it is (R4.1, R5.1, N-TERM, N-BAN, N-EXCL per row, all or nothing); a refusal
    lists every bad row with its row number, column and reason exactly as registry reports them."""
    portal = portal_of(request)
    session, _, files = await portal.signed_upload(request, "bureau_admin")
    upload = files.get("file")
    if upload is None:
        raise PageError(422, "validation_error", "请选择要导入的文件", "请选择按模板填写的 xlsx 文件。")
    try:
        result = await request.app.state.backend.send_file("POST", "registry", "/supervisors/imports", session.token,
                                                           upload.data, XLSX)
    except ServiceError as error:
        if error.status >= 500:
            raise
        refusal = refusal_of(error)
        rows = error.extra.get("errors") if error.code == "import_rejected" else None
        refusal["rows"] = rows if isinstance(rows, list) else []
        refusal["bad_rows"], refusal["total_rows"] = error.extra.get("bad_rows"), error.extra.get("rows")
        return portal.page(request, "console/import.html", session, active="roster", result=None, refusal=refusal,
                           filename=upload.filename, http_status=error.status)
    return portal.page(request, "console/import.html", session, active="roster", result=result, refusal=None,
                       filename=upload.filename)


@router.get("/dismissals", summary="免除资格案件（R8.1、R37.1）")
async def dismissals_page(request: Request, status: str = "", offset: int = 0) -> Response:
    portal = portal_of(request)
    session = portal.signed_in(request, "bureau_admin", "auditor")
    if status not in DISMISSAL_STATES:
        raise PageError(422, "validation_error", "未知的案件状态", f"可选：{'、'.join(DISMISSAL_STATES.values())}。")
    answer = await request.app.state.backend.get("registry", "/dismissals", session.token,
                                                 {"status": status or None, "limit": 25, "offset": max(offset, 0)})
    return portal.page(request, "console/dismissals.html", session, active="roster", answer=answer, status=status,
                       states=DISMISSAL_STATES)


@router.get("/dismissals/{dismissal_id}", summary="免除资格：通知书、公告、收回证件（R9.1）")
async def dismissal_page(request: Request, dismissal_id: str) -> Response:
    portal = portal_of(request)
    session = portal.signed_in(request, "bureau_admin", "auditor")
    dismissal_id = parse_uuid(dismissal_id, "免除资格案件")
    case = await request.app.state.backend.get("registry", f"/dismissals/{dismissal_id}", session.token)
    view, errors = await parts_of(request, session.token, {
        "person": ("registry", f"/supervisors/{case['supervisor_id']}", None)})
    return portal.page(request, "console/dismissal.html", session, active="roster", case=case, errors=errors,
                       person=view["person"], states=DISMISSAL_STATES, recipients=RECIPIENTS,
                       done=request.query_params.get("done"))


@router.post("/dismissals/{dismissal_id}/{decision}", summary="确认或驳回免除资格案件（R37.1）")
async def decide_dismissal(request: Request, dismissal_id: str, decision: str) -> Response:
    """A pending case (R37.1: opened by an annual "unqualified" result) confirmed (registry re-checks R8.1 and
    issues the R9.1 notices) or rejected; a second tab's decision gets registry's 409 (该案件已处理)."""
    portal = portal_of(request)
    session, form = await portal.signed_form(request, "bureau_admin")
    dismissal_id = parse_uuid(dismissal_id, "免除资格案件")
    if decision not in ("confirm", "reject"):
        raise PageError(404, "not_found", "页面不存在", None)
    note = form.get("evidence_note", "").strip()
    body = {"evidence_note": note} if decision == "confirm" and note else None
    await request.app.state.backend.post("registry", f"/dismissals/{dismissal_id}/{decision}", session.token, body)
    return RedirectResponse(f"/console/dismissals/{dismissal_id}?done={decision}", status_code=303)


async def _person_view(request: Request, session: Any, supervisor_id: str, *, unmasked: bool) -> dict[str, Any]:
    """The person (masked unless revealed), their terms, training, resignations (R7.1) and dismissals (R8.1) from
    the registry, this year's ledger from appraisal (a service that is down leaves its part empty and is named)."""
    token = session.token
    person = await request.app.state.backend.get("registry", f"/supervisors/{supervisor_id}", token,
                                                 {"unmasked": "true"} if unmasked else None)
    year = clock.today().year
    parts: dict[str, tuple[str, str, dict[str, Any] | None]] = {
        "appointments": ("registry", f"/supervisors/{supervisor_id}/appointments", None),
        "training": ("registry", f"/supervisors/{supervisor_id}/training", None),
        "resignations": ("registry", f"/supervisors/{supervisor_id}/resignations", None),
        "ledger": ("appraisal", f"/ledger/{supervisor_id}/{year}", None),
        "appraisals": ("appraisal", f"/supervisors/{supervisor_id}/appraisals", None)}
    if any(r in session.user.roles for r in ("bureau_admin", "auditor")):  # registry's readers of dismissals
        parts["dismissals"] = ("registry", "/dismissals", {"supervisor_id": supervisor_id, "limit": 20})
    view, errors = await parts_of(request, token, parts)
    view["notices"] = {}
    if set(session.user.roles) & set(CITY_READERS):
        view["notices"], more = await result_notices(request, token, supervisor_id, view.get("appraisals"))
        errors += [e for e in more if all(e.service != x.service for x in errors)]
    return {"person": person, "year": year, "errors": errors, **view}


def _person_page(request: Request, session: Any, view: dict[str, Any], *, revealed: bool, form: str | None = None,
                 values: dict[str, Any] | None = None, refusal: dict | None = None) -> Response:
    """The person's page; after a refused resignation or dismissal form, with that form's refusal and values."""
    return portal_of(request).page(
        request, "console/person.html", session, active="roster", revealed=revealed, states=ROSTER_STATES,
        kinds=KIND_ZH, formats=FORMAT_ZH, grounds={int(k): v for k, v in GROUND_LABELS.items()},
        reasons=RESIGNATION_REASONS, dismissal_states=DISMISSAL_STATES, done=request.query_params.get("done"),
        recipients=RECIPIENT_ZH,
        form=form, values=values or {}, refusal=refusal, http_status=refusal["status"] if refusal else 200, **view)


@router.get("/roster/{supervisor_id}", summary="人民监督员详情（脱敏）")
async def person_page(request: Request, supervisor_id: str) -> Response:
    portal = portal_of(request)
    session = portal.signed_in(request, *ROSTER_READERS)
    supervisor_id = parse_uuid(supervisor_id, "人民监督员")
    view = await _person_view(request, session, supervisor_id, unmasked=False)
    return _person_page(request, session, view, revealed=False)


@router.post("/roster/{supervisor_id}/reveal", summary="查看完整身份号码与手机号（记入审计，R3.1）")
async def reveal_person(request: Request, supervisor_id: str) -> Response:
    """bureau_admin only (registry checks and audits it); shown on this answer only, never in a URL."""
    portal = portal_of(request)
    session, _ = await portal.signed_form(request, "bureau_admin")
    supervisor_id = parse_uuid(supervisor_id, "人民监督员")
    view = await _person_view(request, session, supervisor_id, unmasked=True)
    return _person_page(request, session, view, revealed=True)


@router.post("/roster/{supervisor_id}/resignations", summary="登记辞职申请（R7.1）")
async def apply_resignation(request: Request, supervisor_id: str) -> Response:
    """The supervisor's written application as the bureau received it (registry: one pending at a time, 409)."""
    portal = portal_of(request)
    session, form = await portal.signed_form(request, *REGISTRARS)
    supervisor_id = parse_uuid(supervisor_id, "人民监督员")
    values = {k: form.get(k, "").strip() for k in ("reason_kind", "reason", "applied_on")}
    body = {k: v for k, v in values.items() if v}
    try:
        await request.app.state.backend.post("registry", f"/supervisors/{supervisor_id}/resignations",
                                             session.token, body)
    except ServiceError as error:
        if error.status >= 500 or error.status == 404:
            raise
        view = await _person_view(request, session, supervisor_id, unmasked=False)
        return _person_page(request, session, view, revealed=False, form="resignation", values=values,
                            refusal=refusal_of(error))
    return RedirectResponse(f"/console/roster/{supervisor_id}?done=resignation#resignations", status_code=303)


@router.post("/roster/{supervisor_id}/resignations/{resignation_id}/decision", summary="辞职申请决定（R7.1、R8.1）")
async def decide_resignation(request: Request, supervisor_id: str, resignation_id: str) -> Response:
    """Approval is dismissal on R8.1 ground 1 with the R9.1 notices (registry); a second tab gets its 409."""
    portal = portal_of(request)
    session, form = await portal.signed_form(request, "bureau_admin")
    supervisor_id, resignation_id = parse_uuid(supervisor_id, "人民监督员"), parse_uuid(resignation_id, "辞职申请")
    if form.get("approve") not in ("true", "false"):
        raise PageError(422, "validation_error", "请选择批准或不批准", None)
    await request.app.state.backend.post("registry", f"/resignations/{resignation_id}/decision", session.token,
                                         {"approve": form["approve"] == "true", "note": form.get("note", "").strip()})
    done = "resignation_approved" if form["approve"] == "true" else "resignation_rejected"
    return RedirectResponse(f"/console/roster/{supervisor_id}?done={done}#resignations", status_code=303)


@router.post("/roster/{supervisor_id}/dismissals", summary="免除资格（R8.1、R9.1）")
async def dismiss(request: Request, supervisor_id: str) -> Response:
    """One of R8.1's six grounds with its evidence note (ground 5: the annual round whose "unqualified" result
    registry received); registry decides at once and issues the four notices and the announcement (R9.1)."""
    portal = portal_of(request)
    session, form = await portal.signed_form(request, "bureau_admin")
    supervisor_id = parse_uuid(supervisor_id, "人民监督员")
    values = {k: form.get(k, "").strip() for k in ("ground", "evidence_note", "appraisal_round_id")}
    body: dict[str, Any] = {"ground": int(values["ground"]) if values["ground"].isdigit() else values["ground"],
                            "evidence_note": values["evidence_note"]}
    if values["appraisal_round_id"]:
        body["appraisal_round_id"] = values["appraisal_round_id"]
    try:
        case = await request.app.state.backend.post("registry", f"/supervisors/{supervisor_id}/dismissals",
                                                    session.token, body)
    except ServiceError as error:
        if error.status >= 500 or error.status == 404:
            raise
        view = await _person_view(request, session, supervisor_id, unmasked=False)
        return _person_page(request, session, view, revealed=False, form="dismissal", values=values,
                            refusal=refusal_of(error, FIELD_CODES))
    return RedirectResponse(f"/console/dismissals/{case['id']}?done=dismissed", status_code=303)


# --- appraisal rounds as a stepper (R34.1): each step's who and when, forward and back ------------------------
APPRAISAL_READERS = ("bureau_admin", "district_bureau", "auditor")


@router.get("/appraisal", summary="考核轮次")
async def rounds_page(request: Request, cursor: str | None = None) -> Response:
    portal = portal_of(request)
    session = portal.signed_in(request, *APPRAISAL_READERS)
    answer = await request.app.state.backend.get("appraisal", "/rounds", session.token, {"cursor": cursor, "limit": 25})
    return portal.page(request, "console/rounds.html", session, active="appraisal", answer=answer,
                       year=clock.today().year)


@router.get("/appraisal/{round_id}", summary="考核轮次：步骤、操作人和时间")
async def round_page(request: Request, round_id: str) -> Response:
    portal = portal_of(request)
    session = portal.signed_in(request, *APPRAISAL_READERS)
    round_id = parse_uuid(round_id, "考核轮次")
    data = await request.app.state.backend.get("appraisal", f"/rounds/{round_id}", session.token)
    forward_to, back_to = round_moves(data["state"])
    commendations = []  # R38.1: the 通报表扬 of a finalized round, one click away
    if data["state"] == "finalized" and set(session.user.roles) & set(CITY_READERS):
        commendations = await request.app.state.backend.get("appraisal", f"/rounds/{round_id}/notices",
                                                            session.token, {"kind": "commendation"})
    return portal.page(request, "console/round.html", session, active="appraisal", round=data,
                       commendations=commendations,
                       stepper=stepper(data), forward_to=forward_to, back_to=back_to, labels=ROUND_STATE_ZH,
                       cap=cap_path(data, session.user.subject if session.user else None),
                       done=request.query_params.get("done"))


def cap_path(data: dict[str, Any], me: str | None) -> dict[str, Any]:
    """R30.1 on the round's page: more excellent than floor(15 %) needs a recorded justification approved by a
    second bureau user. What may be done now (appraisal's EDITABLE_IN) and by whom: the author never approves."""
    open_now = data["state"] in ROUND_EDITABLE_IN["cap_justification"]
    justified = data.get("cap_justification") is not None
    approved = data.get("cap_approved_by") is not None
    covered = justified and (data.get("cap_justified_count") or 0) >= data["excellent_count"]
    return {"shown": data.get("cap_exceeded") or justified, "may_justify": open_now and data.get("cap_exceeded"),
            "may_approve": open_now and justified and not approved and data.get("cap_justified_by") != me,
            "waiting_for_other": open_now and justified and not approved and data.get("cap_justified_by") == me,
            "covered": covered, "approved": approved}


@router.post("/appraisal/{round_id}/cap-justification", summary="说明优秀等次超过比例的理由（R30.1）")
async def justify_cap(request: Request, round_id: str) -> Response:
    portal = portal_of(request)
    session, form = await portal.signed_form(request, "bureau_admin")
    round_id = parse_uuid(round_id, "考核轮次")
    text = form.get("text", "").strip()
    if not text:
        raise PageError(422, "validation_error", "请填写理由", "超出优秀等次比例须说明理由（R30.1）。")
    body: dict[str, Any] = {"text": text}
    if count := form.get("excellent_count", "").strip():
        if not count.isdigit():
            raise PageError(422, "validation_error", "人数应为整数", None)
        body["excellent_count"] = int(count)
    await request.app.state.backend.put("appraisal", f"/rounds/{round_id}/cap-justification", session.token, body)
    return RedirectResponse(f"/console/appraisal/{round_id}?done=justified#cap", status_code=303)


@router.post("/appraisal/{round_id}/cap-approval", summary="批准超出比例的理由说明（R30.1，非说明人）")
async def approve_cap(request: Request, round_id: str) -> Response:
    portal = portal_of(request)
    session, _ = await portal.signed_form(request, "bureau_admin")
    round_id = parse_uuid(round_id, "考核轮次")
    await request.app.state.backend.post("appraisal", f"/rounds/{round_id}/cap-justification/approval",
                                         session.token)
    return RedirectResponse(f"/console/appraisal/{round_id}?done=approved#cap", status_code=303)


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
                       TRAINING_EXAMS, districts=DEFAULT_DISTRICTS, district=district, name=name,
                       done=request.query_params.get("done"))


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

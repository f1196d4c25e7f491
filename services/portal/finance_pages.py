"""The console's finance pages: subsidy lines (R42.1, four eyes), the monthly table, rates (N-RATE), the year's plan
and budget (R41.1), travel claims (R43.1).

The same patterns as console.py: every page calls finance with the signed-in person's own token and finance decides
(four eyes, the budget of R41.1, receipts before checking); the portal relays its Chinese refusals, beside the form
that was refused and with what was typed. The `finance` role acts; `bureau_admin` and `auditor` read. What an item
waits for and who may take the step come from finance's own rules (`rules.waiting_for`, `rules.may_act`,
`rules.rate_in_force`), never from template arithmetic. A stale second tab's step is refused by finance (409), never
applied twice.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from services.finance import rules as finance_rules
from services.portal.backend import ServiceError
from services.portal.console import parse_uuid, parts_of
from services.portal.web import PageError, portal_of, refusal_of
from shared import clock
from shared.activity_types import LABELS as ACTIVITY_LABELS

router = APIRouter(prefix="/console")
FINANCE_READERS = ("finance", "bureau_admin", "auditor")
ACTORS = ("finance",)  # who takes the steps here (finance also lets bureau_admin act through its API)
LINE_STATES = {"": "全部", "draft": "待审核", "checked": "待批准", "approved": "已批准", "paid": "已支付",
               "rejected": "已驳回"}
LINE_ACTIONS = {"check": "审核通过", "approve": "批准"}
CLAIM_ACTIONS = {"check": "审核通过", "approve": "批准", "reject": "驳回", "budget-excess": "批准超出预算"}
PURPOSES = {"activity": "参加监督活动", "training": "参加培训", "meeting": "参加会议"}  # R43.1
CATEGORIES = {"transport": "交通费", "accommodation": "住宿费", "meal": "伙食补助", "other": "其他"}
RECEIPT_TYPES = ("application/pdf", "image/jpeg", "image/png")
CLAIM_ITEMS = 3  # item rows of the form (finance takes up to 50; a longer claim is entered in parts of its API)
YUAN = re.compile(r"^\d{1,9}(\.\d{1,2})?$")


def parse_period(value: str) -> str:
    if len(value) != 7 or value[4] != "-" or not (value[:4] + value[5:]).isdigit() or not 1 <= int(value[5:]) <= 12:
        raise PageError(404, "not_found", "月份格式错误", "月份应写作 2026-11。")
    return value


def parse_year(value: str | int) -> int:
    text = str(value)
    if not text.isdigit() or not 2024 <= int(text) <= 2999:
        raise PageError(404, "not_found", "年度格式错误", "年度应写作 2027（自 2024 年起）。")
    return int(text)


def fen_of(text: str) -> int | None:
    """Yuan as typed (400 or 400.50) in fen; None when it is no amount (the form says so beside the field)."""
    text = text.strip().replace(",", "")
    if not YUAN.fullmatch(text):
        return None
    whole, _, cents = text.partition(".")
    return int(whole) * 100 + int((cents + "00")[:2])


def own_refusal(title: str, detail: str, fields: dict[str, str]) -> dict[str, Any]:
    """The portal's own refusal of a form before anything is sent (a money amount it cannot read)."""
    return {"status": 422, "code": "validation_error", "title": title, "detail": detail, "service": None,
            "fields": fields}


# --- subsidy lines (R42.1, four eyes) and the monthly table ------------------------------------------------
@router.get("/finance/lines", summary="履职补助明细：审核与批准（四眼原则）")
async def lines_page(request: Request, status: str = "", period: str = "", cursor: str | None = None) -> Response:
    portal = portal_of(request)
    session = portal.signed_in(request, *FINANCE_READERS)
    if status not in LINE_STATES:
        raise PageError(422, "validation_error", "未知的明细状态", f"可选的状态：{'、'.join(LINE_STATES.values())}。")
    params = {"status": status or None, "period": parse_period(period) if period else None, "cursor": cursor,
              "limit": 25}
    answer = await request.app.state.backend.get("finance", "/subsidy-lines", session.token, params)
    return portal.page(request, "console/lines.html", session, active="finance", section="lines", answer=answer,
                       states=LINE_STATES, status=status, period=period, actions=LINE_ACTIONS,
                       done=request.query_params.get("done"))


@router.post("/finance/lines/{line_id}/{action}", summary="审核或批准一条明细")
async def line_action(request: Request, line_id: str, action: str) -> Response:
    """Relayed to finance, which keeps the four eyes (never approve what one checked) and the budget rule."""
    portal = portal_of(request)
    session, form = await portal.signed_form(request, *ACTORS)
    line_id = parse_uuid(line_id, "补助明细")
    if action not in LINE_ACTIONS:
        raise PageError(404, "not_found", "页面不存在", None)
    await request.app.state.backend.post("finance", f"/subsidy-lines/{line_id}/{action}", session.token)
    back = form.get("back", "")
    back = back if back.startswith("/console/finance/lines") else "/console/finance/lines"
    return RedirectResponse(back + ("&" if "?" in back else "?") + f"done={action}", status_code=303)


@router.get("/finance/disbursements", summary="本月的发放表")
async def this_months_table(request: Request) -> Response:
    portal_of(request).signed_in(request, *FINANCE_READERS)
    return RedirectResponse(f"/console/finance/disbursements/{clock.today():%Y-%m}", status_code=303)


@router.get("/finance/disbursements/{period}", summary="《威海市人民监督员履职补助发放表》")
async def disbursement_page(request: Request, period: str) -> Response:
    portal = portal_of(request)
    session = portal.signed_in(request, *FINANCE_READERS)
    period = parse_period(period)
    table = await request.app.state.backend.get("finance", f"/disbursements/{period}", session.token)
    return portal.page(request, "console/disbursement.html", session, active="finance", section="table",
                       table=table, period=period)


# --- rates (N-RATE): versions, the one in force, a new version, the second approval of a back-dated one ------
def in_force_today(rates: list[dict[str, Any]]) -> dict[str, int]:
    """activity type → id of the rate in force today, chosen by finance's own rules.rate_in_force (N-RATE)."""
    versions = [finance_rules.Rate(r["id"], r["activity_type"], r["amount_fen"],
                                   date.fromisoformat(r["effective_from"]), r["status"] == "approved") for r in rates]
    chosen = {}
    for activity_type in ACTIVITY_LABELS:
        try:
            chosen[activity_type] = finance_rules.rate_in_force(versions, activity_type, clock.today()).id
        except finance_rules.NoRateError:
            continue
    return chosen


async def _rates_page(request: Request, session: Any, *, values: dict[str, str] | None = None,
                      refusal: dict | None = None) -> Response:
    rates = await request.app.state.backend.get("finance", "/rates", session.token)
    rates.sort(key=lambda r: (list(ACTIVITY_LABELS).index(r["activity_type"]) if r["activity_type"] in ACTIVITY_LABELS
                              else 99, r["effective_from"], r["id"]), reverse=False)
    return portal_of(request).page(
        request, "console/rates.html", session, active="finance", section="rates", rates=rates,
        in_force=in_force_today(rates), labels=ACTIVITY_LABELS, values=values or {}, refusal=refusal,
        done=request.query_params.get("done"), today=clock.today().isoformat(),
        http_status=refusal["status"] if refusal else 200)


@router.get("/finance/rates", summary="补助标准（N-RATE）")
async def rates_page(request: Request) -> Response:
    portal = portal_of(request)
    session = portal.signed_in(request, *FINANCE_READERS)
    return await _rates_page(request, session)


@router.post("/finance/rates", summary="新增补助标准版本（N-RATE）")
async def create_rate(request: Request) -> Response:
    """A new version from its date (finance: lines already made keep their amount; a back-dated one waits for a
    second finance user)."""
    portal = portal_of(request)
    session, form = await portal.signed_form(request, *ACTORS)
    values = {k: form.get(k, "").strip() for k in ("activity_type", "amount", "effective_from")}
    amount = fen_of(values["amount"])
    if amount is None:
        return await _rates_page(request, session, values=values, refusal=own_refusal(
            "金额格式错误", "补助金额请以元为单位填写，如 400 或 400.50。",
            {"amount": "请填写金额（元），至多两位小数。"}))
    body = {"activity_type": values["activity_type"], "amount_fen": amount, "effective_from": values["effective_from"]}
    try:
        await request.app.state.backend.post("finance", "/rates", session.token, body)
    except ServiceError as error:
        if error.status >= 500:
            raise
        return await _rates_page(request, session, values=values, refusal=refusal_of(error))
    return RedirectResponse("/console/finance/rates?done=created", status_code=303)


@router.post("/finance/rates/{rate_id}/approve", summary="批准追溯生效的补助标准（N-RATE，不得自批）")
async def approve_rate(request: Request, rate_id: str) -> Response:
    portal = portal_of(request)
    session, _ = await portal.signed_form(request, *ACTORS)
    if not rate_id.isdigit() or len(rate_id) > 18:
        raise PageError(404, "not_found", "补助标准不存在", None)
    try:
        await request.app.state.backend.post("finance", f"/rates/{rate_id}/approve", session.token)
    except ServiceError as error:
        if error.status >= 500:
            raise
        return await _rates_page(request, session, refusal=refusal_of(error))
    return RedirectResponse("/console/finance/rates?done=approved", status_code=303)


# --- the year's plan and budget (R41.1) ------------------------------------------------------------------------
PLAN_READERS = (*FINANCE_READERS, "procuratorate")  # finance: a procuratorate reads its own office's plan


def plan_grid(plan: dict[str, Any] | None) -> dict[str, Any]:
    """A plan's rows as the form's grid: count per (activity type, month) and seats per activity type."""
    counts: dict[str, int] = {}
    seats: dict[str, int] = {}
    for row in (plan or {}).get("rows", []):
        counts[f"{row['activity_type']}-{row['month']}"] = counts.get(f"{row['activity_type']}-{row['month']}", 0) \
            + row["count"]
        seats[row["activity_type"]] = row["seats"]
    return {"counts": counts, "seats": seats}


async def _plans_page(request: Request, session: Any, year: int, office: str, *, grid: dict | None = None,
                      refusal: dict | None = None) -> Response:
    params = {"office": office or None}
    view, errors = await parts_of(request, session.token, {
        "plans": ("finance", f"/plans/{year}", params), "budget": ("finance", f"/plans/{year}/budget", params)})
    procuratorate = "procuratorate" in session.user.roles
    own = (view["plans"] or [None])[0] if procuratorate else None
    return portal_of(request).page(
        request, "console/plans.html", session, active="finance", section="plans", year=year, office=office,
        plans=view["plans"], budget=view["budget"], errors=errors, labels=ACTIVITY_LABELS, months=range(1, 13),
        may_submit=procuratorate, grid=grid or plan_grid(own), refusal=refusal, done=request.query_params.get("done"),
        http_status=refusal["status"] if refusal else 200)


@router.get("/finance/plans", summary="年度计划与预算（R41.1）")
async def plans_page(request: Request, year: str = "", office: str = "") -> Response:
    portal = portal_of(request)
    session = portal.signed_in(request, *PLAN_READERS)
    return await _plans_page(request, session, parse_year(year or clock.today().year), office.strip()[:200])


@router.post("/finance/plans/{year}", summary="提交年度监督办案活动计划（R41.1，检察院）")
async def submit_plan(request: Request, year: str) -> Response:
    """The procuratorate's written plan of the year (finance: its office from the token; a resubmission replaces
    the rows); each type's supervisors per activity (seats) times the counts make the budget."""
    portal = portal_of(request)
    session, form = await portal.signed_form(request, "procuratorate", max_fields=12 * len(ACTIVITY_LABELS) + 30)
    year_n = parse_year(year)
    grid: dict[str, Any] = {"counts": {}, "seats": {}}
    rows, bad = [], {}
    for activity_type in ACTIVITY_LABELS:
        seats_text = form.get(f"s-{activity_type}", "").strip() or "1"
        grid["seats"][activity_type] = seats_text
        for month in range(1, 13):
            text = form.get(f"c-{activity_type}-{month}", "").strip() or "0"
            grid["counts"][f"{activity_type}-{month}"] = text
            if not text.lstrip("-").isdigit() or not seats_text.lstrip("-").isdigit():
                bad[f"c-{activity_type}-{month}"] = "请填写整数。"
            elif int(text):
                rows.append({"month": month, "activity_type": activity_type, "count": int(text),
                             "seats": int(seats_text)})
    if bad:
        return await _plans_page(request, session, year_n, "", grid=grid, refusal=own_refusal(
            "计划格式错误", "活动次数和每次人数请填写整数。", bad))
    try:
        await request.app.state.backend.put("finance", f"/plans/{year_n}", session.token, {"rows": rows})
    except ServiceError as error:
        if error.status >= 500:
            raise
        return await _plans_page(request, session, year_n, "", grid=grid, refusal=refusal_of(error))
    return RedirectResponse(f"/console/finance/plans?year={year_n}&done=submitted", status_code=303)


# --- travel claims (R43.1): list, enter, receipts, check / approve (four eyes) / reject, over budget (R41.1) ---
CLAIM_STATES = LINE_STATES


@router.get("/finance/travel-claims", summary="差旅费报销（R43.1）")
async def claims_page(request: Request, status: str = "", supervisor_id: str = "", cursor: str | None = None,
                      ) -> Response:
    """The work list, newest first; one person's claims when opened from their page."""
    portal = portal_of(request)
    session = portal.signed_in(request, *FINANCE_READERS)
    if status not in CLAIM_STATES:
        raise PageError(422, "validation_error", "未知的报销单状态",
                        f"可选的状态：{'、'.join(CLAIM_STATES.values())}。")
    supervisor_id = parse_uuid(supervisor_id, "人民监督员") if supervisor_id else ""
    answer = await request.app.state.backend.get("finance", "/travel-claims", session.token, {
        "status": status or None, "supervisor_id": supervisor_id or None, "cursor": cursor, "limit": 25})
    return portal.page(request, "console/claims.html", session, active="finance", section="claims", answer=answer,
                       states=CLAIM_STATES, status=status, supervisor_id=supervisor_id, purposes=PURPOSES,
                       actions=CLAIM_ACTIONS)


def _claim_form(request: Request, session: Any, values: dict[str, str], refusal: dict | None = None) -> Response:
    return portal_of(request).page(
        request, "console/claim_new.html", session, active="finance", section="claims", values=values,
        refusal=refusal, purposes=PURPOSES, categories=CATEGORIES, items=range(1, CLAIM_ITEMS + 1),
        http_status=refusal["status"] if refusal else 200)


@router.get("/finance/travel-claims/new", summary="代为申报差旅费（R43.1）")
async def new_claim_page(request: Request, supervisor_id: str = "", purpose_kind: str = "",
                         purpose_ref: str = "") -> Response:
    """Opened from a person's page or a subsidy line (the person and the activity filled in) or empty."""
    portal = portal_of(request)
    session = portal.signed_in(request, *ACTORS)
    return _claim_form(request, session, {"supervisor_id": supervisor_id[:36], "purpose_kind": purpose_kind[:20],
                                          "purpose_ref": purpose_ref[:200], "item1_nights": "1"})


@router.post("/finance/travel-claims/new", summary="代为申报差旅费（R43.1）")
async def create_claim(request: Request) -> Response:
    portal = portal_of(request)
    session, form = await portal.signed_form(request, *ACTORS)
    values = {k: v.strip() for k, v in form.items() if k != "csrf_token"}
    items, bad = [], {}
    for n in range(1, CLAIM_ITEMS + 1):
        amount_text = values.get(f"item{n}_amount", "")
        if not amount_text:
            continue
        amount = fen_of(amount_text)
        if amount is None:
            bad[f"item{n}_amount"] = "请填写金额（元），至多两位小数。"
            continue
        item: dict[str, Any] = {"category": values.get(f"item{n}_category", ""), "amount_fen": amount}
        nights = values.get(f"item{n}_nights", "")
        if nights:
            item["nights"] = int(nights) if nights.isdigit() else nights
        if values.get(f"item{n}_description"):
            item["description"] = values[f"item{n}_description"]
        items.append(item)
    if bad:
        return _claim_form(request, session, values, own_refusal("金额格式错误", "金额请以元为单位填写。", bad))
    body = {"supervisor_id": values.get("supervisor_id") or None, "purpose_kind": values.get("purpose_kind", ""),
            "purpose_ref": values.get("purpose_ref", ""), "travel_date": values.get("travel_date", ""),
            "items": items}
    try:
        claim = await request.app.state.backend.post("finance", "/travel-claims", session.token, body)
    except ServiceError as error:
        if error.status >= 500:
            raise
        refusal = refusal_of(error)
        if "items" in refusal["fields"]:  # finance names the list when it is empty (at least one item)
            refusal["fields"]["item1_amount"] = "至少填写一项费用。"
        return _claim_form(request, session, values, refusal)
    return RedirectResponse(f"/console/finance/travel-claims/{claim['id']}?done=created", status_code=303)


async def _claim_page(request: Request, session: Any, claim_id: str, *, refusal: dict | None = None,
                      values: dict[str, str] | None = None) -> Response:
    backend = request.app.state.backend
    claim = await backend.get("finance", f"/travel-claims/{claim_id}", session.token)
    user = session.user
    acts = any(r in user.roles for r in ACTORS)
    view, errors = await parts_of(request, session.token, {
        "supervisor": ("finance", f"/supervisors/{claim['supervisor_id']}", None)} if acts else {})
    step = finance_rules.waiting_for(claim["status"], in_issued_table=claim["table_id"] is not None)
    may_act = finance_rules.may_act(step, actor=user.subject, checked_by=claim["checked_by"], can_act=acts)
    return portal_of(request).page(
        request, "console/claim.html", session, active="finance", section="claims", claim=claim,
        supervisor=view.get("supervisor"), errors=errors, step=step, may_act=may_act, acts=acts,
        purposes=PURPOSES, categories=CATEGORIES, states=CLAIM_STATES, actions=CLAIM_ACTIONS, refusal=refusal,
        values=values or {}, done=request.query_params.get("done"), http_status=refusal["status"] if refusal else 200)


@router.get("/finance/travel-claims/{claim_id}", summary="差旅费报销单")
async def claim_page(request: Request, claim_id: str) -> Response:
    portal = portal_of(request)
    session = portal.signed_in(request, *FINANCE_READERS)
    return await _claim_page(request, session, parse_uuid(claim_id, "差旅费报销单"))


@router.post("/finance/travel-claims/{claim_id}/items/{item_id}/receipt", summary="上传票据（R43.1）")
async def upload_receipt(request: Request, claim_id: str, item_id: str) -> Response:
    """The file goes to finance as it is, with the type the browser gave (finance takes PDF, JPEG or PNG)."""
    portal = portal_of(request)
    session, _, files = await portal.signed_upload(request, *ACTORS)
    claim_id, item_id = parse_uuid(claim_id, "差旅费报销单"), parse_uuid(item_id, "报销项目")
    upload = files.get("receipt")
    if upload is None:
        return await _claim_page(request, session, claim_id, refusal=own_refusal(
            "请选择票据文件", "票据可为 PDF、JPEG 或 PNG 文件。", {f"receipt-{item_id}": "请选择文件。"}))
    try:
        await request.app.state.backend.send_file(
            "PUT", "finance", f"/travel-claims/{claim_id}/items/{item_id}/receipt", session.token, upload.data,
            upload.media_type)
    except ServiceError as error:
        if error.status >= 500:
            raise
        return await _claim_page(request, session, claim_id, refusal=refusal_of(error))
    return RedirectResponse(f"/console/finance/travel-claims/{claim_id}?done=receipt", status_code=303)


@router.post("/finance/travel-claims/{claim_id}/{action}", summary="审核、批准、驳回差旅费报销单（R43.1、R41.1）")
async def claim_action(request: Request, claim_id: str, action: str) -> Response:
    """Relayed to finance: receipts on every item before checking, never approved by its checker or creator (four
    eyes), the budget of R41.1 (over it: another finance user first approves the excess with a reason)."""
    portal = portal_of(request)
    session, form = await portal.signed_form(request, *ACTORS)
    claim_id = parse_uuid(claim_id, "差旅费报销单")
    if action not in CLAIM_ACTIONS:
        raise PageError(404, "not_found", "页面不存在", None)
    values = {k: form.get(k, "").strip() for k in ("approved_amount", "reason")}
    body: dict[str, Any] | None = None
    if action == "approve":
        body = {}
        if values["approved_amount"]:
            amount = fen_of(values["approved_amount"])
            if amount is None:
                return await _claim_page(request, session, claim_id, values=values, refusal=own_refusal(
                    "金额格式错误", "核定金额请以元为单位填写。", {"approved_amount": "请填写金额（元）。"}))
            body["approved_fen"] = amount
        if values["reason"]:
            body["reason"] = values["reason"]
    elif action in ("reject", "budget-excess"):
        body = {"reason": values["reason"]}
    try:
        await request.app.state.backend.post("finance", f"/travel-claims/{claim_id}/{action}", session.token, body)
    except ServiceError as error:
        if error.status >= 500 or error.status == 404:
            raise
        return await _claim_page(request, session, claim_id, values=values, refusal=refusal_of(error))
    return RedirectResponse(f"/console/finance/travel-claims/{claim_id}?done={action}", status_code=303)

"""HTTP of the finance service: parse, authorize, call the service, shape the answer."""

import asyncio
import uuid
from datetime import date, datetime, timedelta
from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from services.finance import disbursement, rules, worklists
from services.finance import service as svc
from services.finance.config import FinanceSettings
from services.finance.models import ALL_DISTRICTS, documents, platform
from services.finance.schemas import (
    ActivityTypeRead,
    BankAccountIn,
    BudgetRead,
    ClaimApproveIn,
    CorrectionIn,
    CoveringLetterIn,
    CoveringLetterRead,
    DisbursementRead,
    DisbursementVersionRead,
    LineListItem,
    LineRead,
    PaidStatisticsRead,
    PayIn,
    PlanIn,
    PlanRead,
    RateCreate,
    RateRead,
    ReasonIn,
    ReconciliationRead,
    State,
    SupervisorRead,
    TravelClaimCreate,
    TravelClaimListItem,
    TravelClaimRead,
)
from shared import audit
from shared import pagination as paging
from shared.activity_types import ACTIVITY_TYPES
from shared.app import CipherDep, OutboxDep, SessionDep
from shared.auth import DISTRICT_SCOPED_ROLES, Principal, Role, ensure_district, ensure_self_or, forbidden, require
from shared.crypto import FieldCipher
from shared.documents import archive
from shared.errors import NotFound, ProblemError, Unprocessable

router = APIRouter()

FIN = (Role.FINANCE, Role.BUREAU_ADMIN)
READERS = (*FIN, Role.AUDITOR)
Actor = Annotated[Principal, Depends(require(*FIN))]
Reader = Annotated[Principal, Depends(require(*READERS))]
Year = Annotated[int, Path(ge=2024, le=2999, description="年度")]
Period = Annotated[str, Path(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="月份，如 2026-11")]


def settings_of(request: Request) -> FinanceSettings:
    return request.app.state.settings


SettingsDep = Annotated[FinanceSettings, Depends(settings_of)]


def parse_period(period: str) -> tuple[int, int]:
    year, month = int(period[:4]), int(period[5:7])
    if year < 2024:
        raise Unprocessable("R44.1", "月份早于办法施行", "《办法》自 2024 年 12 月 1 日起施行。")
    return year, month


# --- activity types and rates (N-RATE) -----------------------------------------------------------


@router.get("/activity-types", tags=["rates"], summary="活动类型（N-ACT）")
async def list_activity_types(principal: Annotated[Principal, Depends(require(*Role))]) -> list[ActivityTypeRead]:
    return [ActivityTypeRead(**t) for t in svc.activity_types()]


def rate_read(row) -> RateRead:
    return RateRead(**row._mapping, amount_yuan=rules.yuan(row.amount_fen))


@router.get("/rates", tags=["rates"], summary="补助标准（全部版本）")
async def list_rates(session: SessionDep, principal: Annotated[Principal, Depends(require(*READERS,
                                                                                           Role.PROCURATORATE))],
                     activity_type: Literal[ACTIVITY_TYPES] | None = None) -> list[RateRead]:  # type: ignore[valid-type]
    return [rate_read(r) for r in await svc.list_rates(session, activity_type)]


@router.get("/rates/in-force", tags=["rates"], summary="某日适用的补助标准（N-RATE）")
async def rate_in_force(session: SessionDep, principal: Annotated[Principal, Depends(require(*READERS,
                                                                                             Role.PROCURATORATE))],
                        activity_type: Literal[ACTIVITY_TYPES],  # type: ignore[valid-type]
                        on: Annotated[date, Query(ge=date(1900, 1, 1), le=date(9999, 12, 31))]) -> RateRead:
    try:
        found = await svc.rate_on(session, activity_type, on)
    except rules.NoRateError as exc:
        raise NotFound("适用的补助标准", f"{activity_type}@{on.isoformat()}") from exc
    rows = await svc.list_rates(session, activity_type)
    return rate_read(next(r for r in rows if r.id == found.id))


@router.post("/rates", status_code=201, tags=["rates"],
             summary="新增补助标准版本（不影响已生成明细；追溯生效须另一名财务人员批准）")
async def create_rate(body: RateCreate, session: SessionDep, principal: Actor) -> RateRead:
    row = await svc.add_rate(session, actor=principal.subject, activity_type=body.activity_type,
                             amount_fen=body.amount_fen, effective_from=body.effective_from)
    return rate_read(row)


@router.post("/rates/{rate_id}/approve", tags=["rates"], summary="批准追溯生效的补助标准（N-RATE，不得自批）")
async def approve_rate(rate_id: Annotated[int, Path(ge=1, le=2**63 - 1)], session: SessionDep,
                       principal: Actor) -> RateRead:
    return rate_read(await svc.approve_rate(session, actor=principal.subject, rate_id=rate_id))


# --- annual plan and budget (R41.1) --------------------------------------------------------------


def plan_office(principal: Principal, office: str | None) -> str | None:
    """The office whose plan the caller may see: its own for a procuratorate, any (or all) otherwise."""
    if principal.has(*READERS):
        return office
    own = principal.office or principal.district
    if office is not None and office != own:
        raise forbidden("检察院只能查看本院的年度计划。")
    return own


@router.put("/plans/{year}", tags=["plans"], summary="提交下一年度监督办案活动计划（R41.1）")
async def put_plan(year: Year, body: PlanIn, session: SessionDep,
                   principal: Annotated[Principal, Depends(require(Role.PROCURATORATE))]) -> PlanRead:
    office = principal.office or principal.district
    if office is None:
        raise forbidden("检察院令牌缺少所属院或区市，不能提交年度计划。")
    await svc.put_plan(session, actor=principal.subject, year=year, office=office, district=principal.district,
                       rows=[r.model_dump() for r in body.rows])
    return PlanRead(**(await svc.get_plans(session, year, office))[0])


@router.get("/plans/{year}", tags=["plans"], summary="年度计划（检察院仅见本院）")
async def get_plans(year: Year, session: SessionDep,
                    principal: Annotated[Principal, Depends(require(*READERS, Role.PROCURATORATE))],
                    office: Annotated[str | None, Query(max_length=200)] = None) -> list[PlanRead]:
    return [PlanRead(**p) for p in await svc.get_plans(session, year, plan_office(principal, office))]


@router.get("/plans/{year}/budget", tags=["plans"], summary="预算估算与逐月支出（R41.1）")
async def get_budget(year: Year, session: SessionDep, settings: SettingsDep,
                     principal: Annotated[Principal, Depends(require(*READERS, Role.PROCURATORATE))],
                     office: Annotated[str | None, Query(max_length=200)] = None) -> BudgetRead:
    scoped = plan_office(principal, office)
    plans = await svc.get_plans(session, year, scoped)
    if not principal.has(*READERS):
        district, spend_scope = principal.district, True  # a procuratorate: its district's spend
    elif scoped is not None:
        # one office's plan: the spend of that plan's district (R41.1 budgets are per district)
        district, spend_scope = (plans[0]["district"] if plans else None), True
    else:
        district, spend_scope = None, False
    return BudgetRead(**await svc.budget(session, settings, year=year, plans=plans, district=district,
                                         spend_scope=spend_scope))


# --- supervisors: bank details -------------------------------------------------------------------


@router.put("/supervisors/{supervisor_id}/bank-account", tags=["supervisors"], summary="登记发放账户（加密保存）")
async def put_bank_account(supervisor_id: uuid.UUID, body: BankAccountIn, session: SessionDep, cipher: CipherDep,
                           principal: Actor) -> SupervisorRead:
    row = await svc.set_bank_account(session, cipher, actor=principal.subject, supervisor_id=supervisor_id,
                                     bank_name=body.bank_name, account_number=body.account_number)
    return SupervisorRead(**row._mapping)


@router.get("/supervisors/{supervisor_id}", tags=["supervisors"], summary="监督员经费信息（账号脱敏）")
async def get_supervisor(supervisor_id: uuid.UUID, session: SessionDep,
                         principal: Annotated[Principal, Depends(require(*READERS, Role.SUPERVISOR))]
                         ) -> SupervisorRead:
    ensure_self_or(principal, supervisor_id, *READERS)
    return SupervisorRead(**(await svc.get_supervisor(session, supervisor_id))._mapping)


# --- subsidy lines (R42.1) -----------------------------------------------------------------------


def scoped_district(principal: Principal, district: str | None) -> str | None:
    """R2.1: the district a list is limited to: any (or none) for city-wide roles; a district bureau's own
    (asking for another is a 403 `R2.1`)."""
    if principal.is_citywide or not principal.has(*DISTRICT_SCOPED_ROLES):
        return district
    ensure_district(principal, district or principal.district)
    return principal.district


def own_supervisor(principal: Principal, supervisor_id: uuid.UUID | None, what: str) -> uuid.UUID | None:
    """A supervisor reads only their own items (403 for another's); other readers any, or all."""
    if principal.has(*READERS, Role.DISTRICT_BUREAU):
        return supervisor_id
    if supervisor_id is not None and not principal.is_self(supervisor_id):
        raise forbidden(f"人民监督员只能查看本人的{what}。")
    return uuid.UUID(principal.supervisor_id)


def list_period(period: str | None, since: date | None, until: date | None) -> tuple[date | None, date | None]:
    """A list's month (`period`, YYYY-MM) or `from`/`to` range (422 `invalid_range` when reversed); not both."""
    paging.check_date_range(since, until)
    if period is None:
        return since, until
    if since is not None or until is not None:
        raise Unprocessable("invalid_range", "日期范围无效", "月份（period）与起止日期（from/to）只能选其一。")
    start, end = rules.month_bounds(*parse_period(period))
    return start, end - timedelta(days=1)


LIST_READERS = (*READERS, Role.DISTRICT_BUREAU, Role.SUPERVISOR)
ListReader = Annotated[Principal, Depends(require(*LIST_READERS))]
MonthQuery = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="月份，如 2026-11")]
Since = Annotated[date | None, Query(alias="from", description="日期起（含）")]
Until = Annotated[date | None, Query(alias="to", description="日期止（含）")]
Actionable = Annotated[bool | None, Query(description="true：本人现在可以办理的（审核、批准他人审核的、列表或支付）")]
LineSort = Literal["activity_date", "-activity_date"]
ClaimSort = Literal["created_at", "-created_at", "travel_date", "-travel_date"]
KEY_TYPES = {"activity_date": (date, uuid.UUID), "travel_date": (date, uuid.UUID), "created_at": (datetime, uuid.UUID)}


def actor_of(principal: Principal) -> str | None:
    """The user the four-eyes flags are computed for: a finance user; None for readers who never act."""
    return principal.subject if principal.has(*FIN) else None


@router.get("/subsidy-lines", tags=["subsidies"],
            summary="履职补助工作清单：按状态、月份或日期、区市、监督员筛选（区市仅本辖区，监督员仅本人），游标分页")
async def list_lines(session: SessionDep, cipher: CipherDep, principal: ListReader,
                     status: Annotated[list[State] | None, Query(
                         description="状态，可重复：draft 待审核、checked 待批准、approved、paid、rejected")] = None,
                     period: MonthQuery = None, since: Since = None, until: Until = None,
                     district: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
                     supervisor_id: uuid.UUID | None = None, actionable: Actionable = None,
                     sort: Annotated[LineSort, Query(description="按活动日期，“-”为倒序")] = "activity_date",
                     limit: paging.Limit = 50, cursor: paging.CursorParam = None) -> paging.CursorPage[LineListItem]:
    """R42.1: each line with `waiting_for` (check, approve, issue, pay) and `may_act` for the caller (four eyes:
    never approve what one checked)."""
    supervisor_id = own_supervisor(principal, supervisor_id, "补助明细")
    district = scoped_district(principal, district)
    since, until = list_period(period, since, until)
    statuses, actor = sorted(set(status or [])), actor_of(principal)
    filters = {"status": statuses, "from": since, "to": until, "district": district, "supervisor_id": supervisor_id,
               "actionable": actionable, "actor": actor if actionable is not None else None, "sort": sort}
    sign = paging.signer(cipher)
    after = paging.decode(sign, cursor, scope="finance.subsidy_lines", filters=filters,
                          types=KEY_TYPES[sort.lstrip("-")])
    items, total, next_key = await worklists.list_lines(
        session, statuses=statuses, supervisor_id=supervisor_id, district=district, since=since, until=until,
        actionable=actionable, actor=actor, sort=sort, limit=limit, after=after)
    return paging.CursorPage(items=[LineListItem(**i) for i in items], total=total, limit=limit,
                             next_cursor=None if next_key is None else paging.encode(
                                 sign, scope="finance.subsidy_lines", filters=filters, key=next_key))


@router.get("/subsidy-lines/{line_id}", tags=["subsidies"], summary="补助明细")
async def get_line(line_id: uuid.UUID, session: SessionDep,
                   principal: Annotated[Principal, Depends(require(*READERS, Role.SUPERVISOR))]) -> LineRead:
    row = await svc.get_line(session, line_id)
    if not principal.has(*READERS) and not principal.is_self(row.supervisor_id):
        raise NotFound("补助明细", line_id)  # do not reveal other supervisors' lines exist
    return LineRead(**svc.line_view(row))


@router.post("/subsidy-lines/{line_id}/check", tags=["subsidies"], summary="审核（草稿→已审核）")
async def check_line(line_id: uuid.UUID, session: SessionDep, outbox: OutboxDep, settings: SettingsDep,
                     principal: Actor) -> LineRead:
    return LineRead(**svc.line_view(await svc.transition_line(session, outbox, principal, line_id, "check",
                                                              settings=settings)))


@router.post("/subsidy-lines/{line_id}/approve", tags=["subsidies"],
             summary="批准（已审核→已批准，不得自批；超出年度预算须另一名财务人员批准超支，R41.1）")
async def approve_line(line_id: uuid.UUID, session: SessionDep, outbox: OutboxDep, settings: SettingsDep,
                       principal: Actor) -> LineRead:
    return LineRead(**svc.line_view(await svc.transition_line(session, outbox, principal, line_id, "approve",
                                                              settings=settings)))


@router.post("/subsidy-lines/{line_id}/budget-excess", tags=["subsidies"],
             summary="批准超出预算（R41.1：由另一名财务人员说明理由）")
async def approve_line_excess(line_id: uuid.UUID, body: ReasonIn, session: SessionDep,
                              principal: Actor) -> LineRead:
    return LineRead(**svc.line_view(await svc.approve_excess(session, principal, line_id, reason=body.reason)))


@router.post("/subsidy-lines/{line_id}/pay", tags=["subsidies"],
             summary="支付（已批准→已支付；须已列入签发的发放表并已登记反馈函）")
async def pay_line(line_id: uuid.UUID, body: PayIn, session: SessionDep, outbox: OutboxDep, settings: SettingsDep,
                   principal: Actor) -> LineRead:
    row = await svc.transition_line(session, outbox, principal, line_id, "pay", settings=settings,
                                    reference=body.payment_reference)
    return LineRead(**svc.line_view(row))


@router.post("/subsidy-lines/{line_id}/reject", tags=["subsidies"], summary="驳回（须说明理由；支付前）")
async def reject_line(line_id: uuid.UUID, body: ReasonIn, session: SessionDep, outbox: OutboxDep,
                      settings: SettingsDep, principal: Actor) -> LineRead:
    row = await svc.transition_line(session, outbox, principal, line_id, "reject", settings=settings,
                                    reason=body.reason)
    return LineRead(**svc.line_view(row))


# --- travel claims (R43.1) -----------------------------------------------------------------------


@router.post("/travel-claims", status_code=201, tags=["travel"], summary="差旅费报销申报（R43.1）")
async def create_claim(body: TravelClaimCreate, session: SessionDep, settings: SettingsDep,
                       principal: Annotated[Principal, Depends(require(*FIN, Role.SUPERVISOR))]) -> TravelClaimRead:
    supervisor_id = body.supervisor_id
    if not principal.has(*FIN):
        if supervisor_id is not None and not principal.is_self(supervisor_id):
            raise forbidden("人民监督员只能为本人申报差旅费。")
        supervisor_id = uuid.UUID(principal.supervisor_id)
    elif supervisor_id is None:
        raise Unprocessable("supervisor_required", "缺少报销人", "财务人员代为申报时须指定人民监督员。")
    claim_id = await svc.create_claim(
        session, settings, actor=principal.subject, supervisor_id=supervisor_id, purpose_kind=body.purpose_kind,
        purpose_ref=body.purpose_ref, travel_date=body.travel_date, items=[i.model_dump() for i in body.items])
    return TravelClaimRead(**await svc.claim_view(session, settings, await svc.get_claim_row(session, claim_id)))


async def _visible_claim(session, principal: Principal, claim_id: uuid.UUID):
    row = await svc.get_claim_row(session, claim_id)
    if not principal.has(*READERS) and not principal.is_self(row.supervisor_id):
        raise NotFound("差旅费报销单", claim_id)
    return row


@router.get("/travel-claims", tags=["travel"],
            summary="差旅费报销工作清单：按状态、差旅日期、区市、监督员、事由筛选（监督员仅本人），游标分页")
async def list_claims(session: SessionDep, settings: SettingsDep, cipher: CipherDep, principal: ListReader,
                      status: Annotated[list[State] | None, Query(description="状态，可重复")] = None,
                      since: Since = None, until: Until = None,
                      district: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
                      supervisor_id: uuid.UUID | None = None,
                      purpose_kind: Literal["activity", "training", "meeting"] | None = None,
                      actionable: Actionable = None,
                      sort: Annotated[ClaimSort, Query(description="按申报时间或差旅日期，“-”为倒序")] = "-created_at",
                      limit: paging.Limit = 50, cursor: paging.CursorParam = None
                      ) -> paging.CursorPage[TravelClaimListItem]:
    """R43.1: each claim with `waiting_for` and `may_act` (four eyes), its items, receipts and cap warnings."""
    supervisor_id = own_supervisor(principal, supervisor_id, "报销单")
    district = scoped_district(principal, district)
    paging.check_date_range(since, until)
    statuses, actor = sorted(set(status or [])), actor_of(principal)
    filters = {"status": statuses, "from": since, "to": until, "district": district, "supervisor_id": supervisor_id,
               "purpose_kind": purpose_kind, "actionable": actionable,
               "actor": actor if actionable is not None else None, "sort": sort}
    sign = paging.signer(cipher)
    after = paging.decode(sign, cursor, scope="finance.travel_claims", filters=filters,
                          types=KEY_TYPES[sort.lstrip("-")])
    items, total, next_key = await worklists.list_claims(
        session, settings, statuses=statuses, supervisor_id=supervisor_id, district=district,
        purpose_kind=purpose_kind, since=since, until=until, actionable=actionable, actor=actor, sort=sort,
        limit=limit, after=after)
    return paging.CursorPage(items=[TravelClaimListItem(**i) for i in items], total=total, limit=limit,
                             next_cursor=None if next_key is None else paging.encode(
                                 sign, scope="finance.travel_claims", filters=filters, key=next_key))


@router.get("/travel-claims/{claim_id}", tags=["travel"], summary="差旅费报销单")
async def get_claim(claim_id: uuid.UUID, session: SessionDep, settings: SettingsDep,
                    principal: Annotated[Principal, Depends(require(*READERS, Role.SUPERVISOR))]) -> TravelClaimRead:
    return TravelClaimRead(**await svc.claim_view(session, settings, await _visible_claim(session, principal,
                                                                                          claim_id)))


RECEIPT_BODY = {"requestBody": {"required": True, "content": {
    t: {"schema": {"type": "string", "format": "binary"}} for t in ("application/pdf", "image/jpeg", "image/png")}}}


@router.put("/travel-claims/{claim_id}/items/{item_id}/receipt", tags=["travel"], openapi_extra=RECEIPT_BODY,
            summary="上传票据（请求体为文件本身，Content-Type 为其类型）")
async def put_receipt(claim_id: uuid.UUID, item_id: uuid.UUID, request: Request, session: SessionDep,
                      settings: SettingsDep,
                      principal: Annotated[Principal, Depends(require(*FIN, Role.SUPERVISOR))]) -> dict:
    await _visible_claim(session, principal, claim_id)
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > settings.receipt_max_bytes:
        raise ProblemError(413, "payload_too_large", "票据文件过大", "票据文件超过大小限制。")
    content = bytearray()
    async for chunk in request.stream():
        content.extend(chunk)
        if len(content) > settings.receipt_max_bytes:
            raise ProblemError(413, "payload_too_large", "票据文件过大", "票据文件超过大小限制。")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    digest = await svc.store_receipt(session, settings, actor=principal.subject, claim_id=claim_id, item_id=item_id,
                                     content=bytes(content), content_type=content_type)
    return {"item_id": str(item_id), "sha256": digest, "size": len(content), "content_type": content_type}


@router.get("/travel-claims/{claim_id}/items/{item_id}/receipt", tags=["travel"], summary="下载票据",
            response_class=Response, responses={200: {"content": {"application/pdf": {}, "image/jpeg": {},
                                                                  "image/png": {}}}})
async def get_receipt(claim_id: uuid.UUID, item_id: uuid.UUID, session: SessionDep,
                      principal: Annotated[Principal, Depends(require(*READERS, Role.SUPERVISOR))]) -> Response:
    await _visible_claim(session, principal, claim_id)
    row = await svc.get_receipt(session, claim_id, item_id)
    await audit.append(session, platform.audit, actor=principal.subject, action="travel_claim.receipt_read",
                       subject=f"claim:{claim_id}", details={"item_id": str(item_id)})
    return Response(row.content, media_type=row.content_type, headers={"ETag": f'"{row.sha256}"'})


async def _claim_step(session, settings, principal, claim_id, action, **kw) -> TravelClaimRead:
    """One step of a travel claim's flow (R43.1)."""
    row = await svc.transition_claim(session, settings, principal, claim_id, action, **kw)
    return TravelClaimRead(**await svc.claim_view(session, settings, row))


@router.post("/travel-claims/{claim_id}/check", tags=["travel"], summary="审核（须每项附票据）")
async def check_claim(claim_id: uuid.UUID, session: SessionDep, settings: SettingsDep,
                      principal: Actor) -> TravelClaimRead:
    return await _claim_step(session, settings, principal, claim_id, "check")


@router.post("/travel-claims/{claim_id}/approve", tags=["travel"], summary="批准（可部分核定并说明理由；不得自批）")
async def approve_claim(claim_id: uuid.UUID, session: SessionDep, settings: SettingsDep, principal: Actor,
                        body: ClaimApproveIn | None = None) -> TravelClaimRead:
    body = body or ClaimApproveIn()
    return await _claim_step(session, settings, principal, claim_id, "approve", approved_fen=body.approved_fen,
                             reason=body.reason)


@router.post("/travel-claims/{claim_id}/budget-excess", tags=["travel"],
             summary="批准超出预算（R41.1：由另一名财务人员说明理由）")
async def approve_claim_excess(claim_id: uuid.UUID, body: ReasonIn, session: SessionDep, settings: SettingsDep,
                               principal: Actor) -> TravelClaimRead:
    row = await svc.approve_excess(session, principal, claim_id, reason=body.reason, claim=True)
    return TravelClaimRead(**await svc.claim_view(session, settings, row))


@router.post("/travel-claims/{claim_id}/pay", tags=["travel"], summary="支付（须已列入签发的发放表）")
async def pay_claim(claim_id: uuid.UUID, body: PayIn, session: SessionDep, settings: SettingsDep,
                    principal: Actor) -> TravelClaimRead:
    return await _claim_step(session, settings, principal, claim_id, "pay", reference=body.payment_reference)


@router.post("/travel-claims/{claim_id}/reject", tags=["travel"], summary="驳回（须说明理由；支付前）")
async def reject_claim(claim_id: uuid.UUID, body: ReasonIn, session: SessionDep, settings: SettingsDep,
                       principal: Actor) -> TravelClaimRead:
    return await _claim_step(session, settings, principal, claim_id, "reject", reason=body.reason)


# --- the procuratorate's covering letter (R42.1) -------------------------------------------------


@router.post("/covering-letters", status_code=201, tags=["disbursements"],
             summary="登记检察院出具的人民监督员履职情况反馈函（R42.1，发放前须核验）")
async def post_covering_letter(body: CoveringLetterIn, session: SessionDep, principal: Actor) -> CoveringLetterRead:
    year, month = parse_period(body.period)
    row = await svc.record_covering_letter(session, actor=principal.subject, year=year, month=month,
                                           district=body.district, reference=body.reference)
    return CoveringLetterRead(**row._mapping)


@router.get("/covering-letters", tags=["disbursements"], summary="某月已登记的反馈函")
async def get_covering_letters(period: Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")],
                               session: SessionDep, principal: Reader) -> list[CoveringLetterRead]:
    year, month = parse_period(period)
    return [CoveringLetterRead(**r._mapping) for r in await svc.list_covering_letters(session, year=year,
                                                                                     month=month)]


# --- the monthly disbursement table (R42.1) ------------------------------------------------------


async def _access(request: Request, session, principal: Principal, period: str, unmasked: bool,
                  fmt: str, scope: str = ALL_DISTRICTS) -> tuple[int, int, FieldCipher | None]:
    """(year, month, cipher if the full bank accounts are to be shown — finance only, audited)."""
    year, month = parse_period(period)
    if not unmasked:
        return year, month, None
    if not principal.has(Role.FINANCE):
        raise forbidden("只有财务人员可以导出未脱敏的银行账号。")
    await audit.append(session, platform.audit, actor=principal.subject, action="disbursement.unmasked_export",
                       subject=f"disbursement:{year}-{month:02d}:{scope}", details={"format": fmt})
    return year, month, request.app.state.cipher


Unmasked = Annotated[bool, Query(description="仅财务人员：导出完整银行账号（记入审计日志）")]
NO_CONTROL = r"^[^\x00-\x1f\x7f]+$"  # a district is printed in the xlsx: no control characters
Scope = Annotated[str | None, Query(min_length=1, max_length=100, pattern=NO_CONTROL, description="区市；省略为全市")]
Version = Annotated[int | None, Query(ge=1, le=10_000, description="版本；省略为现行版本（或草稿）")]


def scope_of(district: str | None) -> str:
    return district or ALL_DISTRICTS


async def _table(request: Request, session, principal: Principal, period: str, unmasked: bool, fmt: str,
                 district: str | None = None, version: int | None = None):
    year, month, cipher = await _access(request, session, principal, period, unmasked, fmt, scope_of(district))
    return await disbursement.build(session, year, month, scope=scope_of(district), version=version, cipher=cipher)


@router.get("/disbursements/{period}", tags=["disbursements"],
            summary="《威海市人民监督员履职补助发放表》（已签发的为定稿，否则为草稿）")
async def get_disbursement(period: Period, request: Request, session: SessionDep, principal: Reader,
                           unmasked: Unmasked = False, district: Scope = None,
                           version: Version = None) -> DisbursementRead:
    table = await _table(request, session, principal, period, unmasked, "json", district, version)
    if version is not None and table.status == "draft":
        raise NotFound("发放表版本", f"{period} 第{version}版")
    return DisbursementRead(**table.as_dict())


async def _read_table(session, year: int, month: int, scope: str) -> DisbursementRead:
    return DisbursementRead(**(await disbursement.build(session, year, month, scope=scope)).as_dict())


@router.post("/disbursements/{period}/issue", tags=["disbursements"],
             summary="签发本月发放表（R42.1：编批次号并定稿；此后批准的明细列入下期）")
async def issue_disbursement(period: Period, session: SessionDep, principal: Actor,
                             district: Scope = None) -> DisbursementRead:
    year, month = parse_period(period)
    with svc.refusals("发放表"):
        await disbursement.issue(session, actor=principal.subject, year=year, month=month, scope=scope_of(district))
    return await _read_table(session, year, month, scope_of(district))


@router.post("/disbursements/{period}/corrections", tags=["disbursements"],
             summary="更正已签发的发放表（R42.1：生成新版本，原版本保留）")
async def correct_disbursement(period: Period, body: CorrectionIn, session: SessionDep, principal: Actor,
                               district: Scope = None) -> DisbursementRead:
    year, month = parse_period(period)
    with svc.refusals("发放表"):
        await disbursement.correct(session, actor=principal.subject, year=year, month=month,
                                   scope=scope_of(district), reason=body.reason,
                                   exclude_lines=body.exclude_line_ids, exclude_claims=body.exclude_claim_ids)
    return await _read_table(session, year, month, scope_of(district))


@router.get("/disbursements/{period}/versions", tags=["disbursements"], summary="发放表的各版本")
async def get_disbursement_versions(period: Period, session: SessionDep, principal: Reader,
                                    district: Scope = None) -> list[DisbursementVersionRead]:
    year, month = parse_period(period)
    rows = await disbursement.versions(session, year, month, scope=scope_of(district))
    return [DisbursementVersionRead(**r._mapping) for r in rows]


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/disbursements/{period}/xlsx", tags=["disbursements"], summary="发放表 xlsx",
            response_class=Response, responses={200: {"content": {XLSX: {}}}})
async def get_disbursement_xlsx(period: Period, request: Request, session: SessionDep, principal: Reader,
                                unmasked: Unmasked = False, district: Scope = None,
                                version: Version = None) -> Response:
    year, month, cipher = await _access(request, session, principal, period, unmasked, "xlsx", scope_of(district))
    content = await disbursement.export_xlsx(session, year, month, scope=scope_of(district), version=version,
                                             cipher=cipher)
    name = f"disbursement-{year}-{month:02d}.xlsx"
    return Response(content, media_type=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/disbursements/{period}/pdf", tags=["disbursements"], summary="发放表 PDF",
            response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
async def get_disbursement_pdf(period: Period, request: Request, session: SessionDep, principal: Reader,
                               settings: SettingsDep, unmasked: Unmasked = False, district: Scope = None,
                               version: Version = None) -> Response:
    """R42.1: an issued table (masked) is a document of record: archived once per content (the payment marks are
    part of it), served again byte-identical; a draft or an unmasked copy is rendered, never archived."""
    table = await _table(request, session, principal, period, unmasked, "pdf", district, version)
    name = f"disbursement-{table.year}-{table.month:02d}.pdf"
    day = disbursement.document_day(table)
    data = disbursement.pdf_document(table, unit=settings.bureau_name, dated=day)
    render = partial(disbursement.render, dated=day)
    if table.status == "draft" or not table.masked:
        return Response(await asyncio.to_thread(render, data), media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    doc = await archive.issue(session, documents, kind=disbursement.KIND, subject=str(table.table_id), data=data,
                              render=render, actor=principal.subject)
    return Response(doc.pdf, media_type="application/pdf", headers=archive.headers(doc, name, disposition="attachment"))


@router.get("/disbursements/{period}/reconciliation", tags=["disbursements"], summary="对账：明细与签字反馈表")
async def get_reconciliation(period: Period, session: SessionDep, principal: Reader,
                             district: Scope = None) -> ReconciliationRead:
    year, month = parse_period(period)
    return ReconciliationRead(**await disbursement.reconcile(session, year, month, scope=scope_of(district)))


# --- statistics (R42.1, R43.1) -------------------------------------------------------------------

StatsReader = Annotated[Principal, Depends(require(Role.BUREAU_ADMIN, Role.DISTRICT_BUREAU, Role.FINANCE,
                                                   Role.AUDITOR))]


@router.get("/statistics/subsidies", tags=["statistics"],
            summary="已支付的履职补助与差旅费统计：按年、月、区市、类别（按支付日期；区市司法局仅本辖区）")
async def subsidy_statistics(
    session: SessionDep, principal: StatsReader,
    year: Annotated[int, Query(ge=2024, le=2999, description="年度（按支付日期）")],
    month: Annotated[int | None, Query(ge=1, le=12, description="月份；省略为全年逐月")] = None,
    district: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
) -> PaidStatisticsRead:
    district = scoped_district(principal, district)
    return PaidStatisticsRead(**await worklists.paid_statistics(session, year=year, month=month, district=district))

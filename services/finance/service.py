"""Use cases of the finance service. The caller owns the transaction: nothing here commits."""

import hashlib
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime

from sqlalchemy import and_, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.finance import rules
from services.finance.config import FinanceSettings
from services.finance.models import (
    feedback_form,
    plan,
    plan_row,
    platform,
    rate,
    receipt,
    subsidy_line,
    supervisor,
    travel_claim,
    travel_item,
)
from services.finance.rules import pricing_type
from shared import audit
from shared.activity_types import ACTIVITY_TYPES, label
from shared.auth import Principal
from shared.crypto import FieldCipher
from shared.errors import Conflict, NotFound, ProblemError, Unprocessable
from shared.events.contracts import FeedbackSigned, SubsidyApproved
from shared.events.outbox import Outbox

BANK_CONTEXT = "finance.supervisor.bank_account"
PAYABLE = ("approved", "paid")


def now() -> datetime:
    return datetime.now(UTC)


async def _audit(session: AsyncSession, *, actor: str, action: str, subject: object, **details) -> None:
    await audit.append(session, platform.audit, actor=actor, action=action, subject=str(subject), details=details)


# --- rates (N-RATE) ------------------------------------------------------------------------------


def _rate(row) -> rules.Rate:
    return rules.Rate(row.id, row.activity_type, row.amount_fen, row.effective_from)


async def rate_on(session: AsyncSession, activity_type: str, on: date) -> rules.Rate:
    """N-RATE: the rate row in force on `on` (greatest effective_from ≤ on); NoRateError if none."""
    row = (await session.execute(
        select(rate).where(rate.c.activity_type == activity_type, rate.c.effective_from <= on)
        .order_by(rate.c.effective_from.desc(), rate.c.id.desc()).limit(1)
    )).first()
    if row is None:
        raise rules.NoRateError(f"no {activity_type} rate in force on {on.isoformat()}")
    return _rate(row)


async def list_rates(session: AsyncSession, activity_type: str | None = None) -> Sequence:
    query = select(rate).order_by(rate.c.activity_type, rate.c.effective_from, rate.c.id)
    if activity_type:
        query = query.where(rate.c.activity_type == activity_type)
    return (await session.execute(query)).all()


async def add_rate(session: AsyncSession, *, actor: str, activity_type: str, amount_fen: int,
                   effective_from: date):
    """N-RATE: append a rate; existing lines keep their stored amount and rate id (never repriced)."""
    row = (await session.execute(
        rate.insert().values(activity_type=activity_type, amount_fen=amount_fen, effective_from=effective_from,
                             created_by=actor).returning(*rate.c)
    )).one()
    await _audit(session, actor=actor, action="rate.created", subject=f"rate:{row.id}",
                 activity_type=activity_type, amount_fen=amount_fen, effective_from=effective_from.isoformat())
    return row


# --- supervisors: projection of the registry + bank details ---------------------------------------


async def project_supervisor(session: AsyncSession, supervisor_id: uuid.UUID, *, name: str | None = None,
                             district: str | None = None) -> None:
    """Upsert the name/district known from registry events (None leaves a field unchanged)."""
    values = {k: v for k, v in {"name": name, "district": district}.items() if v is not None}
    stmt = insert(supervisor).values(id=supervisor_id, **values)
    if values:
        stmt = stmt.on_conflict_do_update(index_elements=["id"], set_={**values, "updated_at": func.now()})
    else:
        stmt = stmt.on_conflict_do_nothing()
    await session.execute(stmt)


async def set_bank_account(session: AsyncSession, cipher: FieldCipher, *, actor: str, supervisor_id: uuid.UUID,
                           bank_name: str, account_number: str):
    """Store the account encrypted, with a masked copy for lists and the default table."""
    values = {
        "bank_name": bank_name,
        "bank_account_encrypted": cipher.encrypt(account_number, context=BANK_CONTEXT),
        "bank_account_masked": rules.mask_account(account_number),
        "bank_updated_by": actor,
    }
    await session.execute(
        insert(supervisor).values(id=supervisor_id, **values)
        .on_conflict_do_update(index_elements=["id"], set_={**values, "updated_at": func.now()})
    )
    await _audit(session, actor=actor, action="supervisor.bank_account_set", subject=f"supervisor:{supervisor_id}",
                 fields=["bank_name", "bank_account"])
    return await get_supervisor(session, supervisor_id)


async def get_supervisor(session: AsyncSession, supervisor_id: uuid.UUID):
    row = (await session.execute(select(supervisor).where(supervisor.c.id == supervisor_id))).first()
    if row is None:
        raise NotFound("人民监督员", supervisor_id)
    return row


# --- R42.1: FeedbackSigned → one subsidy line ----------------------------------------------------


async def record_feedback(session: AsyncSession, event: FeedbackSigned) -> uuid.UUID | None:
    """R42.1: keep the signed form and create exactly one draft line per (supervisor, activity).

    Returns the new line id, or None when the line already existed (a redelivery or a second form).
    ValueError when the signature is not verified or no rate is in force (the inbox dead-letters it).
    Observers: casework emits FeedbackSigned only for participating supervisors (EVENTS.md); the v1
    payload has no observer flag, so finance relies on that contract.
    """
    if not rules.signature_verified(event.signature_hash, event.signed_at):
        raise ValueError(f"R42.1: form {event.form_id} has no verified signature; no subsidy line")
    try:
        priced_by, known = rules.price_line([await rate_on(session, pricing_type(event.activity_type),
                                                           event.activity_date)],
                                            event.activity_type, event.activity_date)
    except rules.NoRateError as exc:
        raise ValueError(f"N-RATE: {exc}") from exc
    await session.execute(
        insert(feedback_form).values(
            form_id=event.form_id, activity_id=event.activity_id, request_id=event.request_id,
            supervisor_id=event.supervisor_id, activity_type=event.activity_type,
            activity_date=event.activity_date, district=event.district,
            signature_hash=event.signature_hash.lower(), signed_at=event.signed_at,
        ).on_conflict_do_nothing()
    )
    await project_supervisor(session, event.supervisor_id)
    line_id = uuid.uuid4()
    inserted = (await session.execute(
        insert(subsidy_line).values(
            id=line_id, supervisor_id=event.supervisor_id, activity_id=event.activity_id, form_id=event.form_id,
            activity_type=event.activity_type, type_known=known, activity_date=event.activity_date,
            district=event.district, rate_id=priced_by.id, amount_fen=priced_by.amount_fen, status=rules.DRAFT,
        ).on_conflict_do_nothing(constraint="uq_subsidy_line_supervisor_activity").returning(subsidy_line.c.id)
    )).scalar_one_or_none()
    if inserted is None:
        return None
    await _audit(session, actor="event:FeedbackSigned", action="subsidy_line.created", subject=f"line:{line_id}",
                 form_id=str(event.form_id), activity_id=str(event.activity_id), amount_fen=priced_by.amount_fen,
                 rate_id=priced_by.id, type_known=known)
    return line_id


def line_view(row) -> dict:
    data = dict(row._mapping)
    return {**data, "activity_type_label": label(row.activity_type), "amount_yuan": rules.yuan(row.amount_fen)}


async def get_line(session: AsyncSession, line_id: uuid.UUID, *, for_update: bool = False):
    query = select(subsidy_line).where(subsidy_line.c.id == line_id)
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound("补助明细", line_id)
    return row


async def list_lines(session: AsyncSession, *, supervisor_id: uuid.UUID | None, period: tuple[int, int] | None,
                     status: str | None, limit: int, offset: int) -> tuple[Sequence, int]:
    conditions = []
    if supervisor_id:
        conditions.append(subsidy_line.c.supervisor_id == supervisor_id)
    if period:
        start, end = rules.month_bounds(*period)
        conditions.append(and_(subsidy_line.c.activity_date >= start, subsidy_line.c.activity_date < end))
    if status:
        conditions.append(subsidy_line.c.status == status)
    where = and_(True, *conditions)
    total = await session.scalar(select(func.count()).select_from(subsidy_line).where(where))
    rows = (await session.execute(
        select(subsidy_line).where(where).order_by(subsidy_line.c.activity_date, subsidy_line.c.id)
        .limit(limit).offset(offset)
    )).all()
    return rows, total or 0


def _refuse(exc: Exception, what: str) -> ProblemError:
    if isinstance(exc, rules.SelfApproval):
        return ProblemError(403, "self_approval", "不得自行审核或批准",
                            f"{what}的批准人不得是审核人、申报人或受领人本人（R42.1/R43.1）。")
    assert isinstance(exc, rules.InvalidTransition)
    return Conflict("invalid_transition", "状态不允许此操作",
                    f"{what}当前状态为 {exc.state}，不能执行 {exc.action}；流程为 草稿→已审核→已批准→已支付。")


def _transition_values(row, principal: Principal, action: str, *, claimant_supervisor_id: str,
                       creator: str | None, paid_on: date | None, reference: str | None) -> dict:
    """The column updates of one step; raises InvalidTransition / SelfApproval."""
    new_state = rules.next_state(row.status, action)
    at = now()
    if action == "check":
        rules.ensure_not_claimant(principal.supervisor_id, claimant_supervisor_id)
        return {"status": new_state, "checked_by": principal.subject, "checked_at": at}
    if action == "approve":
        rules.ensure_not_self_approval(principal.subject, checked_by=row.checked_by, parties=[creator],
                                       approver_supervisor_id=principal.supervisor_id,
                                       claimant_supervisor_id=claimant_supervisor_id)
        return {"status": new_state, "approved_by": principal.subject, "approved_at": at}
    rules.ensure_not_claimant(principal.supervisor_id, claimant_supervisor_id)
    return {"status": new_state, "paid_on": paid_on, "payment_reference": reference}


async def transition_line(session: AsyncSession, outbox: Outbox, principal: Principal, line_id: uuid.UUID,
                          action: str, *, paid_on: date | None = None, reference: str | None = None):
    """R42.1: draft → checked → approved → paid; no self-approval; audit every step; SubsidyApproved."""
    row = await get_line(session, line_id, for_update=True)
    try:
        values = _transition_values(row, principal, action, claimant_supervisor_id=str(row.supervisor_id),
                                    creator=None, paid_on=paid_on, reference=reference)
    except (rules.SelfApproval, rules.InvalidTransition) as exc:
        raise _refuse(exc, "补助明细") from exc
    updated = (await session.execute(
        subsidy_line.update().where(subsidy_line.c.id == line_id).values(**values).returning(*subsidy_line.c)
    )).one()
    await _audit(session, actor=principal.subject, action=f"subsidy_line.{action}", subject=f"line:{line_id}",
                 from_state=row.status, to_state=updated.status, amount_fen=row.amount_fen)
    if action == "approve":
        await outbox.add(session, SubsidyApproved(
            line_id=row.id, supervisor_id=row.supervisor_id, activity_id=row.activity_id,
            amount_fen=row.amount_fen, approved_by=principal.subject, approved_at=updated.approved_at,
        ))
    return updated


# --- R43.1: travel claims ------------------------------------------------------------------------


async def create_claim(session: AsyncSession, settings: FinanceSettings, *, actor: str, supervisor_id: uuid.UUID,
                       purpose_kind: str, purpose_ref: str, travel_date: date, items: list[dict]) -> uuid.UUID:
    claim_id = uuid.uuid4()
    total = sum(item["amount_fen"] for item in items)
    await project_supervisor(session, supervisor_id)
    await session.execute(travel_claim.insert().values(
        id=claim_id, supervisor_id=supervisor_id, purpose_kind=purpose_kind, purpose_ref=purpose_ref,
        travel_date=travel_date, total_fen=total, status=rules.DRAFT, created_by=actor,
    ))
    await session.execute(travel_item.insert(), [
        {"id": uuid.uuid4(), "claim_id": claim_id, "position": i, **item} for i, item in enumerate(items)
    ])
    warnings = rules.travel_warnings(_items(items), settings.travel_caps_fen)
    await _audit(session, actor=actor, action="travel_claim.created", subject=f"claim:{claim_id}",
                 to_state=rules.DRAFT, amount_fen=total, items=len(items), cap_warnings=len(warnings))
    return claim_id


def _items(items) -> list[rules.TravelItem]:
    get = (lambda i, k: i[k]) if items and isinstance(items[0], dict) else (lambda i, k: getattr(i, k))
    return [rules.TravelItem(get(i, "category"), get(i, "amount_fen"), get(i, "nights")) for i in items]


async def get_claim_row(session: AsyncSession, claim_id: uuid.UUID, *, for_update: bool = False):
    query = select(travel_claim).where(travel_claim.c.id == claim_id)
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound("差旅费报销单", claim_id)
    return row


async def claim_view(session: AsyncSession, settings: FinanceSettings, row) -> dict:
    items = (await session.execute(
        select(travel_item, receipt.c.sha256.label("receipt_sha256"),
               receipt.c.content_type.label("receipt_content_type"))
        .select_from(travel_item.outerjoin(receipt, receipt.c.item_id == travel_item.c.id))
        .where(travel_item.c.claim_id == row.id).order_by(travel_item.c.position)
    )).all()
    return {
        **dict(row._mapping), "total_yuan": rules.yuan(row.total_fen),
        "items": [dict(i._mapping) for i in items],
        "warnings": rules.travel_warnings(_items(items), settings.travel_caps_fen),
    }


async def list_claims(session: AsyncSession, *, supervisor_id: uuid.UUID | None, status: str | None,
                      limit: int, offset: int) -> tuple[Sequence, int]:
    conditions = []
    if supervisor_id:
        conditions.append(travel_claim.c.supervisor_id == supervisor_id)
    if status:
        conditions.append(travel_claim.c.status == status)
    where = and_(True, *conditions)
    total = await session.scalar(select(func.count()).select_from(travel_claim).where(where))
    rows = (await session.execute(select(travel_claim).where(where)
                                  .order_by(travel_claim.c.created_at.desc(), travel_claim.c.id)
                                  .limit(limit).offset(offset))).all()
    return rows, total or 0


async def store_receipt(session: AsyncSession, settings: FinanceSettings, *, actor: str, claim_id: uuid.UUID,
                        item_id: uuid.UUID, content: bytes, content_type: str) -> str:
    """R43.1: attach the receipt (bytes, sha256, type) to a draft claim's item; returns the sha256."""
    claim = await get_claim_row(session, claim_id, for_update=True)
    if claim.status != rules.DRAFT:
        raise Conflict("invalid_transition", "报销单已提交审核", "只有草稿状态的报销单可以上传或更换票据。")
    item = (await session.execute(select(travel_item.c.id).where(travel_item.c.id == item_id,
                                                                 travel_item.c.claim_id == claim_id))).first()
    if item is None:
        raise NotFound("报销明细", item_id)
    if content_type not in settings.receipt_content_types:
        raise ProblemError(415, "unsupported_media_type", "不支持的票据格式",
                           f"票据须为以下格式之一：{'、'.join(settings.receipt_content_types)}。")
    if not content:
        raise Unprocessable("empty_receipt", "票据为空", "请上传票据文件。")
    if len(content) > settings.receipt_max_bytes:
        raise ProblemError(413, "payload_too_large", "票据文件过大",
                           f"票据不得超过 {settings.receipt_max_bytes // 1024 // 1024} MB。")
    digest = hashlib.sha256(content).hexdigest()
    values = {"content_type": content_type, "size": len(content), "sha256": digest, "content": content,
              "uploaded_by": actor}
    await session.execute(
        insert(receipt).values(id=uuid.uuid4(), item_id=item_id, **values)
        .on_conflict_do_update(index_elements=["item_id"], set_={**values, "uploaded_at": func.now()})
    )
    await _audit(session, actor=actor, action="travel_claim.receipt_uploaded", subject=f"claim:{claim_id}",
                 item_id=str(item_id), sha256=digest, size=len(content))
    return digest


async def get_receipt(session: AsyncSession, claim_id: uuid.UUID, item_id: uuid.UUID):
    row = (await session.execute(
        select(receipt.c.content, receipt.c.content_type, receipt.c.sha256)
        .select_from(receipt.join(travel_item, travel_item.c.id == receipt.c.item_id))
        .where(travel_item.c.claim_id == claim_id, receipt.c.item_id == item_id)
    )).first()
    if row is None:
        raise NotFound("票据", item_id)
    return row


async def transition_claim(session: AsyncSession, principal: Principal, claim_id: uuid.UUID, action: str, *,
                           paid_on: date | None = None, reference: str | None = None):
    """R43.1: the same flow as subsidy lines; checking needs a receipt on every item."""
    row = await get_claim_row(session, claim_id, for_update=True)
    if action == "check" and row.status == rules.DRAFT:
        missing = await session.scalar(
            select(func.count()).select_from(travel_item.outerjoin(receipt, receipt.c.item_id == travel_item.c.id))
            .where(travel_item.c.claim_id == claim_id, receipt.c.id.is_(None))
        )
        if missing:
            raise Unprocessable("R43.1", "缺少票据",
                                f"依据规则 R43.1，差旅费报销须附票据：尚有 {missing} 项未上传票据。")
    try:
        values = _transition_values(row, principal, action, claimant_supervisor_id=str(row.supervisor_id),
                                    creator=row.created_by, paid_on=paid_on, reference=reference)
    except (rules.SelfApproval, rules.InvalidTransition) as exc:
        raise _refuse(exc, "差旅费报销单") from exc
    updated = (await session.execute(
        travel_claim.update().where(travel_claim.c.id == claim_id).values(**values).returning(*travel_claim.c)
    )).one()
    await _audit(session, actor=principal.subject, action=f"travel_claim.{action}", subject=f"claim:{claim_id}",
                 from_state=row.status, to_state=updated.status, amount_fen=row.total_fen)
    return updated


# --- R41.1: annual plan and budget ---------------------------------------------------------------


async def put_plan(session: AsyncSession, *, actor: str, year: int, office: str, district: str | None,
                   rows: list[dict]) -> uuid.UUID:
    """R41.1: the procuratorate's written plan for a year; a resubmission replaces the rows."""
    plan_id = (await session.execute(
        insert(plan).values(id=uuid.uuid4(), year=year, office=office, district=district, submitted_by=actor)
        .on_conflict_do_update(constraint="uq_plan_year_office",
                               set_={"submitted_by": actor, "submitted_at": func.now(), "district": district})
        .returning(plan.c.id)
    )).scalar_one()
    await session.execute(plan_row.delete().where(plan_row.c.plan_id == plan_id))
    merged: dict[tuple[int, str], int] = {}
    for r in rows:
        merged[(r["month"], r["activity_type"])] = merged.get((r["month"], r["activity_type"]), 0) + r["count"]
    if merged:
        await session.execute(plan_row.insert(), [
            {"plan_id": plan_id, "month": m, "activity_type": t, "count": c} for (m, t), c in merged.items()
        ])
    await _audit(session, actor=actor, action="plan.submitted", subject=f"plan:{year}:{office}",
                 rows=len(merged), activities=sum(merged.values()))
    return plan_id


async def get_plans(session: AsyncSession, year: int, office: str | None = None) -> list[dict]:
    query = select(plan).where(plan.c.year == year).order_by(plan.c.office)
    if office is not None:
        query = query.where(plan.c.office == office)
    plans = (await session.execute(query)).all()
    out = []
    for p in plans:
        rows = (await session.execute(
            select(plan_row.c.month, plan_row.c.activity_type, plan_row.c.count)
            .where(plan_row.c.plan_id == p.id).order_by(plan_row.c.month, plan_row.c.activity_type)
        )).all()
        out.append({**dict(p._mapping), "rows": [dict(r._mapping) for r in rows]})
    return out


async def budget(session: AsyncSession, settings: FinanceSettings, *, year: int, plans: list[dict],
                 district: str | None) -> dict:
    """R41.1: budget per month = plan × rates in force on the 1st (+ travel allowance) vs approved/paid spend."""
    rows = [rules.PlanRow(r["month"], r["activity_type"], r["count"]) for p in plans for r in p["rows"]]
    cache: dict[tuple[str, date], int] = {}
    wanted = {(r.activity_type, date(year, r.month, 1)) for r in rows if r.count}
    for activity_type, day in wanted:
        try:
            cache[(activity_type, day)] = (await rate_on(session, activity_type, day)).amount_fen
        except rules.NoRateError as exc:
            raise Unprocessable("N-RATE", "没有适用的补助标准",
                                f"{label(activity_type)}在 {day.isoformat()} 没有生效的补助标准。") from exc
    allowance = settings.travel_allowance_per_activity_fen
    estimate = rules.budget_estimate(rows, year, lambda t, d: cache[(t, d)], allowance)
    spend = await monthly_spend(session, year=year, district=district)
    planned = dict.fromkeys(range(1, 13), 0)
    for r in rows:
        planned[r.month] += r.count
    months = [{"month": m, "planned_activities": planned[m], "budget_fen": estimate[m], "spend_fen": spend[m],
               "remaining_fen": estimate[m] - spend[m]} for m in range(1, 13)]
    return {"year": year, "offices": [p["office"] for p in plans], "travel_allowance_per_activity_fen": allowance,
            "months": months, "total_budget_fen": sum(estimate.values()), "total_spend_fen": sum(spend.values())}


async def monthly_spend(session: AsyncSession, *, year: int, district: str | None) -> dict[int, int]:
    """Approved + paid subsidy lines (by activity date) and travel claims (by travel date) per month."""
    start, end = date(year, 1, 1), date(year + 1, 1, 1)
    spend = dict.fromkeys(range(1, 13), 0)
    month = func.extract("month", subsidy_line.c.activity_date)
    lines = select(month, func.sum(subsidy_line.c.amount_fen)).where(
        subsidy_line.c.status.in_(PAYABLE), subsidy_line.c.activity_date >= start, subsidy_line.c.activity_date < end)
    if district is not None:
        lines = lines.where(subsidy_line.c.district == district)
    for m, total in (await session.execute(lines.group_by(month))).all():
        spend[int(m)] += int(total)
    tmonth = func.extract("month", travel_claim.c.travel_date)
    travel = (select(tmonth, func.sum(travel_claim.c.total_fen))
              .select_from(travel_claim.outerjoin(supervisor, supervisor.c.id == travel_claim.c.supervisor_id))
              .where(travel_claim.c.status.in_(PAYABLE), travel_claim.c.travel_date >= start,
                     travel_claim.c.travel_date < end))
    if district is not None:
        travel = travel.where(supervisor.c.district == district)
    for m, total in (await session.execute(travel.group_by(tmonth))).all():
        spend[int(m)] += int(total)
    return spend


def activity_types() -> list[dict]:
    return [{"code": t, "label": label(t)} for t in ACTIVITY_TYPES]

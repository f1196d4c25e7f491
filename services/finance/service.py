"""Use cases of the finance service. The caller owns the transaction: nothing here commits."""

import contextlib
import hashlib
import uuid
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.finance import rules
from services.finance.config import FinanceSettings
from services.finance.models import (
    covering_letter,
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
from shared import audit, clock
from shared.activity_types import ACTIVITY_TYPES, label
from shared.auth import Principal
from shared.crypto import FieldCipher
from shared.errors import Conflict, NotFound, ProblemError, Unprocessable
from shared.events.contracts import FeedbackSigned, SubsidyApproved, SubsidyPaid
from shared.events.outbox import Outbox

BANK_CONTEXT = "finance.supervisor.bank_account"
PAYABLE = ("approved", "paid")
SIGNATURE_SKEW = timedelta(minutes=5)  # R42.1: tolerated clock difference between casework and finance


def now() -> datetime:
    """The server clock (shared.clock): every legal timestamp of finance comes from here."""
    return clock.now()


def problem(v: rules.RuleViolation) -> ProblemError:
    """A rule's refusal as the client sees it (problem+json, the rule id as code)."""
    return ProblemError(v.status, v.code, v.title, v.detail)


@contextlib.contextmanager
def refusals(what: str) -> Iterator[None]:
    """Map the domain errors of rules.py to problem+json at the edge of a use case."""
    try:
        yield
    except rules.RuleViolation as exc:
        raise problem(exc) from exc
    except (rules.SelfApproval, rules.InvalidTransition) as exc:
        raise _refuse(exc, what) from exc


async def _lock(session: AsyncSession, key: str) -> None:
    """A transaction-scoped advisory lock: one budget check / one table issue per scope at a time."""
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(key))))


async def _audit(session: AsyncSession, *, actor: str, action: str, subject: object, **details) -> None:
    await audit.append(session, platform.audit, actor=actor, action=action, subject=str(subject), details=details)


# --- rates (N-RATE) ------------------------------------------------------------------------------


def _rate(row) -> rules.Rate:
    return rules.Rate(row.id, row.activity_type, row.amount_fen, row.effective_from, row.status == "approved")


async def rate_on(session: AsyncSession, activity_type: str, on: date) -> rules.Rate:
    """N-RATE: the rate in force on `on`, chosen by rules.rate_in_force (the one selection code); NoRateError."""
    rows = (await session.execute(
        select(rate).where(rate.c.activity_type == activity_type, rate.c.effective_from <= on)
    )).all()
    return rules.rate_in_force([_rate(r) for r in rows], activity_type, on)


async def list_rates(session: AsyncSession, activity_type: str | None = None) -> Sequence:
    query = select(rate).order_by(rate.c.activity_type, rate.c.effective_from, rate.c.id)
    if activity_type:
        query = query.where(rate.c.activity_type == activity_type)
    return (await session.execute(query)).all()


async def add_rate(session: AsyncSession, *, actor: str, activity_type: str, amount_fen: int,
                   effective_from: date):
    """N-RATE: append a rate; existing lines keep their stored amount and rate id (never repriced).

    Effective on a past date → `pending` until a second finance user approves it (approve_rate).
    """
    pending = rules.rate_needs_second_approval(effective_from, clock.today())
    values = {"status": "pending"} if pending else {"status": "approved", "approved_by": actor,
                                                    "approved_at": now()}
    row = (await session.execute(
        rate.insert().values(activity_type=activity_type, amount_fen=amount_fen, effective_from=effective_from,
                             created_by=actor, **values).returning(*rate.c)
    )).one()
    await _audit(session, actor=actor, action="rate.created", subject=f"rate:{row.id}",
                 activity_type=activity_type, amount_fen=amount_fen, effective_from=effective_from.isoformat(),
                 status=row.status)
    return row


async def approve_rate(session: AsyncSession, *, actor: str, rate_id: int):
    """N-RATE: the second finance user's approval of a rate effective on a past date."""
    row = (await session.execute(select(rate).where(rate.c.id == rate_id).with_for_update())).first()
    if row is None:
        raise NotFound("补助标准", rate_id)
    if row.status != "pending":
        raise Conflict("invalid_transition", "补助标准无需批准", "该补助标准已生效。")
    with refusals("补助标准"):
        rules.ensure_second_user(actor, row.created_by)
    updated = (await session.execute(
        rate.update().where(rate.c.id == rate_id).values(status="approved", approved_by=actor, approved_at=now())
        .returning(*rate.c))).one()
    await _audit(session, actor=actor, action="rate.approved", subject=f"rate:{rate_id}",
                 effective_from=row.effective_from.isoformat(), amount_fen=row.amount_fen)
    return updated


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
    try:
        signed_on = clock.local_date(event.signed_at)
    except (TypeError, ValueError):
        signed_on = None
    signature = rules.check_signature(event.signature_hash, event.signed_at, activity_date=event.activity_date,
                                      signed_on=signed_on, now=clock.now(), skew=SIGNATURE_SKEW)
    if event.content_hash is not None:  # R42.1: the hash must be the one of this signer, form, content and time
        expected = rules.expected_signature_hash(
            form_id=str(event.form_id), supervisor_id=str(event.supervisor_id), content_hash=event.content_hash,
            signed_at=event.signed_at, method=event.method or "", image_sha256=event.image_sha256)
        if expected != signature:
            raise rules.SignatureRefused(f"R42.1: form {event.form_id}: the signature hash does not match the "
                                         "signed form's content, signer and time")
    replayed = await session.scalar(select(func.count()).select_from(feedback_form).where(
        feedback_form.c.signature_hash == signature,
        or_(feedback_form.c.form_id != event.form_id, feedback_form.c.supervisor_id != event.supervisor_id)))
    if replayed:
        raise rules.SignatureRefused(f"R42.1: form {event.form_id}: signature hash already used by another signature")
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
            signature_hash=signature, signed_at=event.signed_at,
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


def _refuse(exc: rules.SelfApproval | rules.InvalidTransition, what: str) -> ProblemError:
    if isinstance(exc, rules.SelfApproval):
        return ProblemError(403, "self_approval", "不得自行审核或批准",
                            f"{what}的批准人不得是审核人、申报人、受领人或第一审批人本人（R42.1/R43.1）。")
    if isinstance(exc, rules.InvalidTransition) and exc.state == rules.PAID and exc.action == "pay":
        return Conflict("already_paid", "已支付", f"{what}已支付，不得重复支付（R42.1）。")
    return Conflict("invalid_transition", "状态不允许此操作",
                    f"{what}当前状态为 {exc.state}，不能执行 {exc.action}；"
                    "流程为 草稿→已审核→已批准→已支付，支付前可驳回。")


def _not_in_issued_table(row, what: str) -> None:
    """R42.1: an item of an issued table stays as issued: correct the table (a new version) first."""
    if row.table_id is not None:
        raise rules.RuleViolation(409, "R42.1", "已列入已签发的发放表",
                                  f"{what}已列入已签发的发放表，不能驳回；请先更正发放表（新版本）将其移出。")


async def _ensure_payable(session: AsyncSession, row, *, what: str, letter_needed: bool) -> None:
    """R42.1: paid only by an issued table, and (subsidy) after the month's covering letter was received."""
    if row.table_id is None:
        raise rules.RuleViolation(409, "R42.1", "尚未列入已签发的发放表",
                                  f"{what}须先列入签发的《威海市人民监督员履职补助发放表》，再按表发放。")
    if not letter_needed:
        return
    day = row.activity_date
    found = await session.scalar(select(func.count()).select_from(covering_letter).where(
        covering_letter.c.year == day.year, covering_letter.c.month == day.month,
        or_(covering_letter.c.district.is_(None), covering_letter.c.district == row.district)))
    if not found:
        raise rules.RuleViolation(409, "R42.1", "缺少履职情况反馈函",
                                  f"依据《威海市人民监督员履职管理实施办法》第四十二条，发放前须核验人民检察院出具的"
                                  f"{day.year}年{day.month}月人民监督员履职情况反馈函；尚未登记。")


def _step_values(row, principal: Principal, action: str, *, claimant_supervisor_id: str, creator: str | None,
                 reference: str | None, reason: str | None, what: str) -> dict:
    """The column updates of one step; raises InvalidTransition / SelfApproval / RuleViolation."""
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
    if action == "pay":
        if not (reference or "").strip():
            raise rules.RuleViolation(422, "R42.1", "缺少银行流水号", "支付须填写银行流水号（付款凭证号）。")
        return {"status": new_state, "paid_by": principal.subject, "paid_at": at, "paid_on": clock.local_date(at),
                "payment_reference": reference.strip()}
    _not_in_issued_table(row, what)
    return {"status": new_state, "rejected_by": principal.subject, "rejected_at": at,
            "reject_reason": rules.require_reason(reason, f"驳回{what}")}


async def transition_line(session: AsyncSession, outbox: Outbox, principal: Principal, line_id: uuid.UUID,
                          action: str, *, settings: FinanceSettings, reference: str | None = None,
                          reason: str | None = None):
    """R42.1: draft → checked → approved → paid (or rejected); no self-approval; budget (R41.1); audit; event."""
    row = await get_line(session, line_id, for_update=True)
    with refusals("补助明细"):
        values = _step_values(row, principal, action, claimant_supervisor_id=str(row.supervisor_id), creator=None,
                              reference=reference, reason=reason, what="补助明细")
        if action == "approve":
            remaining = await _check_budget(session, settings, approver=principal.subject,
                                            year=row.activity_date.year, district=row.district,
                                            amount_fen=row.amount_fen, excess_approved_by=row.excess_approved_by)
        if action == "pay":
            await _ensure_payable(session, row, what="补助明细", letter_needed=True)
    updated = (await session.execute(
        subsidy_line.update().where(subsidy_line.c.id == line_id).values(**values).returning(*subsidy_line.c)
    )).one()
    details = {"from_state": row.status, "to_state": updated.status, "amount_fen": row.amount_fen}
    if action == "approve":
        details["budget_remaining_fen"] = remaining
    if action == "pay":
        details["payment_reference"] = updated.payment_reference
    await _audit(session, actor=principal.subject, action=f"subsidy_line.{action}", subject=f"line:{line_id}",
                 **details)
    if action == "approve":
        await outbox.add(session, SubsidyApproved(
            line_id=row.id, supervisor_id=row.supervisor_id, activity_id=row.activity_id,
            amount_fen=row.amount_fen, approved_by=principal.subject, approved_at=updated.approved_at,
        ))
    if action == "pay":  # the supervisor is told (notify)
        await outbox.add(session, SubsidyPaid(
            line_id=row.id, supervisor_id=row.supervisor_id, activity_id=row.activity_id,
            amount_fen=row.amount_fen, paid_on=updated.paid_on, paid_at=updated.paid_at,
        ))
    return updated


async def approve_excess(session: AsyncSession, principal: Principal, item_id: uuid.UUID, *, reason: str | None,
                         claim: bool = False):
    """R41.1: a second finance user approves that this checked line (or claim) may go over the budget."""
    model, what = (travel_claim, "差旅费报销单") if claim else (subsidy_line, "补助明细")
    row = await (get_claim_row(session, item_id, for_update=True) if claim
                 else get_line(session, item_id, for_update=True))
    with refusals(what):
        if row.status != rules.CHECKED:
            raise rules.InvalidTransition(row.status, "approve_excess")
        rules.ensure_not_claimant(principal.supervisor_id, str(row.supervisor_id))
        text = rules.require_reason(reason, "批准超出预算")
    updated = (await session.execute(
        model.update().where(model.c.id == item_id)
        .values(excess_approved_by=principal.subject, excess_approved_at=now(), excess_reason=text)
        .returning(*model.c))).one()
    kind = "travel_claim" if claim else "subsidy_line"
    await _audit(session, actor=principal.subject, action=f"{kind}.approve_excess",
                 subject=f"{'claim' if claim else 'line'}:{item_id}", reason=text)
    return updated


async def _check_budget(session: AsyncSession, settings: FinanceSettings, *, approver: str, year: int,
                        district: str | None, amount_fen: int, excess_approved_by: str | None) -> int:
    """R41.1: the year's budget of the district's plans less what is approved; refused when exceeded."""
    await _lock(session, f"finance.budget:{year}:{district}")
    plans = await get_plans(session, year, district=district, by_district=True)
    budget_fen = sum((await _estimate(session, settings, year, plans)).values())
    spent = sum((await monthly_spend(session, year=year, district=district)).values())
    return rules.check_budget(budget_fen=budget_fen, spent_fen=spent, amount_fen=amount_fen, approver=approver,
                              excess_approved_by=excess_approved_by)


# --- R42.1: the procuratorate's covering letter (履职情况反馈函) -----------------------------------


async def record_covering_letter(session: AsyncSession, *, actor: str, year: int, month: int, district: str | None,
                                 reference: str):
    """R42.1: the bureau records the month's covering letter it received (district None: the whole city)."""
    row = (await session.execute(covering_letter.insert().values(
        id=uuid.uuid4(), year=year, month=month, district=district, reference=reference, recorded_by=actor,
        received_at=now()).returning(*covering_letter.c))).one()
    await _audit(session, actor=actor, action="covering_letter.recorded", subject=f"letter:{row.id}",
                 period=f"{year}-{month:02d}", district=district, reference=reference)
    return row


async def list_covering_letters(session: AsyncSession, *, year: int, month: int) -> Sequence:
    return (await session.execute(select(covering_letter).where(
        covering_letter.c.year == year, covering_letter.c.month == month).order_by(covering_letter.c.received_at)
    )).all()


# --- R43.1: travel claims ------------------------------------------------------------------------


async def create_claim(session: AsyncSession, settings: FinanceSettings, *, actor: str, supervisor_id: uuid.UUID,
                       purpose_kind: str, purpose_ref: str, travel_date: date, items: list[dict]) -> uuid.UUID:
    """R43.1: a claim within the claim period; an activity claim names an activity the supervisor attended."""
    with refusals("差旅费报销单"):
        rules.check_claim_window(travel_date, today=clock.today(), deadline_days=settings.travel_claim_deadline_days)
        activity_id, district = None, None
        if purpose_kind == "activity":
            try:
                activity_id = uuid.UUID(purpose_ref)
            except ValueError as exc:
                raise rules.RuleViolation(422, "R43.1", "未指明所参加的活动",
                                          "活动差旅费的 purpose_ref 须为所参加活动的编号（activity_id）。") from exc
            form = (await session.execute(select(feedback_form.c.activity_date, feedback_form.c.district).where(
                feedback_form.c.supervisor_id == supervisor_id, feedback_form.c.activity_id == activity_id)
                .limit(1))).first()
            if form is None:
                raise rules.RuleViolation(422, "R43.1", "未参加该活动",
                                          "未收到该人民监督员参加此次活动的签字反馈表，不能报销活动差旅费。")
            rules.check_claim_activity(travel_date, form.activity_date,
                                       window_days=settings.travel_activity_window_days)
            district = form.district
    if district is None:
        district = await session.scalar(select(supervisor.c.district).where(supervisor.c.id == supervisor_id))
    claim_id = uuid.uuid4()
    total = sum(item["amount_fen"] for item in items)
    await project_supervisor(session, supervisor_id)
    await session.execute(travel_claim.insert().values(
        id=claim_id, supervisor_id=supervisor_id, purpose_kind=purpose_kind, purpose_ref=purpose_ref,
        travel_date=travel_date, total_fen=total, status=rules.DRAFT, created_by=actor, activity_id=activity_id,
        district=district,
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
    return (await claim_views(session, settings, [row]))[0]


async def claim_views(session: AsyncSession, settings: FinanceSettings, rows: Sequence) -> list[dict]:
    """Claims with their items, receipts and cap warnings (R43.1): the items of all of them in one query."""
    items: dict[uuid.UUID, list] = {row.id: [] for row in rows}
    if items:
        for item in (await session.execute(
            select(travel_item, receipt.c.sha256.label("receipt_sha256"),
                   receipt.c.content_type.label("receipt_content_type"))
            .select_from(travel_item.outerjoin(receipt, receipt.c.item_id == travel_item.c.id))
            .where(travel_item.c.claim_id.in_(list(items))).order_by(travel_item.c.claim_id, travel_item.c.position)
        )).all():
            items[item.claim_id].append(item)
    return [{
        **dict(row._mapping), "total_yuan": rules.yuan(row.total_fen),
        "payable_fen": row.approved_fen if row.approved_fen is not None else row.total_fen,
        "items": [dict(i._mapping) for i in items[row.id]],
        "warnings": rules.travel_warnings(_items(items[row.id]), settings.travel_caps_fen),
    } for row in rows]


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


async def transition_claim(session: AsyncSession, settings: FinanceSettings, principal: Principal,
                           claim_id: uuid.UUID, action: str, *, reference: str | None = None,
                           reason: str | None = None, approved_fen: int | None = None):
    """R43.1: the flow of subsidy lines; checking needs a receipt on every item; approval in part or rejection
    with a reason; paid only by an issued table."""
    row = await get_claim_row(session, claim_id, for_update=True)
    if action == "check" and row.status == rules.DRAFT:
        missing = await session.scalar(
            select(func.count()).select_from(travel_item.outerjoin(receipt, receipt.c.item_id == travel_item.c.id))
            .where(travel_item.c.claim_id == claim_id, receipt.c.id.is_(None))
        )
        if missing:
            raise Unprocessable("R43.1", "缺少票据",
                                f"依据规则 R43.1，差旅费报销须附票据：尚有 {missing} 项未上传票据。")
    with refusals("差旅费报销单"):
        values = _step_values(row, principal, action, claimant_supervisor_id=str(row.supervisor_id),
                              creator=row.created_by, reference=reference, reason=reason, what="差旅费报销单")
        if action == "approve":
            amount, note = rules.approved_amount(row.total_fen, approved_fen, reason)
            values |= {"approved_fen": amount, "approval_note": note}
            await _check_budget(session, settings, approver=principal.subject, year=row.travel_date.year,
                                district=row.district, amount_fen=amount, excess_approved_by=row.excess_approved_by)
        if action == "pay":
            await _ensure_payable(session, row, what="差旅费报销单", letter_needed=False)
    updated = (await session.execute(
        travel_claim.update().where(travel_claim.c.id == claim_id).values(**values).returning(*travel_claim.c)
    )).one()
    await _audit(session, actor=principal.subject, action=f"travel_claim.{action}", subject=f"claim:{claim_id}",
                 from_state=row.status, to_state=updated.status, amount_fen=row.total_fen,
                 approved_fen=updated.approved_fen)
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
    merged: dict[tuple[int, str], list[int]] = {}
    for r in rows:
        # R41.1: two rows of one month and type add up; with different seats they are kept as
        # supervisor-activities (count × seats, seats 1): the budget is the same either way
        key = (r["month"], r["activity_type"])
        if key not in merged:
            merged[key] = [r["count"], r["seats"]]
        elif merged[key][1] == r["seats"]:
            merged[key][0] += r["count"]
        else:
            merged[key] = [merged[key][0] * merged[key][1] + r["count"] * r["seats"], 1]
    if merged:
        await session.execute(plan_row.insert(), [
            {"plan_id": plan_id, "month": m, "activity_type": t, "count": c, "seats": n}
            for (m, t), (c, n) in merged.items()
        ])
    await _audit(session, actor=actor, action="plan.submitted", subject=f"plan:{year}:{office}",
                 rows=len(merged), activities=sum(c for c, _ in merged.values()),
                 supervisor_activities=sum(c * n for c, n in merged.values()))
    return plan_id


async def get_plans(session: AsyncSession, year: int, office: str | None = None, *, district: str | None = None,
                    by_district: bool = False) -> list[dict]:
    """The plans of a year: all, one office's, or (by_district) those of one district (None: the city's)."""
    query = select(plan).where(plan.c.year == year).order_by(plan.c.office)
    if office is not None:
        query = query.where(plan.c.office == office)
    if by_district:
        query = query.where(plan.c.district.is_(None) if district is None else plan.c.district == district)
    plans = (await session.execute(query)).all()
    out = []
    for p in plans:
        rows = (await session.execute(
            select(plan_row.c.month, plan_row.c.activity_type, plan_row.c.count, plan_row.c.seats)
            .where(plan_row.c.plan_id == p.id).order_by(plan_row.c.month, plan_row.c.activity_type)
        )).all()
        out.append({**dict(p._mapping), "rows": [dict(r._mapping) for r in rows]})
    return out


async def _estimate(session: AsyncSession, settings: FinanceSettings, year: int, plans: list[dict]) -> dict[int, int]:
    """R41.1: the budget estimate per month of these plans (rates in force on each month's 1st)."""
    rows = [rules.PlanRow(r["month"], r["activity_type"], r["count"], r["seats"]) for p in plans for r in p["rows"]]
    cache: dict[tuple[str, date], int] = {}
    wanted = {(r.activity_type, date(year, r.month, 1)) for r in rows if r.count}
    for activity_type, day in wanted:
        try:
            cache[(activity_type, day)] = (await rate_on(session, activity_type, day)).amount_fen
        except rules.NoRateError as exc:
            raise Unprocessable("N-RATE", "没有适用的补助标准",
                                f"{label(activity_type)}在 {day.isoformat()} 没有生效的补助标准。") from exc
    return rules.budget_estimate(rows, year, lambda t, d: cache[(t, d)], settings.travel_allowance_per_activity_fen)


async def budget(session: AsyncSession, settings: FinanceSettings, *, year: int, plans: list[dict],
                 district: str | None, spend_scope: bool) -> dict:
    """R41.1: budget per month = plan (supervisor-activities) × rates (+ travel allowance) vs approved spend.

    `spend_scope`: spend of `district` only (a procuratorate, or one office's plan); else citywide.
    """
    estimate = await _estimate(session, settings, year, plans)
    spend = await monthly_spend(session, year=year, district=district, citywide=not spend_scope)
    planned = dict.fromkeys(range(1, 13), 0)
    seats = dict.fromkeys(range(1, 13), 0)
    for p in plans:
        for r in p["rows"]:
            planned[r["month"]] += r["count"]
            seats[r["month"]] += r["count"] * r["seats"]
    months = [{"month": m, "planned_activities": planned[m], "planned_supervisor_activities": seats[m],
               "budget_fen": estimate[m], "spend_fen": spend[m], "remaining_fen": estimate[m] - spend[m]}
              for m in range(1, 13)]
    total_budget, total_spend = sum(estimate.values()), sum(spend.values())
    return {"year": year, "offices": [p["office"] for p in plans],
            "district": district if spend_scope else None,
            "travel_allowance_per_activity_fen": settings.travel_allowance_per_activity_fen,
            "months": months, "total_budget_fen": total_budget, "total_spend_fen": total_spend,
            "total_remaining_fen": total_budget - total_spend}


async def monthly_spend(session: AsyncSession, *, year: int, district: str | None,
                        citywide: bool = False) -> dict[int, int]:
    """Approved + paid subsidy lines (by activity date) and travel claims (approved amount, by travel date)
    per month, of one district (None: lines without a district) or `citywide`."""
    start, end = date(year, 1, 1), date(year + 1, 1, 1)
    spend = dict.fromkeys(range(1, 13), 0)
    month = func.extract("month", subsidy_line.c.activity_date)
    lines = select(month, func.sum(subsidy_line.c.amount_fen)).where(
        subsidy_line.c.status.in_(PAYABLE), subsidy_line.c.activity_date >= start, subsidy_line.c.activity_date < end)
    if not citywide:
        lines = lines.where(subsidy_line.c.district.is_(None) if district is None
                            else subsidy_line.c.district == district)
    for m, total in (await session.execute(lines.group_by(month))).all():
        spend[int(m)] += int(total)
    tmonth = func.extract("month", travel_claim.c.travel_date)
    claim_district = func.coalesce(travel_claim.c.district, supervisor.c.district)
    travel = (select(tmonth, func.sum(func.coalesce(travel_claim.c.approved_fen, travel_claim.c.total_fen)))
              .select_from(travel_claim.outerjoin(supervisor, supervisor.c.id == travel_claim.c.supervisor_id))
              .where(travel_claim.c.status.in_(PAYABLE), travel_claim.c.travel_date >= start,
                     travel_claim.c.travel_date < end))
    if not citywide:
        travel = travel.where(claim_district.is_(None) if district is None else claim_district == district)
    for m, total in (await session.execute(travel.group_by(tmonth))).all():
        spend[int(m)] += int(total)
    return spend


def activity_types() -> list[dict]:
    return [{"code": t, "label": label(t)} for t in ACTIVITY_TYPES]

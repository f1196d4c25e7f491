"""Supervision requests (R10.1, R10.2, R12.1, R13.2; DRAW.md protocol): asking, cancelling, the live state from
selection's events, the receipt check (step 5), recusal. The caller owns the transaction: nothing here commits."""

import logging
import secrets
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.casework import rules
from services.casework.access import (
    NONCE_CONTEXT,
    PHONE_CONTEXT,
    audit_log,
)
from services.casework.models import (
    draw_check,
    recusal,
    roster,
    supervision_request,
)
from shared import clock
from shared.auth import Principal, Role
from shared.calendar import WorkingCalendar
from shared.clock import local_date
from shared.crypto import FieldCipher, mask_phone
from shared.errors import Conflict, NotFound
from shared.events.contracts import (
    DrawNonceRevealed,
    ReceiptMismatchDetected,
    RecusalRequested,
    ShortNotice,
    SupervisionCancelled,
    SupervisionRequested,
)
from shared.events.outbox import Outbox
from shared.lead_time import check_lead_time

log = logging.getLogger(__name__)


# --- supervision requests (R10.1, R10.2, R12.1; DRAW.md protocol steps 1 and 4) -------------------

async def current_request(session: AsyncSession, activity_id: uuid.UUID):
    """The activity's live request (the newest one neither refused nor cancelled), or None."""
    return (await session.execute(
        select(supervision_request).where(supervision_request.c.activity_id == activity_id,
                                          supervision_request.c.status.not_in(rules.CLOSED_STATUSES))
        .order_by(supervision_request.c.requested_at.desc()).limit(1))).first()


async def require_request(session: AsyncSession, request_id: uuid.UUID, *, lock: bool = False):
    stmt = select(supervision_request).where(supervision_request.c.id == request_id)
    row = (await session.execute(stmt.with_for_update() if lock else stmt)).first()
    if row is None:
        raise NotFound("监督申请", request_id)
    return row


async def request_supervision(session: AsyncSession, *, outbox: Outbox, cipher: FieldCipher,
                              calendar: WorkingCalendar, act, data: dict[str, Any],
                              principal: Principal) -> dict[str, Any]:
    """R10.1/R10.2: lead time judged at once on the server's clock; sent with sha256(n_P) only (DRAW.md step 1)."""
    rules.check_activity_open(act.status)
    if await current_request(session, act.id) is not None:
        raise Conflict("request_exists", "该活动已有进行中的申请",
                       "同一活动只能有一个进行中的监督申请；原申请被拒绝或撤回后方可重新申请。")
    return await new_request(session, outbox=outbox, cipher=cipher, calendar=calendar, act=act, data=data,
                              principal=principal)


async def new_request(session: AsyncSession, *, outbox: Outbox, cipher: FieldCipher, calendar: WorkingCalendar,
                       act, data: dict[str, Any], principal: Principal, request_id: uuid.UUID | None = None,
                       rescheduled_from: uuid.UUID | None = None) -> dict[str, Any]:
    """Store and send one request (`rescheduled_from`: the request a reschedule cancelled for it)."""
    requested_at = clock.now()
    short_notice = data.get("short_notice")
    decision = check_lead_time(calendar, notified_on=local_date(requested_at),
                               activity_on=local_date(act.starts_at), short_notice=short_notice is not None)
    status = rules.check_lead_time_answer(decision)
    request_id, nonce = request_id or uuid.uuid4(), secrets.token_hex(32)
    commitment = rules.commitment(nonce)
    conflict_parties = list(data.get("conflict_parties") or [])
    await session.execute(insert(supervision_request).values(
        id=request_id, activity_id=act.id, seats=data["seats"], specialty=data.get("specialty"),
        conflict_parties=conflict_parties, short_notice=short_notice, calendar_provisional=decision.provisional,
        procuratorate_nonce_encrypted=cipher.encrypt(nonce, context=NONCE_CONTEXT),
        procuratorate_commitment=commitment, requested_at=requested_at, requested_by=principal.subject,
        status=status, rescheduled_from=rescheduled_from))
    await outbox.add(session, SupervisionRequested(
        request_id=request_id, activity_id=act.id, case_ref=act.case_ref, activity_type=act.activity_type,
        office=act.office, district=act.district, starts_at=act.starts_at, ends_at=act.ends_at, place=act.place,
        seats=data["seats"], specialty=data.get("specialty"), conflict_parties=conflict_parties,
        requested_at=requested_at, short_notice=ShortNotice(**short_notice) if short_notice else None,
        procuratorate_commitment=commitment, rescheduled_from=rescheduled_from))
    await audit_log(session, actor=principal.subject, action="supervision_request.created",
                 subject=f"request:{request_id}", activity_id=str(act.id), seats=data["seats"], status=status,
                 working_days=decision.working_days, short_notice=short_notice is not None,
                 rescheduled_from=str(rescheduled_from) if rescheduled_from else None)
    return await request_view(session, await require_request(session, request_id), act=act, principal=principal,
                              cipher=None)


async def cancel_request(session: AsyncSession, *, outbox: Outbox, req, act, reason: str,
                         principal: Principal) -> dict[str, Any]:
    """Withdraw a request before the activity begins: selection frees its bookings; the roster stays listed."""
    req = await require_request(session, req.id, lock=True)
    at = clock.now()
    rules.check_cancellable(req.status, activity_status=act.status, starts_at=act.starts_at, at=at)
    await cancel_request_row(session, outbox=outbox, req=req, act=act, reason=reason, principal=principal, at=at)
    return await request_view(session, await require_request(session, req.id), act=act, principal=principal,
                              cipher=None)


async def cancel_request_row(session: AsyncSession, *, outbox: Outbox, req, act, reason: str,
                              principal: Principal, at: datetime, activity_cancelled: bool = False,
                              superseded_by: uuid.UUID | None = None) -> None:
    """The request is `cancelled` and SupervisionCancelled goes out (selection frees its bookings)."""
    await session.execute(update(supervision_request).where(supervision_request.c.id == req.id).values(
        status="cancelled", cancel_reason=reason, cancelled_by=principal.subject, cancelled_at=at, updated_at=at))
    await outbox.add(session, SupervisionCancelled(request_id=req.id, activity_id=act.id, reason=reason,
                                                   cancelled_by=principal.subject, cancelled_at=at,
                                                   activity_cancelled=activity_cancelled,
                                                   superseded_by=superseded_by))
    await audit_log(session, actor=principal.subject, action="supervision_request.cancelled",
                 subject=f"request:{req.id}", activity_id=str(act.id), previous_status=req.status,
                 activity_cancelled=activity_cancelled, superseded_by=str(superseded_by) if superseded_by else None)


def acceptance_dict(req) -> dict[str, Any] | None:
    """DRAW.md protocol step 2 as casework received it (None before the bureau accepted)."""
    if req.accepted_at is None:
        return None
    return {"accepted_at": req.accepted_at, "bureau_commitment": req.bureau_commitment,
            "snapshot_hash": req.snapshot_hash, "params_hash": req.params_hash, "beacon": req.beacon,
            "short_notice_consent": req.short_notice_consent}


def draw_check_dict(c) -> dict[str, Any]:
    return {"draw_id": c.draw_id, "round": c.round, "status": c.status, "failed_checks": list(c.failed_checks),
            "checked_at": c.checked_at}


async def request_view(session: AsyncSession, req, *, act, principal: Principal,
                       cipher: FieldCipher | None) -> dict[str, Any]:
    """The request's live state; phones in clear only for the activity's procuratorate (R15.1), audited."""
    rows = (await session.execute(select(roster).where(roster.c.request_id == req.id)
                                  .order_by(roster.c.group, roster.c.draw_order))).all()
    # a refused or withdrawn request needs nobody's phone any more (R3.1): its roster stays listed, masked
    show_phone = (cipher is not None and principal.has(Role.PROCURATORATE)
                  and req.status not in rules.CLOSED_STATUSES)
    members = []
    for r in rows:
        phone = r.phone_masked
        if show_phone and r.status == "confirmed":
            phone = cipher.decrypt(r.phone_encrypted, context=PHONE_CONTEXT)
        members.append({"supervisor_id": r.supervisor_id, "name": r.name, "phone": phone, "district": r.district,
                        "group": r.group, "draw_order": r.draw_order, "status": r.status,
                        "confirmed_at": r.confirmed_at, "released_at": r.released_at,
                        "release_reason": r.release_reason, "replaced_by": r.replaced_by,
                        "absent_at": r.absent_at, "absence_reason": r.absence_reason})
    recusals = (await session.execute(select(recusal).where(recusal.c.request_id == req.id)
                                      .order_by(recusal.c.requested_at))).all()
    checks = [draw_check_dict(c) for c in (await session.execute(
        select(draw_check).where(draw_check.c.request_id == req.id)
        .order_by(draw_check.c.round, draw_check.c.created_at))).all()]
    confirmed = [m for m in members if m["status"] == "confirmed"]
    if show_phone and confirmed:  # last: the audit lock is held until commit
        await audit_log(session, actor=principal.subject, action="roster.contacts_read", subject=f"request:{req.id}",
                     count=len(confirmed))
    return {
        "request_id": req.id, "activity_id": req.activity_id, "status": req.status, "seats": req.seats,
        "specialty": req.specialty, "requested_at": req.requested_at, "short_notice": req.short_notice,
        "calendar_provisional": req.calendar_provisional, "procuratorate_commitment": req.procuratorate_commitment,
        "acceptance": acceptance_dict(req),
        "staffing": {"confirmed": len(confirmed), "seats": req.seats},
        "shortfall": dict(req.shortfall or {}),
        "refusal": ({"code": req.refusal_code, "detail": req.refusal_detail,
                     "earliest_allowed_date": req.earliest_allowed_date} if req.status == "refused" else None),
        "cancellation": ({"reason": req.cancel_reason, "by": req.cancelled_by, "at": req.cancelled_at}
                         if req.cancelled_at is not None else None),
        "rescheduled_from": req.rescheduled_from,
        "superseded_by": await session.scalar(select(supervision_request.c.id).where(
            supervision_request.c.rescheduled_from == req.id).limit(1)) if req.cancelled_at is not None else None,
        "receipt_hash": req.receipt_hash, "contact_log_head": req.contact_log_head,
        "receipt_checks": checks, "receipt_mismatch": any(c["status"] == "mismatch" for c in checks),
        "roster": confirmed,
        "released": [m for m in members if m["status"] == "released"],
        "absent": [m for m in members if m["status"] == "absent"],
        "recusals": [recusal_dict(r) for r in recusals],
    }


def recusal_dict(r) -> dict[str, Any]:
    return {"recusal_id": r.id, "request_id": r.request_id, "supervisor_id": r.supervisor_id, "source": r.source,
            "ground": r.ground, "requested_at": r.requested_at, "status": r.status, "decided_by": r.decided_by,
            "decision_reason": r.decision_reason, "decided_at": r.decided_at}


async def list_requests(session: AsyncSession, activity_id: uuid.UUID) -> list:
    return (await session.execute(select(supervision_request).where(supervision_request.c.activity_id == activity_id)
                                  .order_by(supervision_request.c.requested_at))).all()


# --- projection of selection's events -------------------------------------------------------------

async def known_request(session: AsyncSession, request_id: uuid.UUID):
    return (await session.execute(select(supervision_request).where(supervision_request.c.id == request_id)
                                  .with_for_update())).first()


async def _set_request(session: AsyncSession, req, *, status: str, contact_log_head: str | None = None,
                       **values: Any) -> None:
    """Move a request to `status` (and keep the newest contact-log head seen)."""
    if contact_log_head is not None:
        values["contact_log_head"] = contact_log_head
    if status == req.status and not values:
        return
    await session.execute(update(supervision_request).where(supervision_request.c.id == req.id)
                          .values(status=status, updated_at=clock.now(), **values))


async def on_accepted(session: AsyncSession, *, outbox: Outbox, cipher: FieldCipher, request_id: uuid.UUID,
                      accepted_at: datetime, bureau_commitment: str, snapshot_hash: str, params_hash: str,
                      beacon: dict[str, Any] | None, short_notice_consent: dict[str, Any] | None) -> bool:
    """DRAW.md steps 2-3: store the bureau's acceptance once, then reveal n_P (never for a closed request)."""
    req = await known_request(session, request_id)
    if req is None:
        return False
    received = {"accepted_at": accepted_at, "bureau_commitment": bureau_commitment, "snapshot_hash": snapshot_hash,
                "params_hash": params_hash, "beacon": beacon, "short_notice_consent": short_notice_consent}
    if req.accepted_at is not None:
        stored = acceptance_dict(req) or {}
        differs = sorted(k for k, v in received.items() if stored.get(k) != v)
        if differs:  # one acceptance per request: a second one would let the bureau re-roll
            log.error("second SupervisionAccepted for request %s ignored; it differs in %s", request_id,
                      ", ".join(differs))
            await audit_log(session, actor="selection", action="supervision_request.second_acceptance_ignored",
                         subject=f"request:{request_id}", differs=differs)
        return True
    if req.status not in ("requested", "awaiting_consent") or req.procuratorate_nonce_encrypted is None:
        log.warning("SupervisionAccepted for request %s in status %s recorded; nonce not revealed", request_id,
                    req.status)
        await _set_request(session, req, status=req.status, **received)
        await audit_log(session, actor="selection", action="supervision_request.accepted",
                     subject=f"request:{request_id}", revealed=False, status=req.status)
        return True
    nonce = cipher.decrypt(req.procuratorate_nonce_encrypted, context=NONCE_CONTEXT)
    await _set_request(session, req, status="accepted", revealed_at=clock.now(), **received)
    await outbox.add(session, DrawNonceRevealed(request_id=request_id, procuratorate_nonce=nonce))
    await audit_log(session, actor="selection", action="supervision_request.accepted", subject=f"request:{request_id}",
                 revealed=True, bureau_commitment=bureau_commitment)
    return True


async def on_draw_completed(session: AsyncSession, *, request_id: uuid.UUID, draw_id: uuid.UUID, round_no: int,
                            receipt_hash: str, shortfall: dict[str, int]) -> bool:
    """DRAW.md step 4: a round was drawn; its receipt is queued for the check of step 5 (R14.1 shortfall shown)."""
    req = await known_request(session, request_id)
    if req is None:
        return False
    await session.execute(insert(draw_check).values(draw_id=draw_id, request_id=request_id, round=round_no,
                                                    receipt_hash=receipt_hash).on_conflict_do_nothing())
    await _set_request(session, req, status=rules.status_after_draw_completed(req.status, shortfall),
                       shortfall=dict(shortfall))
    return True


async def on_drawn(session: AsyncSession, *, cipher: FieldCipher, request_id: uuid.UUID, supervisor_id: uuid.UUID,
                   name: str, phone: str, district: str, group: str, draw_order: int, confirmed_at: datetime,
                   contact_log_head: str | None = None) -> bool:
    """R12.1: a confirmed supervisor with name and phone (encrypted at rest, masked copy for lists)."""
    req = await known_request(session, request_id)
    if req is None:
        return False
    values = dict(name=name, phone_encrypted=cipher.encrypt(phone, context=PHONE_CONTEXT),
                  phone_masked=mask_phone(phone), district=district, group=group, draw_order=draw_order,
                  status="confirmed", confirmed_at=confirmed_at, released_at=None, release_reason=None,
                  replaced_by=None)
    await session.execute(insert(roster).values(request_id=request_id, supervisor_id=supervisor_id,
                                                activity_id=req.activity_id, **values)
                          .on_conflict_do_update(index_elements=[roster.c.request_id, roster.c.supervisor_id],
                                                 set_=values))
    await _set_request(session, req, status=rules.status_after_drawn(req.status), contact_log_head=contact_log_head)
    return True


async def on_released(session: AsyncSession, *, request_id: uuid.UUID, supervisor_id: uuid.UUID, reason: str,
                      replaced_by: uuid.UUID | None, contact_log_head: str | None = None) -> bool:
    """R14.2: a confirmed supervisor left (declined, recused, withdrawn)."""
    req = await known_request(session, request_id)
    if req is None:
        return False
    await session.execute(update(roster).where(roster.c.request_id == request_id,
                                               roster.c.supervisor_id == supervisor_id)
                          .values(status="released", released_at=clock.now(), release_reason=reason,
                                  replaced_by=replaced_by))
    await _set_request(session, req, status=rules.status_after_released(req.status),
                       contact_log_head=contact_log_head)
    return True


async def on_staffed(session: AsyncSession, *, request_id: uuid.UUID, receipt_hash: str,
                     contact_log_head: str | None = None) -> bool:
    """R12.1: every seat is confirmed."""
    req = await known_request(session, request_id)
    if req is None:
        return False
    await _set_request(session, req, status=rules.status_after_staffed(req.status), receipt_hash=receipt_hash,
                       contact_log_head=contact_log_head)
    return True


async def on_refused(session: AsyncSession, *, request_id: uuid.UUID, code: str, earliest: date | None,
                     detail: str) -> bool:
    """R10.1/R10.2: the bureau refused the request; the earliest allowed date is shown on it."""
    req = await known_request(session, request_id)
    if req is None:
        return False
    status = rules.status_after_refused(req.status)
    if status == "refused":
        await _set_request(session, req, status=status, refusal_code=code, refusal_detail=detail,
                           earliest_allowed_date=earliest)
    return True


async def on_recusal_decided(session: AsyncSession, *, request_id: uuid.UUID, supervisor_id: uuid.UUID,
                             granted: bool, decided_by: str, reason: str) -> bool:
    """R13.2: the bureau's decision on a recusal comes back."""
    result = await session.execute(update(recusal).where(
        recusal.c.request_id == request_id, recusal.c.supervisor_id == supervisor_id, recusal.c.status == "pending",
    ).values(status="granted" if granted else "rejected", decided_by=decided_by, decision_reason=reason,
             decided_at=clock.now()))
    return bool(result.rowcount)


# --- receipt check (DRAW.md protocol step 5, R11.1) -------------------------------------------------

async def claim_due_draw_checks(session: AsyncSession, *, limit: int, lease_seconds: float) -> list:
    """Claim pending checks that are due (SKIP LOCKED: replicas never take the same); leased, attempts + 1."""
    due = (select(draw_check.c.draw_id)
           .where(draw_check.c.status == "pending", draw_check.c.next_attempt_at <= func.now())
           .order_by(draw_check.c.next_attempt_at).limit(limit).with_for_update(skip_locked=True))
    return list((await session.execute(
        update(draw_check).where(draw_check.c.draw_id.in_(due))
        .values(attempts=draw_check.c.attempts + 1,
                next_attempt_at=func.now() + timedelta(seconds=lease_seconds))
        .returning(draw_check.c.draw_id, draw_check.c.request_id, draw_check.c.attempts))).all())


async def retry_draw_check_later(session: AsyncSession, *, draw_id: uuid.UUID, attempts: int, error: str) -> None:
    """The receipt could not be had (selection down, slow, not found): try again later, never a mismatch."""
    await session.execute(update(draw_check).where(draw_check.c.draw_id == draw_id,
                                                   draw_check.c.status == "pending")
                          .values(next_attempt_at=func.now() + timedelta(seconds=rules.receipt_retry_seconds(attempts)),
                                  last_error=error[:500]))


async def check_draw_receipt(session: AsyncSession, *, outbox: Outbox, cipher: FieldCipher, draw_id: uuid.UUID,
                             receipt: Any, verify) -> list[str] | None:
    """DRAW.md step 5: check a fetched receipt against what casework stored; a mismatch is raised loudly.

    Returns the failed checks ([] = ok), or None when the check was no longer pending.
    """
    check = (await session.execute(select(draw_check).where(draw_check.c.draw_id == draw_id)
                                   .with_for_update())).first()
    if check is None or check.status != "pending":
        return None
    req = await require_request(session, check.request_id)
    nonce = None
    if req.revealed_at is not None and req.procuratorate_nonce_encrypted is not None:
        nonce = cipher.decrypt(req.procuratorate_nonce_encrypted, context=NONCE_CONTEXT)
    expected = rules.ExpectedReceipt(
        request_id=str(req.id), round=check.round, receipt_hash=check.receipt_hash,
        bureau_commitment=req.bureau_commitment, procuratorate_commitment=req.procuratorate_commitment,
        procuratorate_nonce=nonce, snapshot_hash=req.snapshot_hash, params_hash=req.params_hash, beacon=req.beacon)
    failed = rules.check_receipt(receipt, expected=expected, verify=verify)
    at = clock.now()
    await session.execute(update(draw_check).where(draw_check.c.draw_id == draw_id).values(
        status="mismatch" if failed else "ok", failed_checks=failed, checked_at=at, last_error=None))
    if failed:
        log.error("draw receipt mismatch: request %s draw %s failed %s", req.id, draw_id, ", ".join(failed))
        await outbox.add(session, ReceiptMismatchDetected(request_id=req.id, draw_id=draw_id, failed_checks=failed,
                                                          detected_at=at))
    await audit_log(session, actor="casework", action="draw.receipt_mismatch" if failed else "draw.receipt_checked",
                 subject=f"request:{req.id}", draw_id=str(draw_id), round=check.round, failed_checks=failed)
    return failed


# --- recusal (R13.2) --------------------------------------------------------------------------------

async def request_recusal(session: AsyncSession, *, outbox: Outbox, req, supervisor_id: uuid.UUID, source: str,
                          ground: str, principal: Principal) -> dict[str, Any]:
    """R13.2: a ground the procuratorate found, or a party's application, for a drawn supervisor."""
    on_roster = await session.scalar(select(exists().where(
        roster.c.request_id == req.id, roster.c.supervisor_id == supervisor_id, roster.c.status == "confirmed")))
    if not on_roster:
        raise Conflict("R13.2", "该人民监督员不在确认名单中", "只能对已确认参加本活动的人民监督员提出回避。")
    pending = await session.scalar(select(exists().where(
        recusal.c.request_id == req.id, recusal.c.supervisor_id == supervisor_id, recusal.c.status == "pending")))
    if pending:
        raise Conflict("R13.2", "已有待决定的回避申请", "同一人民监督员已有待市司法局决定的回避申请。")
    recusal_id, at = uuid.uuid4(), clock.now()
    row = (await session.execute(insert(recusal).values(
        id=recusal_id, request_id=req.id, supervisor_id=supervisor_id, source=source, ground=ground,
        requested_by=principal.subject, requested_at=at).returning(*recusal.c))).one()
    await outbox.add(session, RecusalRequested(request_id=req.id, supervisor_id=supervisor_id, source=source,
                                               ground=ground, requested_at=at))
    await audit_log(session, actor=principal.subject, action="recusal.requested", subject=f"request:{req.id}",
                 recusal_id=str(recusal_id), source=source)
    return recusal_dict(row)

"""Use cases of the casework service. The caller owns the transaction: nothing here commits."""

import hashlib
import logging
import secrets
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, select, true, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.casework import rules
from services.casework.models import (
    activity,
    adoption,
    draw_check,
    feedback_form,
    material,
    observer,
    opinion,
    participation_report,
    platform,
    recusal,
    roster,
    signature,
    supervision_request,
    transmittal,
)
from shared import activity_types, audit
from shared.auth import Principal, Role, ensure_district, forbidden
from shared.calendar import WorkingCalendar
from shared.clock import local_date
from shared.crypto import FieldCipher, mask_phone
from shared.errors import Conflict, NotFound, ProblemError, Unprocessable
from shared.events.contracts import (
    DrawNonceRevealed,
    FeedbackSigned,
    OpinionAdoptionNotified,
    ReceiptMismatchDetected,
    RecusalRequested,
    ShortNotice,
    SupervisionCancelled,
    SupervisionRequested,
)
from shared.events.outbox import Outbox
from shared.lead_time import check_lead_time

log = logging.getLogger(__name__)
PHONE_CONTEXT = "casework.roster.phone"
NONCE_CONTEXT = "casework.request.procuratorate_nonce"  # DRAW.md step 1: n_P at rest
STAFF_ROLES = (Role.PROCURATORATE, Role.BUREAU_ADMIN, Role.DISTRICT_BUREAU, Role.AUDITOR)


def now() -> datetime:
    return datetime.now(UTC)


async def _audit(session: AsyncSession, *, actor: str, action: str, subject: object, **details) -> None:
    await audit.append(session, platform.audit, actor=actor, action=action, subject=str(subject), details=details)


# --- access ---------------------------------------------------------------------------------------

def ensure_office(principal: Principal, act) -> None:
    """R2.1: a procuratorate acts within its district, and within its office when the token names one."""
    ensure_district(principal, act.district)
    if principal.has(Role.PROCURATORATE) and principal.office and principal.office != act.office:
        raise ProblemError(403, "R2.1", "超出本院范围", f"该活动属于{act.office}，您所在单位为{principal.office}。")


def ensure_procuratorate(principal: Principal, act) -> None:
    """Only the procuratorate of the activity's office changes it."""
    if not principal.has(Role.PROCURATORATE):
        raise forbidden("此操作仅限承办检察院。")
    ensure_office(principal, act)


def live_roster():
    """Roster rows of a request neither refused nor cancelled: a withdrawn request's supervisors take no part."""
    return exists().where(supervision_request.c.id == roster.c.request_id,
                          supervision_request.c.status.not_in(rules.CLOSED_STATUSES))


async def is_participant(session: AsyncSession, activity_id: uuid.UUID, supervisor_id: object) -> bool:
    """True if the supervisor is confirmed (not released) on the activity's live roster."""
    try:
        sid = uuid.UUID(str(supervisor_id))
    except ValueError:
        return False
    return bool(await session.scalar(select(exists().where(
        roster.c.activity_id == activity_id, roster.c.supervisor_id == sid, roster.c.status == "confirmed",
        live_roster()))))


async def ensure_reader(session: AsyncSession, principal: Principal, act) -> None:
    """Staff of the activity's district, or a supervisor confirmed on it."""
    if principal.has(*STAFF_ROLES):
        ensure_office(principal, act)
        return
    if principal.has(Role.SUPERVISOR) and await is_participant(session, act.id, principal.supervisor_id):
        return
    raise forbidden("仅承办检察院、司法行政机关或参加该活动的人民监督员可以查看。")


# --- activities (N-ACT, N-MUST) -------------------------------------------------------------------

async def require_activity(session: AsyncSession, activity_id: uuid.UUID, *, lock: bool = False):
    stmt = select(activity).where(activity.c.id == activity_id)
    row = (await session.execute(stmt.with_for_update() if lock else stmt)).first()
    if row is None:
        raise NotFound("办案活动", activity_id)
    return row


def activity_dict(act) -> dict[str, Any]:
    return {
        "id": act.id, "case_ref": act.case_ref, "activity_type": act.activity_type,
        "activity_type_label": activity_types.label(act.activity_type), "other_description": act.other_description,
        "mandatory_invitation": act.mandatory_invitation, "office": act.office, "district": act.district,
        "starts_at": act.starts_at, "ends_at": act.ends_at, "place": act.place, "summary": act.summary,
        "status": act.status, "created_by": act.created_by, "created_at": act.created_at, "held_at": act.held_at,
    }


async def create_activity(session: AsyncSession, *, data: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """N-ACT: a case activity of the caller's office."""
    rules.check_activity_type(data["activity_type"], data.get("other_description"))
    if data["ends_at"] <= data["starts_at"]:
        raise Unprocessable("invalid_window", "活动时间无效", "结束时间须晚于开始时间。")
    if not principal.has(Role.PROCURATORATE):
        raise forbidden("此操作仅限检察院。")
    ensure_district(principal, data["district"])
    office = data.get("office") or principal.office
    if not office:
        raise Unprocessable("office_required", "请填写承办检察院", "令牌未载明单位时须填写 office。")
    if principal.office and office != principal.office:
        raise ProblemError(403, "R2.1", "超出本院范围", "只能为本院登记办案活动。")
    activity_id = uuid.uuid4()
    row = (await session.execute(insert(activity).values(
        id=activity_id, case_ref=data["case_ref"], activity_type=data["activity_type"],
        other_description=data.get("other_description"), mandatory_invitation=data["mandatory_invitation"],
        office=office, district=data["district"], starts_at=data["starts_at"], ends_at=data["ends_at"],
        place=data["place"], summary=data.get("summary") or "", created_by=principal.subject,
    ).returning(*activity.c))).one()
    return activity_dict(row)


async def form_of(session: AsyncSession, activity_id: uuid.UUID, *, lock: bool = False):
    stmt = select(feedback_form).where(feedback_form.c.activity_id == activity_id)
    return (await session.execute(stmt.with_for_update() if lock else stmt)).first()


async def update_summary(session: AsyncSession, *, act, summary: str) -> dict[str, Any]:
    """R17.1: the summary is part of the form; frozen after the first signature."""
    rules.check_not_frozen(await form_of(session, act.id) is not None)
    row = (await session.execute(update(activity).where(activity.c.id == act.id).values(summary=summary)
                                 .returning(*activity.c))).one()
    return activity_dict(row)


async def hold(session: AsyncSession, *, act, principal: Principal) -> dict[str, Any]:
    """N-MUST: mark the activity held (closed); a mandatory one needs a confirmed supervisor."""
    confirmed = await session.scalar(select(func.count()).select_from(roster).where(
        roster.c.activity_id == act.id, roster.c.status == "confirmed", live_roster()))
    rules.check_can_close(act.mandatory_invitation, confirmed or 0)
    if act.status == "held":
        return activity_dict(act)
    row = (await session.execute(update(activity).where(activity.c.id == act.id).values(
        status="held", held_at=now(), held_by=principal.subject).returning(*activity.c))).one()
    await _audit(session, actor=principal.subject, action="activity.held", subject=f"activity:{act.id}",
                 confirmed=confirmed)
    return activity_dict(row)


async def list_activities(session: AsyncSession, *, principal: Principal, limit: int, offset: int,
                          district: str | None) -> tuple[list[dict[str, Any]], int]:
    cond = []
    if not principal.is_citywide:
        cond.append(activity.c.district == principal.district)
        if principal.has(Role.PROCURATORATE) and principal.office:
            cond.append(activity.c.office == principal.office)
    if district:
        cond.append(activity.c.district == district)
    where = and_(true(), *cond)
    total = await session.scalar(select(func.count()).select_from(activity).where(where))
    rows = (await session.execute(select(activity).where(where).order_by(activity.c.starts_at.desc(), activity.c.id)
                                  .limit(limit).offset(offset))).all()
    return [activity_dict(r) for r in rows], total or 0


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
    if act.status != "open":
        raise Conflict("activity_held", "活动已办结", "已办结的活动不能再申请人民监督员。")
    if await current_request(session, act.id) is not None:
        raise Conflict("request_exists", "该活动已有进行中的申请",
                       "同一活动只能有一个进行中的监督申请；原申请被拒绝或撤回后方可重新申请。")
    requested_at = now()
    short_notice = data.get("short_notice")
    decision = check_lead_time(calendar, notified_on=local_date(requested_at),
                               activity_on=local_date(act.starts_at), short_notice=short_notice is not None)
    status = rules.check_lead_time_answer(decision)
    request_id, nonce = uuid.uuid4(), secrets.token_hex(32)
    commitment = rules.commitment(nonce)
    conflict_parties = list(data.get("conflict_parties") or [])
    await session.execute(insert(supervision_request).values(
        id=request_id, activity_id=act.id, seats=data["seats"], specialty=data.get("specialty"),
        conflict_parties=conflict_parties, short_notice=short_notice, calendar_provisional=decision.provisional,
        procuratorate_nonce_encrypted=cipher.encrypt(nonce, context=NONCE_CONTEXT),
        procuratorate_commitment=commitment, requested_at=requested_at, requested_by=principal.subject,
        status=status))
    await outbox.add(session, SupervisionRequested(
        request_id=request_id, activity_id=act.id, case_ref=act.case_ref, activity_type=act.activity_type,
        office=act.office, district=act.district, starts_at=act.starts_at, ends_at=act.ends_at, place=act.place,
        seats=data["seats"], specialty=data.get("specialty"), conflict_parties=conflict_parties,
        requested_at=requested_at, short_notice=ShortNotice(**short_notice) if short_notice else None,
        procuratorate_commitment=commitment))
    await _audit(session, actor=principal.subject, action="supervision_request.created",
                 subject=f"request:{request_id}", activity_id=str(act.id), seats=data["seats"], status=status,
                 working_days=decision.working_days, short_notice=short_notice is not None)
    return await request_view(session, await require_request(session, request_id), act=act, principal=principal,
                              cipher=None)


async def cancel_request(session: AsyncSession, *, outbox: Outbox, req, act, reason: str,
                         principal: Principal) -> dict[str, Any]:
    """Withdraw a request before the activity begins: selection frees its bookings; the roster stays listed."""
    req = await require_request(session, req.id, lock=True)
    at = now()
    rules.check_cancellable(req.status, activity_status=act.status, starts_at=act.starts_at, at=at)
    await session.execute(update(supervision_request).where(supervision_request.c.id == req.id).values(
        status="cancelled", cancel_reason=reason, cancelled_by=principal.subject, cancelled_at=at, updated_at=at))
    await outbox.add(session, SupervisionCancelled(request_id=req.id, activity_id=act.id, reason=reason,
                                                   cancelled_by=principal.subject, cancelled_at=at))
    await _audit(session, actor=principal.subject, action="supervision_request.cancelled",
                 subject=f"request:{req.id}", activity_id=str(act.id), previous_status=req.status)
    return await request_view(session, await require_request(session, req.id), act=act, principal=principal,
                              cipher=None)


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
        await _audit(session, actor=principal.subject, action="roster.contacts_read", subject=f"request:{req.id}",
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

async def _known_request(session: AsyncSession, request_id: uuid.UUID):
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
                          .values(status=status, updated_at=now(), **values))


async def on_accepted(session: AsyncSession, *, outbox: Outbox, cipher: FieldCipher, request_id: uuid.UUID,
                      accepted_at: datetime, bureau_commitment: str, snapshot_hash: str, params_hash: str,
                      beacon: dict[str, Any] | None, short_notice_consent: dict[str, Any] | None) -> bool:
    """DRAW.md steps 2-3: store the bureau's acceptance once, then reveal n_P (never for a closed request)."""
    req = await _known_request(session, request_id)
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
            await _audit(session, actor="selection", action="supervision_request.second_acceptance_ignored",
                         subject=f"request:{request_id}", differs=differs)
        return True
    if req.status not in ("requested", "awaiting_consent") or req.procuratorate_nonce_encrypted is None:
        log.warning("SupervisionAccepted for request %s in status %s recorded; nonce not revealed", request_id,
                    req.status)
        await _set_request(session, req, status=req.status, **received)
        await _audit(session, actor="selection", action="supervision_request.accepted",
                     subject=f"request:{request_id}", revealed=False, status=req.status)
        return True
    nonce = cipher.decrypt(req.procuratorate_nonce_encrypted, context=NONCE_CONTEXT)
    await _set_request(session, req, status="accepted", revealed_at=now(), **received)
    await outbox.add(session, DrawNonceRevealed(request_id=request_id, procuratorate_nonce=nonce))
    await _audit(session, actor="selection", action="supervision_request.accepted", subject=f"request:{request_id}",
                 revealed=True, bureau_commitment=bureau_commitment)
    return True


async def on_draw_completed(session: AsyncSession, *, request_id: uuid.UUID, draw_id: uuid.UUID, round_no: int,
                            receipt_hash: str, shortfall: dict[str, int]) -> bool:
    """DRAW.md step 4: a round was drawn; its receipt is queued for the check of step 5 (R14.1 shortfall shown)."""
    req = await _known_request(session, request_id)
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
    req = await _known_request(session, request_id)
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
    req = await _known_request(session, request_id)
    if req is None:
        return False
    await session.execute(update(roster).where(roster.c.request_id == request_id,
                                               roster.c.supervisor_id == supervisor_id)
                          .values(status="released", released_at=now(), release_reason=reason,
                                  replaced_by=replaced_by))
    await _set_request(session, req, status=rules.status_after_released(req.status),
                       contact_log_head=contact_log_head)
    return True


async def on_staffed(session: AsyncSession, *, request_id: uuid.UUID, receipt_hash: str,
                     contact_log_head: str | None = None) -> bool:
    """R12.1: every seat is confirmed."""
    req = await _known_request(session, request_id)
    if req is None:
        return False
    await _set_request(session, req, status=rules.status_after_staffed(req.status), receipt_hash=receipt_hash,
                       contact_log_head=contact_log_head)
    return True


async def on_refused(session: AsyncSession, *, request_id: uuid.UUID, code: str, earliest: date | None,
                     detail: str) -> bool:
    """R10.1/R10.2: the bureau refused the request; the earliest allowed date is shown on it."""
    req = await _known_request(session, request_id)
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
             decided_at=now()))
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
    at = now()
    await session.execute(update(draw_check).where(draw_check.c.draw_id == draw_id).values(
        status="mismatch" if failed else "ok", failed_checks=failed, checked_at=at, last_error=None))
    if failed:
        log.error("draw receipt mismatch: request %s draw %s failed %s", req.id, draw_id, ", ".join(failed))
        await outbox.add(session, ReceiptMismatchDetected(request_id=req.id, draw_id=draw_id, failed_checks=failed,
                                                          detected_at=at))
    await _audit(session, actor="casework", action="draw.receipt_mismatch" if failed else "draw.receipt_checked",
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
    recusal_id, at = uuid.uuid4(), now()
    row = (await session.execute(insert(recusal).values(
        id=recusal_id, request_id=req.id, supervisor_id=supervisor_id, source=source, ground=ground,
        requested_by=principal.subject, requested_at=at).returning(*recusal.c))).one()
    await outbox.add(session, RecusalRequested(request_id=req.id, supervisor_id=supervisor_id, source=source,
                                               ground=ground, requested_at=at))
    await _audit(session, actor=principal.subject, action="recusal.requested", subject=f"request:{req.id}",
                 recusal_id=str(recusal_id), source=source)
    return recusal_dict(row)


# --- materials (R15.1, R3.1) ----------------------------------------------------------------------

async def add_material(session: AsyncSession, *, act, title: str, content_type: str, content: bytes,
                       principal: Principal) -> dict[str, Any]:
    material_id = uuid.uuid4()
    row = (await session.execute(insert(material).values(
        id=material_id, activity_id=act.id, title=title, content_type=content_type, size=len(content),
        sha256=hashlib.sha256(content).hexdigest(), content=content, uploaded_by=principal.subject,
    ).returning(*material.c))).one()
    await _audit(session, actor=principal.subject, action="material.added", subject=f"material:{material_id}",
                 activity_id=str(act.id), sha256=row.sha256)
    return material_meta(row)


def material_meta(r) -> dict[str, Any]:
    return {"id": r.id, "activity_id": r.activity_id, "title": r.title, "content_type": r.content_type,
            "size": r.size, "sha256": r.sha256, "uploaded_by": r.uploaded_by, "uploaded_at": r.uploaded_at}


async def ensure_material_access(session: AsyncSession, principal: Principal, act) -> None:
    """R15.1/R3.1: procuratorate staff of the activity, or its confirmed supervisors until the form is signed."""
    if principal.has(Role.PROCURATORATE):
        ensure_office(principal, act)
        return
    if principal.has(Role.SUPERVISOR) and await is_participant(session, act.id, principal.supervisor_id):
        form = await form_of(session, act.id)
        if form is None or form.completed_at is None:
            return
        raise ProblemError(403, "R15.1", "材料查阅期限已过",
                           "依据 R15.1、R3.1，反馈表签字完成后不再向人民监督员提供案件材料。")
    raise ProblemError(403, "R15.1", "无权查阅案件材料",
                       "依据 R15.1、R3.1，案件材料仅向承办检察院和确认参加该活动的人民监督员提供。")


async def list_materials(session: AsyncSession, *, act, principal: Principal) -> list[dict[str, Any]]:
    await ensure_material_access(session, principal, act)
    rows = (await session.execute(select(material).where(material.c.activity_id == act.id)
                                  .order_by(material.c.uploaded_at))).all()
    return [material_meta(r) for r in rows]


async def read_material(session: AsyncSession, *, act, material_id: uuid.UUID, principal: Principal):
    """R3.1: every read of case materials is audit-logged."""
    await ensure_material_access(session, principal, act)
    row = (await session.execute(select(material).where(material.c.id == material_id,
                                                        material.c.activity_id == act.id))).first()
    if row is None:
        raise NotFound("案件材料", material_id)
    await _audit(session, actor=principal.subject, action="material.read", subject=f"material:{material_id}",
                 activity_id=str(act.id))
    return row


# --- opinions (R16.1) -----------------------------------------------------------------------------

async def record_opinion(session: AsyncSession, *, act, supervisor_id: uuid.UUID, text: str,
                         principal: Principal) -> dict[str, Any]:
    """R16.1: the opinion verbatim, by the procuratorate or the supervisor; refused once the form is signed."""
    if principal.has(Role.PROCURATORATE):
        ensure_office(principal, act)
    elif not principal.is_self(supervisor_id):
        raise forbidden("只有承办检察院或人民监督员本人可以记录监督意见。")
    if not await is_participant(session, act.id, supervisor_id):
        raise Conflict("R16.1", "该人民监督员未参加本活动", "只能记录确认参加本活动的人民监督员的意见。")
    rules.check_not_frozen(await form_of(session, act.id) is not None)
    values = dict(text=text, recorded_by=principal.subject, recorded_at=now())
    row = (await session.execute(insert(opinion).values(activity_id=act.id, supervisor_id=supervisor_id, **values)
                                 .on_conflict_do_update(index_elements=[opinion.c.activity_id,
                                                                        opinion.c.supervisor_id], set_=values)
                                 .returning(*opinion.c))).one()
    return opinion_dict(row)


def opinion_dict(r) -> dict[str, Any]:
    return {"activity_id": r.activity_id, "supervisor_id": r.supervisor_id, "text": r.text,
            "recorded_by": r.recorded_by, "recorded_at": r.recorded_at, "frozen": r.frozen}


async def list_opinions(session: AsyncSession, activity_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = (await session.execute(select(opinion).where(opinion.c.activity_id == activity_id)
                                  .order_by(opinion.c.supervisor_id))).all()
    return [opinion_dict(r) for r in rows]


# --- feedback form and signatures (R17.1) ---------------------------------------------------------

async def participants(session: AsyncSession, activity_id: uuid.UUID) -> list:
    """Confirmed supervisors of the activity (observers are not participants, R19.1)."""
    return (await session.execute(select(roster).where(roster.c.activity_id == activity_id,
                                                       roster.c.status == "confirmed", live_roster())
                                  .order_by(roster.c.supervisor_id))).all()


def _activity_facts(act) -> dict[str, Any]:
    return {"id": str(act.id), "case_ref": act.case_ref, "activity_type": act.activity_type,
            "activity_type_label": activity_types.label(act.activity_type),
            "other_description": act.other_description, "office": act.office, "district": act.district,
            "starts_at": act.starts_at.astimezone(rules.SHANGHAI).isoformat(),
            "ends_at": act.ends_at.astimezone(rules.SHANGHAI).isoformat(), "place": act.place}


async def draft_content(session: AsyncSession, act) -> dict[str, Any]:
    """R17.1: the form as it would be signed now (live until the first signature)."""
    people = await participants(session, act.id)
    opinions = {o["supervisor_id"]: o["text"] for o in await list_opinions(session, act.id)}
    adoptions = {r.supervisor_id: r.adopted for r in (await session.execute(
        select(adoption).where(adoption.c.activity_id == act.id))).all()}
    return rules.form_content(activity=_activity_facts(act), summary=act.summary, participants=[
        {"supervisor_id": p.supervisor_id, "name": p.name, "opinion": opinions.get(p.supervisor_id),
         "adopted": adoptions.get(p.supervisor_id)} for p in people])


async def form_view(session: AsyncSession, act) -> dict[str, Any]:
    form = await form_of(session, act.id)
    content = form.content if form else await draft_content(session, act)
    sigs = []
    if form:
        sigs = [{"supervisor_id": s.supervisor_id, "signed_at": s.signed_at, "method": s.method,
                 "content_hash": s.content_hash, "signature_hash": s.signature_hash,
                 "has_image": s.image is not None}
                for s in (await session.execute(select(signature).where(signature.c.form_id == form.id)
                                                .order_by(signature.c.signed_at))).all()]
    return {"form_id": form.id if form else None, "activity_id": act.id, "status":
            "draft" if form is None else ("signed" if form.completed_at else "signing"),
            "content": content, "content_hash": form.content_hash if form else rules.content_hash(content),
            "frozen_at": form.frozen_at if form else None, "completed_at": form.completed_at if form else None,
            "signatures": sigs}


async def sign(session: AsyncSession, *, outbox: Outbox, act, principal: Principal, method: str,
               expected_hash: str | None, image: bytes | None) -> dict[str, Any]:
    """R17.1: a participant signs exactly the frozen content; all signed → one FeedbackSigned each."""
    if not principal.has(Role.SUPERVISOR) or not await is_participant(session, act.id, principal.supervisor_id):
        raise ProblemError(403, "R17.1", "仅参加活动的人民监督员本人可以签字",
                           "依据 R17.1，反馈表由参加活动的人民监督员本人现场签字确认。")
    supervisor_id = uuid.UUID(principal.supervisor_id or "")
    form = await form_of(session, act.id, lock=True)
    if form is None:
        req = await current_request(session, act.id)
        content = await draft_content(session, act)
        missing = [p["name"] for p in content["participants"] if not p["opinion"]]
        if missing:
            raise Conflict("R16.1", "尚有人民监督员的意见未记录",
                           f"请先记录以下人民监督员的监督意见：{'、'.join(missing)}。")
        await session.execute(insert(feedback_form).values(
            id=uuid.uuid4(), activity_id=act.id, request_id=req.id, content=content,
            content_hash=rules.content_hash(content), frozen_at=now()).on_conflict_do_nothing())
        await session.execute(update(opinion).where(opinion.c.activity_id == act.id).values(frozen=True))
        form = await form_of(session, act.id, lock=True)
    if expected_hash is not None and expected_hash != form.content_hash:
        raise Conflict("R17.1", "签署内容与反馈表不一致", "反馈表内容已变化，请重新核对后签字。")
    signers = {p["supervisor_id"] for p in form.content["participants"]}
    if str(supervisor_id) not in signers:
        raise ProblemError(403, "R17.1", "不在本反馈表的签字人之列", "反馈表内容固定时您不在参加人员名单中。")
    done = await session.scalar(select(exists().where(signature.c.form_id == form.id,
                                                      signature.c.supervisor_id == supervisor_id)))
    if done:
        raise Conflict("already_signed", "您已签字", "同一人民监督员对同一反馈表只签字一次。")
    at = now()
    image_sha = hashlib.sha256(image).hexdigest() if image else None
    sig_hash = rules.signature_hash(form_id=str(form.id), supervisor_id=str(supervisor_id),
                                    content_hash=form.content_hash, signed_at=at, method=method,
                                    image_sha256=image_sha)
    await session.execute(insert(signature).values(
        form_id=form.id, supervisor_id=supervisor_id, signed_by=principal.subject, signed_at=at, method=method,
        content_hash=form.content_hash, signature_hash=sig_hash, image=image, image_sha256=image_sha))
    await complete_if_signed(session, outbox=outbox, act=act, form=form, at=at)
    view = await form_view(session, act)
    # last: the audit chain's lock is held until commit, so take it as late as possible
    await _audit(session, actor=principal.subject, action="form.signed", subject=f"form:{form.id}",
                 supervisor_id=str(supervisor_id), method=method, content_hash=form.content_hash)
    return view


async def complete_if_signed(session: AsyncSession, *, outbox: Outbox, act, form, at: datetime) -> bool:
    """R17.1: every signer present has signed → completed, one FeedbackSigned each (R42.1, R28.1).

    Signers are the participants of the frozen content, less those the bureau recorded absent.
    """
    absent = {str(sid) for sid in (await session.scalars(select(roster.c.supervisor_id).where(
        roster.c.activity_id == act.id, roster.c.status == "absent"))).all()}
    signers = {p["supervisor_id"] for p in form.content["participants"]} - absent
    sigs = (await session.execute(select(signature).where(signature.c.form_id == form.id))).all()
    if form.completed_at is not None or not signers or not {str(s.supervisor_id) for s in sigs} >= signers:
        return False
    await session.execute(update(feedback_form).where(feedback_form.c.id == form.id).values(completed_at=at))
    adoptions = {r.supervisor_id: r.adopted for r in (await session.execute(
        select(adoption).where(adoption.c.activity_id == act.id))).all()}
    await outbox.add_many(session, [FeedbackSigned(
        form_id=form.id, activity_id=act.id, request_id=form.request_id, supervisor_id=s.supervisor_id,
        activity_type=act.activity_type, activity_date=rules.local_date(act.starts_at), district=act.district,
        adopted=adoptions.get(s.supervisor_id), signed_at=s.signed_at, signature_hash=s.signature_hash)
        for s in sorted(sigs, key=lambda s: str(s.supervisor_id))])
    return True


async def on_absent(session: AsyncSession, *, outbox: Outbox, request_id: uuid.UUID, supervisor_id: uuid.UUID,
                    reason: str, recorded_at: datetime) -> bool:
    """The bureau recorded a confirmed supervisor absent: no longer a signer or participant (no subsidy)."""
    req = await _known_request(session, request_id)
    if req is None:
        return False
    changed = (await session.execute(update(roster).where(
        roster.c.request_id == request_id, roster.c.supervisor_id == supervisor_id, roster.c.status == "confirmed",
    ).values(status="absent", absent_at=recorded_at, absence_reason=reason))).rowcount
    act = await require_activity(session, req.activity_id)
    form = await form_of(session, act.id, lock=True)
    if changed and form is not None:  # the others may all have signed already
        await complete_if_signed(session, outbox=outbox, act=act, form=form, at=now())
    return bool(changed)


async def signature_image(session: AsyncSession, *, act, supervisor_id: uuid.UUID) -> bytes | None:
    form = await form_of(session, act.id)
    if form is None:
        return None
    return await session.scalar(select(signature.c.image).where(signature.c.form_id == form.id,
                                                               signature.c.supervisor_id == supervisor_id))


# --- adoption notice (R18.1) ----------------------------------------------------------------------

async def decide_adoption(session: AsyncSession, *, outbox: Outbox, act, supervisor_id: uuid.UUID, adopted: bool,
                          reason: str, principal: Principal) -> dict[str, Any]:
    """R18.1: adoption decision + reason per opinion, notified to the supervisor (never edits the signed form)."""
    if await session.scalar(select(exists().where(opinion.c.activity_id == act.id,
                                                  opinion.c.supervisor_id == supervisor_id))) is not True:
        raise Conflict("R18.1", "没有该人民监督员的监督意见", "只能对已记录的监督意见作出采纳决定。")
    at = now()
    values = dict(adopted=adopted, reason=reason, decided_by=principal.subject, notified_at=at)
    row = (await session.execute(insert(adoption).values(activity_id=act.id, supervisor_id=supervisor_id, **values)
                                 .on_conflict_do_update(index_elements=[adoption.c.activity_id,
                                                                        adoption.c.supervisor_id], set_=values)
                                 .returning(*adoption.c))).one()
    await outbox.add(session, OpinionAdoptionNotified(activity_id=act.id, supervisor_id=supervisor_id,
                                                      adopted=adopted, reason=reason, notified_at=at))
    await _audit(session, actor=principal.subject, action="adoption.notified", subject=f"activity:{act.id}",
                 supervisor_id=str(supervisor_id), adopted=adopted)
    return adoption_dict(row)


def adoption_dict(r) -> dict[str, Any]:
    return {"activity_id": r.activity_id, "supervisor_id": r.supervisor_id, "adopted": r.adopted,
            "reason": r.reason, "decided_by": r.decided_by, "notified_at": r.notified_at}


async def notices_of(session: AsyncSession, supervisor_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = (await session.execute(select(adoption).where(adoption.c.supervisor_id == supervisor_id)
                                  .order_by(adoption.c.notified_at.desc()).limit(200))).all()
    return [adoption_dict(r) for r in rows]


# --- observers (R19.1) ----------------------------------------------------------------------------

async def add_observer(session: AsyncSession, *, act, data: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """R19.1: bureau staff or a shadowing supervisor, recorded but not a participant (never paid)."""
    if data["kind"] == "shadowing_supervisor" and not data.get("supervisor_id"):
        raise Unprocessable("R19.1", "请填写跟案观摩的人民监督员", "跟案观摩须填写 supervisor_id。")
    if data.get("supervisor_id") and await is_participant(session, act.id, data["supervisor_id"]):
        raise Conflict("R19.1", "该人民监督员已是参加人员", "参加人员不能同时登记为观摩人员。")
    row = (await session.execute(insert(observer).values(
        id=uuid.uuid4(), activity_id=act.id, kind=data["kind"], name=data["name"],
        organization=data.get("organization"), supervisor_id=data.get("supervisor_id"),
        recorded_by=principal.subject).returning(*observer.c))).one()
    return observer_dict(row)


def observer_dict(r) -> dict[str, Any]:
    return {"id": r.id, "activity_id": r.activity_id, "kind": r.kind, "name": r.name,
            "organization": r.organization, "supervisor_id": r.supervisor_id, "paid": False,
            "recorded_by": r.recorded_by, "recorded_at": r.recorded_at}


async def list_observers(session: AsyncSession, activity_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = (await session.execute(select(observer).where(observer.c.activity_id == activity_id)
                                  .order_by(observer.c.recorded_at))).all()
    return [observer_dict(r) for r in rows]


# --- reports to the bureau (R20.1, R20.2) ---------------------------------------------------------

async def report_participation(session: AsyncSession, *, act, calendar: WorkingCalendar, note: str,
                               principal: Principal) -> dict[str, Any]:
    """R20.1: participation reported to the bureau; due 3 working days after the activity ends."""
    if not await session.scalar(select(exists().where(roster.c.activity_id == act.id, live_roster()))):
        raise Conflict("R20.1", "该活动没有人民监督员参加", "没有人民监督员参加的活动无需通报履职情况。")
    due, provisional = rules.report_due(rules.local_date(act.ends_at), calendar)
    at = now()
    row = (await session.execute(insert(participation_report).values(
        activity_id=act.id, due_on=due, reported_by=principal.subject, reported_at=at, note=note)
        .on_conflict_do_nothing().returning(*participation_report.c))).first()
    if row is None:
        raise Conflict("already_reported", "已通报", "该活动的履职情况已通报市司法局。")
    await _audit(session, actor=principal.subject, action="report.participation", subject=f"activity:{act.id}")
    return {"activity_id": act.id, "due_on": due, "reported_at": row.reported_at,
            "on_time": not rules.is_overdue(due, rules.local_date(row.reported_at), rules.local_date(at)),
            "provisional": provisional}


async def overdue_participation(session: AsyncSession, *, calendar: WorkingCalendar, as_of: date,
                                principal: Principal) -> list[dict[str, Any]]:
    """R20.1: activities with supervisors whose report is late or missing as of `as_of`."""
    with_roster = select(roster.c.activity_id).where(live_roster()).distinct().subquery()
    stmt = (select(activity, participation_report.c.reported_at, participation_report.c.due_on.label("r_due"))
            .join(with_roster, with_roster.c.activity_id == activity.c.id)
            .outerjoin(participation_report, participation_report.c.activity_id == activity.c.id)
            .where(activity.c.ends_at < func.now()))
    if not principal.is_citywide:
        stmt = stmt.where(activity.c.district == principal.district)
    out = []
    for r in (await session.execute(stmt.order_by(activity.c.ends_at).limit(1000))).all():
        due, provisional = rules.report_due(rules.local_date(r.ends_at), calendar)
        done = rules.local_date(r.reported_at) if r.reported_at else None
        if rules.is_overdue(due, done, as_of):
            out.append({"activity_id": r.id, "case_ref": r.case_ref, "office": r.office, "district": r.district,
                        "ended_on": rules.local_date(r.ends_at), "due_on": due, "reported_on": done,
                        "provisional": provisional})
    return out


async def send_transmittal(session: AsyncSession, *, office: str, month: date, principal: Principal,
                           today: date) -> dict[str, Any]:
    """R20.2: the month's signed forms of an office, sent to the bureau (due by the 4th of the next month)."""
    if month >= today.replace(day=1):
        raise Unprocessable("R20.2", "只能汇总已结束月份的反馈表", "每月汇总转送的是上月及以前的反馈表。")
    forms = await _forms_of_month(session, office, month)
    due = rules.transmittal_due(month)
    row = (await session.execute(insert(transmittal).values(
        id=uuid.uuid4(), office=office, month=month, due_on=due, form_ids=[str(f) for f in forms],
        sent_by=principal.subject).on_conflict_do_nothing().returning(*transmittal.c))).first()
    if row is None:
        raise Conflict("already_sent", "该月反馈表已转送", "同一单位同一月份只转送一次。")
    await _audit(session, actor=principal.subject, action="report.transmittal", subject=f"transmittal:{row.id}",
                 month=month.isoformat(), forms=len(forms))
    return transmittal_dict(row)


def transmittal_dict(r) -> dict[str, Any]:
    sent_on = rules.local_date(r.sent_at)
    return {"id": r.id, "office": r.office, "month": r.month.strftime("%Y-%m"), "due_on": r.due_on,
            "form_ids": r.form_ids, "sent_by": r.sent_by, "sent_at": r.sent_at,
            "on_time": not rules.is_overdue(r.due_on, sent_on, sent_on)}


async def _forms_of_month(session: AsyncSession, office: str, month: date) -> list[uuid.UUID]:
    nxt = rules.transmittal_due(month).replace(day=1)
    start = datetime(month.year, month.month, 1, tzinfo=rules.SHANGHAI)
    end = datetime(nxt.year, nxt.month, 1, tzinfo=rules.SHANGHAI)
    return list((await session.execute(
        select(feedback_form.c.id).join(activity, activity.c.id == feedback_form.c.activity_id)
        .where(activity.c.office == office, feedback_form.c.completed_at.is_not(None),
               activity.c.starts_at >= start, activity.c.starts_at < end).order_by(feedback_form.c.id))).scalars())


async def overdue_transmittals(session: AsyncSession, *, as_of: date, principal: Principal) -> list[dict[str, Any]]:
    """R20.2: (office, month) with signed forms whose transmittal is late or missing as of `as_of`."""
    month_expr = func.date_trunc("month", func.timezone("Asia/Shanghai", activity.c.starts_at))
    stmt = (select(activity.c.office, month_expr.label("month"), func.count().label("forms"))
            .join(feedback_form, feedback_form.c.activity_id == activity.c.id)
            .where(feedback_form.c.completed_at.is_not(None)).group_by(activity.c.office, month_expr))
    if not principal.is_citywide:
        stmt = stmt.where(activity.c.district == principal.district)
    sent = {(r.office, r.month): r for r in (await session.execute(select(transmittal))).all()}
    out = []
    for r in (await session.execute(stmt)).all():
        month = r.month.date() if isinstance(r.month, datetime) else r.month
        due = rules.transmittal_due(month)
        t = sent.get((r.office, month))
        done = rules.local_date(t.sent_at) if t else None
        if rules.is_overdue(due, done, as_of):
            out.append({"office": r.office, "month": month.strftime("%Y-%m"), "due_on": due, "forms": r.forms,
                        "sent_on": done})
    return sorted(out, key=lambda x: (x["month"], x["office"]))

"""Contact outcomes in draw order (R12.1), replacement (R14.2), recusal (R13.1, R13.2), bookings.

Every use case locks the request row first, so the outcomes of one request are serialized; a
confirmation also takes a per-supervisor advisory lock, so two requests never book one person
for overlapping times (and the yearly cap holds) however many confirmations run at once.
"""

import uuid
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.selection.config import SelectionSettings
from services.selection.draw import contacts
from services.selection.models import absence, booking, candidate, draw, notice, recusal, request, supervisor
from services.selection.requests import service as requests
from shared import audit
from shared.clock import SHANGHAI
from shared.db import raw
from shared.db.platform import PlatformTables
from shared.errors import Conflict, NotFound, ProblemError, Unprocessable
from shared.events.contracts import (
    RecusalDecided,
    SupervisionStaffed,
    SupervisorAbsenceRecorded,
    SupervisorDrawn,
    SupervisorReleased,
)
from shared.events.outbox import Outbox

ContactLookup = Callable[[uuid.UUID], Awaitable[dict[str, Any] | None]]


def _lock_key(supervisor_id: uuid.UUID) -> int:
    return zlib.crc32(f"selection:supervisor:{supervisor_id}".encode())


async def _candidate(session: AsyncSession, request_id: uuid.UUID, supervisor_id: uuid.UUID):
    return (await session.execute(select(candidate).where(
        candidate.c.request_id == request_id, candidate.c.supervisor_id == supervisor_id))).one_or_none()


def ensure_not_started(req) -> None:
    """No contact outcome, decline or recusal once the activity has begun: its record is kept as it is."""
    if requests.utcnow() >= req.starts_at:
        raise Conflict("activity_started", "活动已开始", "活动开始后不能再记录联络结果、拒绝或回避；缺席应另行登记。")


async def record_outcome(
    session: AsyncSession, *, outbox: Outbox, settings: SelectionSettings, platform: PlatformTables,
    request_id: uuid.UUID, supervisor_id: uuid.UUID, outcome: str, reason: str | None, actor: str,
    recorded_by: str, contact_lookup: ContactLookup | None, attempts: list[dict] | None = None,
) -> dict:
    """Record one contact outcome for a candidate, in draw order (R12.1); replace as needed (R14.2).

    An outcome recorded by someone other than the supervisor carries its evidence (attempts: when,
    how; `contacts.evidence_problem`), and the supervisor is told what was recorded for them.
    """
    # A confirmation needs the person's contact from the registry: asked before any lock, so an HTTP call never
    # runs under selection's chain lock (a slow registry would hold every draw and acceptance). Only for someone
    # whose turn it is (R12.1); the state is checked again under the lock below.
    contact = None
    if outcome == "confirmed" and contact_lookup is not None:
        waiting = await _candidate(session, request_id, supervisor_id)
        if waiting is not None and waiting.status == "pending":
            contact = await contact_lookup(supervisor_id)
    req = await requests.require(session, request_id, lock=True)
    if req.status in ("refused", "cancelled"):
        raise Conflict("request_closed", "该申请已结束", f"该申请的状态为{req.status}，没有待联络的人员。")
    ensure_not_started(req)
    cand = await _candidate(session, request_id, supervisor_id)
    if cand is None:
        raise Conflict("R12.1", "未按抽选顺序", "该人民监督员尚未按抽选顺序轮到，或未被抽中；应依次联络。")
    attempts = attempts or []
    rules = (req.params or {}).get("contact_rules") or contacts.DEFAULT_RULES
    problem = contacts.evidence_problem(outcome, recorded_by, attempts, rules, recorded_at=requests.utcnow(),
                                        window_opened_at=cand.updated_at if cand.status == "pending" else None)
    if problem is not None:
        raise Unprocessable(problem[0], "联络记录缺少依据", problem[1])
    log = {"actor": actor, "attempts": attempts}
    if outcome == "recused":
        if cand.status not in ("pending", "confirmed"):
            raise Conflict("contact_already_recorded", "联络结果已记录", f"该人民监督员的状态为{cand.status}。")
        await _grant_recusal(session, outbox=outbox, settings=settings, req=req, cand=cand,
                             source="self", ground=reason or "自行回避", decided_by=actor, reason=reason,
                             recorded_by=recorded_by, log=log)
    elif cand.status == "pending" and outcome == "confirmed":
        await _confirm(session, outbox=outbox, settings=settings, req=req, cand=cand,
                       recorded_by=recorded_by, contact=contact, log=log)
    elif cand.status == "pending":
        await _set_status(session, req, cand, outcome, reason, recorded_by, log=log)
        await requests.fill_window(session, outbox=outbox, settings=settings, req=req, group=cand.group)
    elif cand.status == "confirmed" and outcome in ("declined", "unreachable"):
        await _release(session, outbox=outbox, settings=settings, req=req, cand=cand, status="declined",
                       reason_code="withdrawn", reason=reason, recorded_by=recorded_by, log=log)
    else:
        raise Conflict("contact_already_recorded", "联络结果已记录",
                       f"该人民监督员的状态为{cand.status}，不能再记录为{outcome}。")
    if recorded_by != "supervisor":
        await _notify(session, req=req, supervisor_id=supervisor_id, outcome=outcome, attempts=attempts)
    await audit.append(session, platform.audit, actor=actor, action=f"contact.{outcome}",
                       subject=str(request_id), details={"supervisor_id": str(supervisor_id)})
    return await requests.view(session, await requests.require(session, request_id))


OUTCOME_LABELS = {"confirmed": "确认参加", "declined": "不能参加", "unreachable": "无法联系", "recused": "回避"}


async def _notify(session, *, req, supervisor_id: uuid.UUID, outcome: str, attempts: list[dict]) -> None:
    """DRAW.md "Contact": the supervisor is told what someone else recorded for them, with the attempts."""
    tried = "；".join(f"{a['at']} {contacts.CHANNEL_LABELS.get(a['channel'], a['channel'])}" for a in attempts)
    text = (f"市司法局已将您对{req.starts_at.astimezone(SHANGHAI):%Y年%m月%d日}{req.activity_type}监督活动的联络结果"
            f"记录为“{OUTCOME_LABELS.get(outcome, outcome)}”。" + (f"联系尝试：{tried}。" if tried else "")
            + "如有异议，请与市司法局联系。")
    await session.execute(notice.insert().values(
        id=uuid.uuid4(), supervisor_id=supervisor_id, request_id=req.id, kind=f"contact.{outcome}",
        body={"text": text, "outcome": outcome, "attempts": attempts}))


async def _set_status(session, req, cand, status: str, reason: str | None, recorded_by: str,
                      log: dict | None = None, **extra: Any) -> None:
    log = log or {}
    await session.execute(update(candidate).where(
        candidate.c.request_id == req.id, candidate.c.supervisor_id == cand.supervisor_id
    ).values(status=status, updated_at=func.now(), **extra))
    await requests.append_contact(session, draw_id=cand.draw_id, entry={
        "supervisor_id": str(cand.supervisor_id), "group": cand.group, "position": cand.position,
        "outcome": status, "recorded_by": recorded_by}, reason=reason, actor=log.get("actor"),
        attempts=log.get("attempts"))


async def _confirm(session, *, outbox, settings, req, cand, recorded_by, contact: dict | None, log) -> None:
    sid = cand.supervisor_id
    person = (await session.execute(select(supervisor).where(supervisor.c.id == sid))).one_or_none()
    if person is None or not person.eligible or person.dismissed:
        raise Conflict("not_eligible", "该人民监督员目前不可参加",
                       "该人民监督员已不符合抽选条件，请记录为无法联系或拒绝。")
    await session.execute(select(func.pg_advisory_xact_lock(_lock_key(sid))))
    overlap = await session.scalar(select(func.count()).select_from(booking).where(
        booking.c.supervisor_id == sid, booking.c.active, booking.c.request_id != req.id,
        booking.c.starts_at < req.ends_at, booking.c.ends_at > req.starts_at))
    if overlap:
        raise Conflict("booking_overlap", "时间冲突", "该人民监督员在重叠的时间已确认参加其他监督活动。")
    served = await session.scalar(select(func.count()).select_from(booking).where(
        booking.c.supervisor_id == sid, booking.c.active, booking.c.year == req.year))
    if served >= settings.yearly_cap:
        raise Conflict("yearly_cap", "已达年度上限", f"该人民监督员本年度已参加{served}次，达到上限。")
    if not contact or not contact.get("phone"):
        raise ProblemError(503, "upstream_unavailable", "无法获取联系方式",
                           "人民监督员信息库未返回联系方式，未做任何修改。")
    await session.execute(booking.insert().values(
        supervisor_id=sid, request_id=req.id, starts_at=req.starts_at, ends_at=req.ends_at, year=req.year,
        active=True))
    now = requests.utcnow()
    await _set_status(session, req, cand, "confirmed", None, recorded_by, log=log, confirmed_at=now)
    await outbox.add(session, SupervisorDrawn(
        request_id=req.id, draw_id=cand.draw_id, supervisor_id=sid, name=person.name or contact.get("name", ""),
        phone=contact["phone"], district=person.district, specialties=list(person.specialties),
        group=cand.group, draw_order=cand.position, confirmed_at=now,
        contact_log_head=await requests.contact_log_head(session, req.id),
    ))
    await _maybe_staffed(session, outbox=outbox, req=req)


async def _maybe_staffed(session, *, outbox, req) -> None:
    confirmed = (await session.scalars(select(candidate.c.supervisor_id).where(
        candidate.c.request_id == req.id, candidate.c.status == "confirmed").order_by(
        candidate.c.group, candidate.c.position))).all()
    if len(confirmed) < req.seats:
        return
    receipt_hash = await session.scalar(select(draw.c.receipt_hash).where(draw.c.request_id == req.id)
                                        .order_by(draw.c.round.desc()).limit(1))
    await session.execute(update(request).where(request.c.id == req.id).values(status="staffed"))
    await outbox.add(session, SupervisionStaffed(request_id=req.id, supervisor_ids=list(confirmed),
                                                 receipt_hash=receipt_hash,
                                                 contact_log_head=await requests.contact_log_head(session, req.id)))


async def _release(session, *, outbox, settings, req, cand, status, reason_code, reason, recorded_by,
                   log: dict | None = None) -> None:
    """A confirmed supervisor leaves: free the booking, log, next in order in, SupervisorReleased (R14.2)."""
    await session.execute(update(booking).where(
        booking.c.supervisor_id == cand.supervisor_id, booking.c.request_id == req.id
    ).values(active=False, released_at=func.now()))
    await _set_status(session, req, cand, status, reason, recorded_by, log=log)
    if req.status == "staffed":
        await session.execute(update(request).where(request.c.id == req.id).values(status="drawn"))
    entered = await requests.fill_window(session, outbox=outbox, settings=settings, req=req, group=cand.group)
    await outbox.add(session, SupervisorReleased(
        request_id=req.id, supervisor_id=cand.supervisor_id, reason=reason_code,
        replaced_by=entered[0] if entered else None,
        contact_log_head=await requests.contact_log_head(session, req.id)))


async def _grant_recusal(session, *, outbox, settings, req, cand, source, ground, decided_by, reason,
                         recusal_id: uuid.UUID | None = None, recorded_by: str | None = None,
                         log: dict | None = None) -> None:
    """Apply a granted recusal: record it, drop the person from the request, replace (R13, R14.2)."""
    now = requests.utcnow()
    if recusal_id is None:
        await session.execute(recusal.insert().values(
            id=uuid.uuid4(), request_id=req.id, supervisor_id=cand.supervisor_id if cand else None,
            source=source, ground=ground, status="granted", requested_at=now, decided_by=decided_by,
            decided_at=now, decision_reason=reason))
    recorded_by = recorded_by or "bureau"
    log = log or {"actor": decided_by}
    if cand is not None and cand.status == "confirmed":
        await _release(session, outbox=outbox, settings=settings, req=req, cand=cand, status="recused",
                       reason_code="recused", reason=reason, recorded_by=recorded_by, log=log)
    elif cand is not None and cand.status == "pending":
        await _set_status(session, req, cand, "recused", reason, recorded_by, log=log)
        await requests.fill_window(session, outbox=outbox, settings=settings, req=req, group=cand.group)
    await outbox.add(session, RecusalDecided(
        request_id=req.id, supervisor_id=cand.supervisor_id, granted=True, decided_by=decided_by,
        reason=reason or ground))


# --- absence after the fact ---------------------------------------------------------------------------

async def record_absence(session: AsyncSession, *, outbox: Outbox, platform: PlatformTables,
                         request_id: uuid.UUID, supervisor_id: uuid.UUID, reason: str, actor: str) -> dict:
    """Once the activity has begun, a confirmed supervisor who is not there is recorded absent (R28.1, R32.1).

    The roster keeps them: nobody is drawn after the fact, and the contact log is closed. Casework takes them
    off the signers (no subsidy); appraisal counts the absence in the ledger.
    """
    req = await requests.require(session, request_id, lock=True)
    if requests.utcnow() < req.starts_at:
        raise Conflict("activity_not_started", "活动尚未开始",
                       "活动开始前不能登记缺席；不能参加的，应记录为不能参加并依次递补（R14.2）。")
    cand = await _candidate(session, request_id, supervisor_id)
    if cand is None or cand.status != "confirmed":
        raise Conflict("not_on_roster", "该人民监督员不在确认名单中", "只能为确认参加的人民监督员登记缺席。")
    at = requests.utcnow()
    inserted = await session.scalar(insert(absence).values(
        request_id=request_id, supervisor_id=supervisor_id, reason=reason, recorded_by=actor, recorded_at=at,
    ).on_conflict_do_nothing().returning(absence.c.supervisor_id))
    if inserted is None:
        raise Conflict("absence_recorded", "缺席已登记", "同一人民监督员在同一活动只登记一次缺席。")
    await outbox.add(session, SupervisorAbsenceRecorded(
        request_id=request_id, activity_id=req.activity_id, activity_date=req.starts_at.astimezone(SHANGHAI).date(),
        supervisor_id=supervisor_id, reason=reason, recorded_by=actor, recorded_at=at))
    await audit.append(session, platform.audit, actor=actor, action="attendance.absent", subject=str(request_id),
                       details={"supervisor_id": str(supervisor_id)})
    return {"request_id": str(request_id), "supervisor_id": str(supervisor_id), "reason": reason,
            "recorded_by": actor, "recorded_at": at.isoformat()}


# --- dismissal (R9.1) ------------------------------------------------------------------------------

DISMISSED_REASON = "R9.1 资格已被免除，即时退出"


async def withdraw_dismissed(session: AsyncSession, *, outbox: Outbox, settings: SelectionSettings,
                             platform: PlatformTables, supervisor_id: uuid.UUID) -> list[uuid.UUID]:
    """R9.1: a dismissed person leaves at once, also from what was drawn before the dismissal.

    Out of every contact window (pending) and every roster (confirmed: the booking is freed and
    SupervisorReleased published) of an activity that has not begun; each seat goes to the next in
    draw order (R14.2). Activities already begun or held keep their record. Alternates not reached
    yet are skipped when their turn comes (`fill_window`). Idempotent: only pending and confirmed
    candidacies are touched. Returns the requests changed.
    """
    request_ids = (await session.scalars(
        select(candidate.c.request_id).join(request, request.c.id == candidate.c.request_id).where(
            candidate.c.supervisor_id == supervisor_id, candidate.c.status.in_(("pending", "confirmed")),
            request.c.starts_at > requests.utcnow()).order_by(candidate.c.request_id))).all()
    changed = []
    for request_id in request_ids:
        req = await requests.require(session, request_id, lock=True)
        cand = await _candidate(session, request_id, supervisor_id)  # again, under the request's lock
        if cand is None or cand.status not in ("pending", "confirmed"):
            continue
        if cand.status == "confirmed":
            await _release(session, outbox=outbox, settings=settings, req=req, cand=cand, status="dismissed",
                           reason_code="withdrawn", reason=DISMISSED_REASON, recorded_by="system",
                           log={"actor": "system"})
        else:
            await _set_status(session, req, cand, "dismissed", DISMISSED_REASON, "system", log={"actor": "system"})
            await requests.fill_window(session, outbox=outbox, settings=settings, req=req, group=cand.group)
        await audit.append(session, platform.audit, actor="system", action="contact.dismissed",
                           subject=str(request_id), details={"supervisor_id": str(supervisor_id)})
        changed.append(request_id)
    return changed


# --- recusal (R13.1, R13.2) -----------------------------------------------------------------------

async def self_recusal(session: AsyncSession, *, outbox: Outbox, settings: SelectionSettings,
                       platform: PlatformTables, request_id: uuid.UUID, supervisor_id: uuid.UUID,
                       ground: str, actor: str) -> dict:
    """R13.1: the supervisor recuses; effective at once, the bureau is informed (RecusalDecided)."""
    req = await requests.require(session, request_id, lock=True)
    ensure_not_started(req)
    cand = await _candidate(session, request_id, supervisor_id)
    if cand is None:
        raise NotFound("抽选结果中的该人民监督员", supervisor_id)
    if cand.status not in ("pending", "confirmed"):
        raise Conflict("contact_already_recorded", "已不在名单中", f"该人民监督员的状态为{cand.status}。")
    await _grant_recusal(session, outbox=outbox, settings=settings, req=req, cand=cand, source="self",
                         ground=ground, decided_by="self", reason=ground, recorded_by="supervisor",
                         log={"actor": actor})
    await audit.append(session, platform.audit, actor=actor, action="recusal.self", subject=str(request_id),
                       details={"supervisor_id": str(supervisor_id)})
    return await requests.view(session, await requests.require(session, request_id))


async def request_recusal(session: AsyncSession, *, request_id: uuid.UUID, supervisor_id: uuid.UUID,
                          source: str, ground: str, requested_at, strict: bool = True) -> uuid.UUID:
    """R13.2: a recusal request from the procuratorate or a party, pending the bureau's decision."""
    req = await requests.get(session, request_id)
    if strict and req is None:
        raise NotFound("抽选申请", request_id)
    # the partial unique index uq_recusal_pending makes a concurrent duplicate wait, then do nothing
    recusal_id = await session.scalar(insert(recusal).values(
        id=uuid.uuid4(), request_id=request_id, supervisor_id=supervisor_id, source=source, ground=ground,
        status="pending", requested_at=requested_at).on_conflict_do_nothing().returning(recusal.c.id))
    if recusal_id is None:  # already requested and still pending: the first one stands
        recusal_id = await session.scalar(select(recusal.c.id).where(
            recusal.c.request_id == request_id, recusal.c.supervisor_id == supervisor_id,
            recusal.c.source == source, recusal.c.status == "pending"))
    return recusal_id


async def decide_recusal(session: AsyncSession, *, outbox: Outbox, settings: SelectionSettings,
                         platform: PlatformTables, recusal_id: uuid.UUID, granted: bool, reason: str,
                         actor: str) -> dict:
    """R13.2: the bureau decides; granted → the person leaves the request and is replaced."""
    row = (await session.execute(select(recusal).where(recusal.c.id == recusal_id))).one_or_none()
    if row is None:
        raise NotFound("回避申请", recusal_id)
    req = await requests.require(session, row.request_id, lock=True)
    row = (await session.execute(select(recusal).where(recusal.c.id == recusal_id).with_for_update())).one()
    if row.status != "pending":
        raise Conflict("recusal_decided", "回避申请已决定", f"该回避申请已{row.status}。")
    if granted:
        ensure_not_started(req)
    await session.execute(update(recusal).where(recusal.c.id == recusal_id).values(
        status="granted" if granted else "rejected", decided_by=actor, decided_at=requests.utcnow(),
        decision_reason=reason))
    cand = await _candidate(session, row.request_id, row.supervisor_id)
    if granted:
        if cand is not None and cand.status in ("pending", "confirmed"):
            await _grant_recusal(session, outbox=outbox, settings=settings, req=req, cand=cand,
                                 source=row.source, ground=row.ground, decided_by=actor, reason=reason,
                                 recusal_id=recusal_id, recorded_by="bureau")
        else:  # not reached yet (or already out): the recusal row keeps them out of this request
            await outbox.add(session, RecusalDecided(request_id=req.id, supervisor_id=row.supervisor_id,
                                                     granted=True, decided_by=actor, reason=reason))
    else:
        await outbox.add(session, RecusalDecided(request_id=req.id, supervisor_id=row.supervisor_id,
                                                 granted=False, decided_by=actor, reason=reason))
    await audit.append(session, platform.audit, actor=actor, action="recusal.decided", subject=str(req.id),
                       details={"recusal_id": str(recusal_id), "granted": granted, "source": row.source})
    return {"recusal_id": str(recusal_id), "request_id": str(req.id), "supervisor_id": str(row.supervisor_id),
            "source": row.source, "status": "granted" if granted else "rejected"}


async def list_recusals(session: AsyncSession, *, request_id: uuid.UUID) -> list[dict]:
    rows = (await session.execute(select(recusal).where(recusal.c.request_id == request_id)
                                  .order_by(recusal.c.requested_at))).all()
    return [{"recusal_id": str(r.id), "supervisor_id": str(r.supervisor_id), "source": r.source,
             "status": r.status, "decided_by": r.decided_by} for r in rows]


# --- what supervisors and auditors read ------------------------------------------------------------

async def notices(session: AsyncSession, *, supervisor_id: uuid.UUID) -> list[dict]:
    rows = (await session.execute(select(notice).where(notice.c.supervisor_id == supervisor_id)
                                  .order_by(notice.c.created_at.desc()).limit(200))).all()
    return [{"notice_id": str(r.id), "request_id": str(r.request_id), "kind": r.kind, "text": r.body["text"],
             "attempts": r.body.get("attempts", []), "created_at": r.created_at.isoformat()} for r in rows]


OUTCOMES_BY_CLERK_SQL = """
SELECT coalesce(l.actor, l.entry->>'recorded_by') AS actor, l.entry->>'recorded_by' AS recorded_by,
       l.entry->>'outcome' AS outcome, count(*) AS n,
       count(*) FILTER (WHERE jsonb_array_length(coalesce(l.entry->'attempts', '[]'::jsonb)) = 0) AS without_attempts
FROM selection.contact_log l
WHERE l.entry->>'recorded_by' <> 'supervisor'
  AND ($1::date IS NULL OR (l.entry->>'at')::timestamptz >= $1::date)
  AND ($2::date IS NULL OR (l.entry->>'at')::timestamptz < $2::date + 1)
GROUP BY 1, 2, 3 ORDER BY 1, 3
"""


async def outcomes_by_clerk(session: AsyncSession, *, since, until) -> list[dict]:
    """DRAW.md "skip rates per clerk": outcomes recorded by someone other than the supervisor, per recorder."""
    report: dict[str, dict] = {}
    for r in await raw.fetch(session, OUTCOMES_BY_CLERK_SQL, since, until):
        line = report.setdefault(r["actor"], {"actor": r["actor"], "recorded_by": r["recorded_by"], "total": 0,
                                              "skipped": 0, "without_attempts": 0, "outcomes": {}})
        line["outcomes"][r["outcome"]] = r["n"]
        line["without_attempts"] += r["without_attempts"]
        line["total"] += r["n"]
        if r["outcome"] in contacts.FREEING:
            line["skipped"] += r["n"]
    for line in report.values():
        line["skip_rate"] = f"{line['skipped'] / line['total']:.3f}" if line["total"] else "0.000"
    return list(report.values())


# --- the bureau's inbox of recusals ------------------------------------------------------------------

async def recusal_inbox(session: AsyncSession, *, status: str | None, district: str | None, with_ground: bool,
                        limit: int, after: list | None) -> tuple[list[dict], int, list | None]:
    """Recusals across requests, oldest first (R13.2: the bureau decides the pending ones)."""
    where = []
    if status is not None:
        where.append(recusal.c.status == status)
    if district is not None:
        where.append(request.c.district == district)
    joined = recusal.join(request, request.c.id == recusal.c.request_id)
    total = await session.scalar(select(func.count()).select_from(joined).where(*where))
    if after is not None:
        where.append(tuple_(recusal.c.requested_at, recusal.c.id) > tuple(after))
    rows = (await session.execute(
        select(recusal, request.c.district, request.c.starts_at, request.c.status.label("request_status"),
               supervisor.c.name)
        .select_from(joined.outerjoin(supervisor, supervisor.c.id == recusal.c.supervisor_id))
        .where(*where).order_by(recusal.c.requested_at, recusal.c.id).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = []
    for r in rows:
        item = {"recusal_id": str(r.id), "request_id": str(r.request_id), "supervisor_id": str(r.supervisor_id),
                "source": r.source, "status": r.status, "requested_at": r.requested_at.isoformat(),
                "decided_by": r.decided_by, "decided_at": r.decided_at.isoformat() if r.decided_at else None,
                "district": r.district, "starts_at": r.starts_at.isoformat(), "request_status": r.request_status}
        if with_ground:  # the bureau, who decides, sees who and why
            item.update(name=r.name, ground=r.ground, decision_reason=r.decision_reason)
        items.append(item)
    return items, total, [rows[-1].requested_at, rows[-1].id] if more else None


# --- the call list (R12.1): who to call, in draw order, and their phone on demand ---------------------

CALL_STATUS_LABELS = {"queued": "候补（尚未轮到）", "pending": "待联络", **contacts.OUTCOME_LABELS}
GROUP_LABELS = {"local": "本区市", "cross": "跨区市"}
CALLABLE = ("pending", "confirmed")  # in the window, or on the roster: a clerk may need their phone
# the registry's masked phones of many supervisors at once (id -> masked phone; unknown ids absent)
MaskedLookup = Callable[[list[uuid.UUID]], Awaitable[dict[uuid.UUID, str]]]


async def _masked_phones(lookup: MaskedLookup | None, ids: list[uuid.UUID]) -> tuple[dict[uuid.UUID, str], bool]:
    """Masked phones from the registry (the owner of phones; selection stores none) in one batch read;
    ok=False when it failed."""
    if lookup is None or not ids:
        return {}, lookup is not None
    try:
        return await lookup(list(dict.fromkeys(ids))), True
    except ProblemError:  # registry down: the list is still selection's to show
        return {}, False


async def call_list(session: AsyncSession, *, req, masked_lookup: MaskedLookup | None) -> dict:
    """R12.1: everyone put in order for the request, group by group in draw order across rounds, with
    their contact state, then the alternates of the current round not reached yet (`queued`)."""
    cands = (await session.execute(select(candidate).where(candidate.c.request_id == req.id)
                                   .order_by(candidate.c.group, candidate.c.position))).all()
    draws = (await session.execute(select(draw.c.id, draw.c.round, draw.c.need, draw.c.receipt)
                                   .where(draw.c.request_id == req.id).order_by(draw.c.round))).all()
    lines: list[dict] = []
    for group in contacts.GROUPS:
        placed = [c for c in cands if c.group == group]
        lines += [{"supervisor_id": c.supervisor_id, "group": group, "position": c.position, "round": c.round,
                   "draw_id": c.draw_id, "status": c.status} for c in placed]
        # the round people of this group are let in from (fill_window's source): the newest that drew for it
        source = next((d for d in reversed(draws) if (d.need or {}).get(group, 0) > 0), None)
        if source is None:
            continue
        order = requests.unpack(source.receipt)["order"].get(group, [])
        used = sum(1 for c in placed if c.draw_id == source.id)
        position = len(placed)
        for sid in order[used:]:
            position += 1
            lines.append({"supervisor_id": uuid.UUID(sid), "group": group, "position": position,
                          "round": source.round, "draw_id": source.id, "status": "queued"})
    people = {p.id: p for p in (await session.execute(
        select(supervisor.c.id, supervisor.c.name, supervisor.c.district)
        .where(supervisor.c.id.in_([x["supervisor_id"] for x in lines]))))}
    phones, phones_ok = await _masked_phones(
        masked_lookup, [x["supervisor_id"] for x in lines if x["status"] in (*CALLABLE, "queued")])
    pending = [x for x in lines if x["status"] == "pending"]
    # next to call: the earliest in draw order still waiting for a call (local before cross on a tie)
    nxt = min(pending, key=lambda x: (x["position"], contacts.GROUPS.index(x["group"])), default=None)
    by_group = {g: next((x for x in pending if x["group"] == g), None) for g in contacts.GROUPS}
    items = []
    for x in lines:
        person = people.get(x["supervisor_id"])
        items.append({
            "supervisor_id": str(x["supervisor_id"]), "name": person.name if person else None,
            "district": person.district if person else None, "group": x["group"],
            "group_label": GROUP_LABELS[x["group"]], "draw_order": x["position"], "round": x["round"],
            "draw_id": str(x["draw_id"]), "status": x["status"],
            "status_label": CALL_STATUS_LABELS.get(x["status"], x["status"]),
            "phone_masked": phones.get(x["supervisor_id"]), "next": x is nxt,
            "can_reveal_phone": x["status"] in CALLABLE})

    def ref(x):
        return None if x is None else {"supervisor_id": str(x["supervisor_id"]), "group": x["group"],
                                       "draw_order": x["position"]}

    return {"request_id": str(req.id), "status": req.status, "district": req.district,
            "starts_at": req.starts_at.isoformat(), "seats": {"local": req.seats_local, "cross": req.seats_cross},
            "confirmed": sum(1 for x in lines if x["status"] == "confirmed"), "shortfall": req.shortfall or {},
            "next_to_call": ref(nxt), "next_by_group": {g: ref(x) for g, x in by_group.items()},
            "phones_available": phones_ok, "items": items}


async def reveal_phone(session: AsyncSession, *, platform: PlatformTables, req, supervisor_id: uuid.UUID,
                       actor: str, own_district: str | None, contact_lookup: ContactLookup | None) -> dict:
    """The full phone of someone the clerk is to call (R12.1), from the registry; the read is audited (R3.1).

    Only for a person in the window or on the roster (the order is kept: nobody's phone before their turn);
    a district bureau (`own_district`) only for people of its district (R2.1).
    """
    if req.status in ("refused", "cancelled"):
        raise Conflict("request_closed", "该申请已结束", f"该申请的状态为{req.status}，无需联络。")
    cand = await _candidate(session, req.id, supervisor_id)
    if cand is None or cand.status not in CALLABLE:
        raise Conflict("R12.1", "尚未轮到联络该人民监督员",
                       "只能查看按抽选顺序已轮到（待联络）或已确认参加的人民监督员的完整电话。")
    person = (await session.execute(select(supervisor.c.name, supervisor.c.district)
                                    .where(supervisor.c.id == supervisor_id))).one_or_none()
    if own_district is not None and (person is None or person.district != own_district):
        raise ProblemError(403, "R2.1", "超出本辖区范围",
                           "依据规则 R2.1，区市司法局只能联络本辖区的人民监督员；跨区市人员由市司法局联络。")
    contact = await contact_lookup(supervisor_id) if contact_lookup else None
    if not contact or not contact.get("phone"):
        raise ProblemError(503, "upstream_unavailable", "无法获取联系方式", "人民监督员信息库未返回联系方式。")
    await audit.append(session, platform.audit, actor=actor, action="supervisor.read_contact",
                       subject=f"supervisor:{supervisor_id}",
                       details={"fields": ["phone"], "request_id": str(req.id), "purpose": "R12.1"})
    return {"supervisor_id": str(supervisor_id), "name": person.name if person else contact.get("name"),
            "phone": contact["phone"], "status": cand.status, "group": cand.group, "draw_order": cand.position}

"""Use cases of a request: accept or refuse (R10, R44.1), the commit–reveal protocol and the draw (R11), fill the
contact window, re-draw (R14.1), cancel.

The protocol (DRAW.md "Protocol", `people-supervisor-draw/4`), for whoever audits a draw:
1. request: casework's `SupervisionRequested` carries the procuratorate's commitment sha256(n_P) and
   casework's server time; a bureau user may record a paper or phone request (`POST /requests`), stating
   when it was received (a claim in the audit log), and then there is no procuratorate nonce;
2. acceptance (once per request; the lead time passed, or a bureau user granted short notice): the
   bureau's nonce n_B is generated, the pool snapshot and the round-1 params (exclusions included) are
   frozen, and {commitment, snapshot hash, params hash, beacon named or null} is appended to the chain
   and published as `SupervisionAccepted`; nothing about n_B leaves the service but its hash;
3. reveal: `DrawNonceRevealed` from casework; a nonce that does not match its commitment is refused;
4. draw: once n_P is revealed (or `DRAW_REVEAL_TIMEOUT` passed: then without it, and the receipt says
   why) and the beacon's value, if one was named, was entered by a bureau user. The receipt reveals
   n_B and is appended to the chain; `DrawCompleted` tells casework where to fetch it;
5. contact in draw order (contact/service.py); an exhausted list draws round + 1 over the current pool,
   excluding everyone tried (R14.1); a cancellation (`SupervisionCancelled`) frees bookings and stays in
   the chain. One live request per activity: a second needs the first refused or cancelled.
"""

import json
import secrets
import uuid
import zlib
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Text, any_, cast, exists, func, literal, select, tuple_, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.selection.config import SelectionSettings
from services.selection.draw import algorithm, contacts
from services.selection.models import (
    booking,
    candidate,
    chain_entry,
    contact_log,
    declared_relation,
    draw,
    platform,
    recusal,
    request,
    supervisor,
)
from services.selection.pool import snapshot as pool_snapshot
from services.selection.requests.rules import split_seats
from shared import audit, clock
from shared.calendar import WorkingCalendar
from shared.clock import local_date, local_midnight
from shared.db import raw
from shared.errors import Conflict, NotFound, Unprocessable
from shared.events.contracts import (
    Beacon,
    DrawCompleted,
    LeadTimeConsent,
    SupervisionAccepted,
    SupervisionRequestRefused,
    SupervisorAsked,
)
from shared.events.outbox import Outbox
from shared.lead_time import check_lead_time

CHAIN_LOCK = 0x5E1EC7  # pg_advisory_xact_lock key of the one chain (and of pool refreshes)


async def take_chain_lock(session: AsyncSession) -> None:
    """The one lock order of selection: CHAIN_LOCK first, then an activity's lock, then request rows, then a
    person's booking lock. Every transaction that may change a request takes it before any row: a consumer
    batch changes several requests in one transaction (and may draw on one of them), so a request row locked
    before the chain lock deadlocked against it (a 500 on PUT /requests/{id}/beacon). Re-entrant within a
    transaction; draws and acceptances were serialized on it already, contact outcomes are human-paced."""
    await session.execute(select(func.pg_advisory_xact_lock(CHAIN_LOCK)))


NOT_REVEALED = "not revealed"
REVEAL_MISMATCH = "reveal did not match"
RECORDED_BY_BUREAU = "recorded by the bureau"
LIVE = ("awaiting_consent", "accepted", "drawn", "staffed")

# Who this request must not draw, with why (in the params, before the seed exists). $1 request id,
# $2 conflict parties (JSON array text), $3 starts_at, $4 ends_at, $5 the activity's date (R4.1).
EXCLUSIONS_SQL = """
SELECT supervisor_id::text AS id, 'tried' AS reason FROM selection.candidate WHERE request_id = $1
UNION ALL
SELECT supervisor_id::text, 'recused' FROM selection.recusal WHERE request_id = $1 AND status = 'granted'
UNION ALL
SELECT supervisor_id::text, 'conflict' FROM selection.declared_relation
WHERE jsonb_exists($2::text::jsonb, party_name)
UNION ALL
SELECT supervisor_id::text, 'booked' FROM selection.booking
WHERE active AND request_id <> $1 AND starts_at < $4 AND ends_at > $3
UNION ALL
SELECT id::text, 'out_of_term' FROM selection.supervisor
WHERE eligible AND NOT dismissed AND (term_end < $5::date OR term_start > $5::date)
"""


def utcnow() -> datetime:
    """The server clock (`shared.clock`: tests may freeze it)."""
    return clock.now()


def pack(receipt: dict) -> bytes:
    """zlib(canonical receipt); the pool buckets it names are stored once, in pool_blob."""
    return zlib.compress(algorithm.canonical({k: v for k, v in receipt.items() if k != "buckets"}), 1)


def unpack(blob: bytes) -> dict:
    return json.loads(zlib.decompress(blob))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


# --- the request: accept, wait for consent, or refuse (R10.1, R10.2, R44.1) --------------------------

async def submit(session: AsyncSession, *, outbox: Outbox, calendar: WorkingCalendar,
                 settings: SelectionSettings, data: dict[str, Any], via: str, actor: str,
                 received_at: datetime | None = None) -> tuple[Any, bool]:
    """Record a request (replay-safe on request_id), then refuse it, wait for consent, or accept it.

    `via="event"`: casework's request; its requested_at is casework's server clock (never later than
    ours). `via="http"`: a bureau user records a paper or phone request; the notification time is our
    clock, or the earlier `received_at` the user states (R10.1: a recorded claim, in the audit log).
    """
    existing = await get(session, data["request_id"])
    if existing is not None:  # a replay: the first one stands
        return existing, False
    starts_at, ends_at = data["starts_at"], data["ends_at"]
    if ends_at <= starts_at:
        raise Unprocessable("invalid_window", "活动时间无效", "活动结束时间应晚于开始时间。")
    try:
        activity_on = local_date(starts_at)
    except ValueError as exc:
        raise Unprocessable("date_out_of_range", "日期超出范围", "活动时间超出可受理的范围。") from exc
    now = utcnow()
    claim = None
    if via == "event":
        requested_at = min(data["requested_at"], now)
    elif received_at is not None:
        if received_at > now or received_at < now - timedelta(days=settings.received_claim_max_days):
            raise Unprocessable("R10.1", "收到时间不可信",
                                f"所述收到时间应不晚于现在，且不早于{settings.received_claim_max_days}天前。")
        requested_at = received_at
        claim = {"at": _iso(received_at), "by": actor, "recorded_at": _iso(now)}
    else:
        requested_at = now
    # one live request per activity (the unique index uq_request_live_activity is the backstop)
    await take_chain_lock(session)  # before the activity's lock (the lock order above)
    await session.execute(select(func.pg_advisory_xact_lock(_activity_lock(data["activity_id"]))))
    existing = await get(session, data["request_id"])
    if existing is not None:  # a concurrent replay committed while we waited for the lock
        return existing, False
    live = await session.scalar(select(request.c.id).where(
        request.c.activity_id == data["activity_id"], request.c.status.in_(LIVE)))
    short_notice = data.get("short_notice")
    decision = check_lead_time(calendar, notified_on=local_date(requested_at), activity_on=activity_on,
                               short_notice=short_notice is not None, max_days_ahead=settings.max_days_ahead)
    code, detail, earliest = decision.code, decision.detail, decision.earliest_allowed_date
    if live is not None:
        if via == "http":
            raise Conflict("request_exists", "该活动已有进行中的申请",
                           "同一活动只能有一个进行中的申请；如需重新申请，应先撤回原申请。", request_id=str(live))
        code, detail, earliest = "request_exists", f"该活动已有进行中的申请{live}；应先撤回原申请。", None
    specialty = data.get("specialty") or None
    if not code and specialty is not None and not await _specialty_known(session, specialty):
        # R11.2: a specialty nobody on the roster has is refused at once, not drawn into a silent shortfall
        detail = f"名册中没有具有“{specialty}”专业背景的人民监督员，无法按该专业抽选；请核对专业名称。"
        if via == "http":
            raise Unprocessable("R11.2", "未知的专业背景", detail, specialty=specialty)
        code, earliest = "R11.2", None
    status = "refused" if code else "awaiting_consent" if decision.needs_consent else "accepted"
    seats_local, seats_cross = split_seats(data["seats"], settings.local_share)
    row = (await session.execute(insert(request).values(
        id=data["request_id"], activity_id=data["activity_id"], case_ref=data["case_ref"],
        activity_type=data["activity_type"], office=data["office"], district=data["district"],
        starts_at=starts_at, ends_at=ends_at, year=activity_on.year, place=data["place"],
        seats=data["seats"], seats_local=seats_local, seats_cross=seats_cross,
        specialty=specialty,
        conflict_parties=sorted({p.strip() for p in data.get("conflict_parties") or [] if p.strip()}),
        requested_at=requested_at, received_claim=claim,
        short_notice=None if short_notice is None else dict(short_notice),
        procuratorate_commitment=data.get("procuratorate_commitment"),
        balance_mode=settings.balance_mode, status=status, refusal_code=code,
        refusal_detail=detail if code else None, earliest_allowed_date=earliest if code else None,
        calendar_provisional=decision.provisional, via=via,
    ).on_conflict_do_nothing(index_elements=["id"]).returning(*request.c))).one_or_none()
    if row is None:  # a concurrent replay won the race
        return await get(session, data["request_id"]), False
    if claim is not None:
        await audit.append(session, platform.audit, actor=actor, action="request.received_claim",
                           subject=str(row.id), details=claim)
    if code:
        await outbox.add(session, SupervisionRequestRefused(
            request_id=row.id, code=code, earliest_allowed_date=earliest, detail=detail))
    elif status == "accepted":
        await accept(session, outbox=outbox, settings=settings, req=row)
    return await get(session, row.id), True


async def _specialty_known(session: AsyncSession, specialty: str) -> bool:
    """Whether anyone in the pool (eligible or not) has this specialty (R11.2)."""
    return bool(await session.scalar(select(exists().where(literal(specialty) == any_(supervisor.c.specialties)))))


def _activity_lock(activity_id) -> int:
    return zlib.crc32(f"selection:activity:{activity_id}".encode())


async def get(session: AsyncSession, request_id: uuid.UUID, *, lock: bool = False):
    stmt = select(request).where(request.c.id == request_id)
    if lock:
        await take_chain_lock(session)  # before the row (the lock order above)
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).one_or_none()


async def require(session: AsyncSession, request_id: uuid.UUID, *, lock: bool = False):
    row = await get(session, request_id, lock=lock)
    if row is None:
        raise NotFound("抽选申请", request_id)
    return row


async def decide_short_notice(session: AsyncSession, *, outbox: Outbox, settings: SelectionSettings,
                              request_id: uuid.UUID, granted: bool, reason: str, actor: str) -> Any:
    """R10.2: a bureau user (never the requester) grants or refuses short notice: who, when, why."""
    req = await require(session, request_id, lock=True)
    if req.status != "awaiting_consent":
        raise Conflict("R10.2", "该申请不在待同意状态", f"该申请的状态为{req.status}。")
    if granted and utcnow() >= req.starts_at:  # refusing is always possible: the request never stays waiting
        raise Conflict("activity_started", "活动已开始", "活动开始后不能再同意缩短通知期限，只能不同意。")
    decision = {"granted": granted, "by": actor, "at": _iso(utcnow()), "reason": reason}
    await session.execute(update(request).where(request.c.id == req.id).values(short_notice_decision=decision))
    await audit.append(session, platform.audit, actor=actor, action="request.short_notice_decided",
                       subject=str(req.id), details={"granted": granted})
    if granted:
        await accept(session, outbox=outbox, settings=settings, req=await require(session, req.id))
    else:
        detail = f"市司法局不同意缩短通知期限（R10.2）：{reason}"
        await session.execute(update(request).where(request.c.id == req.id).values(
            status="refused", refusal_code="R10.2", refusal_detail=detail))
        await outbox.add(session, SupervisionRequestRefused(request_id=req.id, code="R10.2",
                                                            earliest_allowed_date=None, detail=detail))
    return await require(session, req.id)


# --- the chain of acceptances, draws and cancellations ----------------------------------------------

async def chain_head(session: AsyncSession) -> tuple[int, str]:
    """(next seq, hash of the newest entry), under CHAIN_LOCK."""
    await take_chain_lock(session)
    last = (await session.execute(select(chain_entry.c.seq, chain_entry.c.hash)
                                  .order_by(chain_entry.c.seq.desc()).limit(1))).one_or_none()
    return (last.seq + 1, last.hash) if last else (1, algorithm.GENESIS_HASH)


async def append_chain(session: AsyncSession, *, kind: str, request_id: uuid.UUID, body: dict) -> dict:
    """Append an acceptance or cancellation: its hash is H(body), the body names prev_hash."""
    seq, prev = await chain_head(session)
    body = {**body, "kind": kind, "request_id": str(request_id), "seq": seq, "prev_hash": prev}
    digest = algorithm.H(body)
    await session.execute(chain_entry.insert().values(seq=seq, kind=kind, request_id=request_id, hash=digest,
                                                      prev_hash=prev, body=body))
    return {**body, "hash": digest}


# --- acceptance (DRAW.md protocol step 2) -----------------------------------------------------------

async def round_params(session: AsyncSession, *, settings: SelectionSettings, req, need: dict[str, int],
                       position_base: dict[str, int]) -> dict:
    """The params of a round: the request, the bureau's policy, and who must not be drawn and why."""
    excluded: dict[str, set[str]] = {}
    activity_on = local_date(req.starts_at)
    for row in await raw.fetch(session, EXCLUSIONS_SQL, req.id, algorithm.canonical(list(req.conflict_parties))
                               .decode(), req.starts_at, req.ends_at, activity_on):
        excluded.setdefault(row["id"], set()).add(row["reason"])
    return {
        "request_id": str(req.id), "activity_id": str(req.activity_id), "district": req.district,
        "specialty": req.specialty, "activity_date": activity_on.isoformat(), "year": req.year,
        "window": {"starts_at": _iso(req.starts_at), "ends_at": _iso(req.ends_at)},
        "seats": {"local": req.seats_local, "cross": req.seats_cross}, "need": need,
        "position_base": position_base, "alternates": settings.draw_alternates,
        "balance_mode": req.balance_mode, "weight_base": settings.weight_base, "yearly_cap": settings.yearly_cap,
        "contact_rules": {"channels": list(contacts.CHANNELS),
                          "unreachable_min_attempts": settings.unreachable_min_attempts,
                          "unreachable_min_gap_seconds": settings.unreachable_min_gap_seconds},
        "excluded": {sid: sorted(reasons) for sid, reasons in excluded.items()},
    }


async def accept(session: AsyncSession, *, outbox: Outbox, settings: SelectionSettings, req) -> None:
    """Step 2: n_B, frozen snapshot and params, beacon named; in the chain and as SupervisionAccepted."""
    await record_conflicts(session, req=req)
    _, head = await chain_head(session)
    pool = await pool_snapshot.snapshot_for(session, year=req.year, current_year=local_date(utcnow()).year,
                                            chain_head=head)
    params = await round_params(session, settings=settings, req=req,
                                need={"local": req.seats_local, "cross": req.seats_cross},
                                position_base={"local": 0, "cross": 0})
    nonce, accepted_at = secrets.token_hex(32), utcnow()
    # one party alone (a request the bureau recorded) never supplies all the entropy: a beacon is named
    beacon = None
    if req.procuratorate_commitment is None or settings.beacon_enabled:
        day = local_date(accepted_at).isoformat()
        beacon = {"source": settings.beacon_source, "round": f"{day}（北京时间）之后首次公布的结果"}
    decision = req.short_notice_decision
    consent = {"by": decision["by"], "at": decision["at"], "reason": decision["reason"]} if decision else None
    values = dict(
        status="accepted", bureau_nonce=nonce, bureau_commitment=algorithm.commitment(nonce),
        accepted_at=accepted_at, snapshot=pool.snapshot, params=params, snapshot_hash=algorithm.H(pool.snapshot),
        params_hash=algorithm.H(params), beacon=beacon,
        reveal_deadline=(accepted_at + timedelta(seconds=settings.draw_reveal_timeout_seconds)
                         if req.procuratorate_commitment else None),
        procuratorate_nonce_reason=None if req.procuratorate_commitment else RECORDED_BY_BUREAU,
    )
    await session.execute(update(request).where(request.c.id == req.id).values(**values))
    await append_chain(session, kind="acceptance", request_id=req.id, body={
        "accepted_at": _iso(accepted_at), "activity_id": str(req.activity_id),
        "bureau_commitment": values["bureau_commitment"], "procuratorate_commitment": req.procuratorate_commitment,
        "snapshot_hash": values["snapshot_hash"], "params_hash": values["params_hash"], "beacon": beacon,
        "short_notice_consent": consent})
    await outbox.add(session, SupervisionAccepted(
        request_id=req.id, accepted_at=accepted_at, bureau_commitment=values["bureau_commitment"],
        snapshot_hash=values["snapshot_hash"], params_hash=values["params_hash"],
        beacon=Beacon(**beacon) if beacon else None,
        short_notice_consent=LeadTimeConsent(**consent) if consent else None))


# --- reveal, beacon, timeout (steps 3 and 4) --------------------------------------------------------

async def on_revealed(session: AsyncSession, *, outbox: Outbox, settings: SelectionSettings,
                      request_id: uuid.UUID, nonce: str) -> bool:
    """Step 3: take n_P if it matches the commitment, then draw if nothing else is awaited."""
    req = await get(session, request_id, lock=True)
    if req is None or req.status != "accepted" or req.procuratorate_nonce is not None \
            or req.procuratorate_commitment is None:
        return False
    if algorithm.commitment(nonce) != req.procuratorate_commitment:
        await session.execute(update(request).where(request.c.id == req.id).values(
            procuratorate_nonce_reason=REVEAL_MISMATCH))
        await audit.append(session, platform.audit, actor="procuratorate", action="draw.reveal_refused",
                           subject=str(req.id), details={"reason": REVEAL_MISMATCH})
        return False
    await session.execute(update(request).where(request.c.id == req.id).values(
        procuratorate_nonce=nonce, procuratorate_nonce_reason=None))
    return await try_draw(session, outbox=outbox, settings=settings, request_id=req.id)


async def enter_beacon(session: AsyncSession, *, outbox: Outbox, settings: SelectionSettings,
                       request_id: uuid.UUID, value: str, actor: str) -> Any:
    """A bureau user enters the value of the beacon named at acceptance (once; audited), then the draw."""
    req = await require(session, request_id, lock=True)
    if req.beacon is None:
        raise Conflict("no_beacon", "该申请未指定公开随机源", "受理时未指定公开随机源，无需录入。")
    if req.beacon.get("value") is not None or req.status != "accepted":
        raise Conflict("beacon_entered", "公开随机源已录入", "公开随机源的值只能录入一次，且只能在抽选前录入。")
    beacon = {**req.beacon, "value": value, "entered_by": actor, "entered_at": _iso(utcnow())}
    await session.execute(update(request).where(request.c.id == req.id).values(beacon=beacon))
    await audit.append(session, platform.audit, actor=actor, action="draw.beacon_entered", subject=str(req.id),
                       details={"source": beacon["source"], "round": beacon["round"], "value": value})
    await try_draw(session, outbox=outbox, settings=settings, request_id=req.id)
    return await require(session, req.id)


DUE_SQL = """
SELECT id FROM selection.request
WHERE status = 'accepted' AND procuratorate_nonce IS NULL AND reveal_deadline < now()
  AND (beacon IS NULL OR beacon = 'null'::jsonb OR beacon ? 'value')  -- SQLAlchemy stores None as JSON null
ORDER BY reveal_deadline LIMIT 20 FOR UPDATE SKIP LOCKED
"""


async def draw_overdue(session: AsyncSession, *, outbox: Outbox, settings: SelectionSettings) -> int:
    """Step 4's timeout: requests whose reveal did not come in time are drawn without it (replica-safe)."""
    ids = [row["id"] for row in await raw.fetch(session, DUE_SQL)]
    drawn = 0
    for request_id in ids:
        drawn += await try_draw(session, outbox=outbox, settings=settings, request_id=request_id)
    return drawn


async def try_draw(session: AsyncSession, *, outbox: Outbox, settings: SelectionSettings,
                   request_id: uuid.UUID) -> bool:
    """Step 4: draw round 1 once n_P is in (or its time is up) and the beacon's value, if named, is entered."""
    req = await require(session, request_id, lock=True)
    if req.status != "accepted" or (req.beacon is not None and req.beacon.get("value") is None):
        return False
    reason = None
    if req.procuratorate_nonce is None:
        if req.procuratorate_commitment is not None and utcnow() < req.reveal_deadline:
            return False
        reason = req.procuratorate_nonce_reason or NOT_REVEALED
    pool = await pool_snapshot.frozen(session, req.snapshot)
    receipt = await run_draw(session, req=req, round_no=1, pool=pool, params=req.params,
                             procuratorate_nonce_reason=reason)
    await session.execute(update(request).where(request.c.id == req.id).values(status="drawn"))
    draw_id, order, need = uuid.UUID(receipt["draw_id"]), receipt["order"], req.params["need"]
    if all(len(order[g]) >= need[g] for g in algorithm.GROUPS):
        # the usual case, in one statement: the first seats of each group enter the window (R12.1);
        # nobody in this order can be recused or tried: the params excluded them at acceptance
        rows = [dict(request_id=req.id, supervisor_id=uuid.UUID(sid), draw_id=draw_id, round=1, group=g,
                     position=position, status="pending")
                for g in algorithm.GROUPS for position, sid in enumerate(order[g][:need[g]], start=1)]
        await session.execute(candidate.insert(), rows)
        await ask(session, outbox, rows)
    else:
        orders = {draw_id: order}
        for group in algorithm.GROUPS:  # a group short of people: the general path re-draws, then reports
            await fill_window(session, outbox=outbox, settings=settings, req=req, group=group, orders=orders,
                              announce=False)
    await announce_draw(session, outbox=outbox, request_id=req.id, receipt=receipt)
    return True


async def announce_draw(session: AsyncSession, *, outbox: Outbox, request_id: uuid.UUID, receipt: dict) -> None:
    """DrawCompleted: casework fetches and checks the receipt; shortfall as it stands after the round."""
    shortfall = await session.scalar(select(request.c.shortfall).where(request.c.id == request_id))
    await outbox.add(session, DrawCompleted(
        request_id=request_id, draw_id=uuid.UUID(receipt["draw_id"]), round=receipt["round"],
        receipt_hash=receipt["receipt_hash"], procuratorate_nonce_used=receipt["nonces"]["procuratorate"] is not None,
        shortfall=shortfall or {}))


async def run_draw(session: AsyncSession, *, req, round_no: int, pool: pool_snapshot.Pool, params: dict,
                   procuratorate_nonce_reason: str | None) -> dict:
    """Pool + params + the entropy → pure draw → stored receipt, appended to the chain."""
    seq, prev_hash = await chain_head(session)
    draw_id = uuid.uuid4()
    receipt = algorithm.build_receipt(
        draw_id=str(draw_id), request_id=str(req.id), round_no=round_no, snapshot=pool.snapshot,
        buckets=pool.buckets, columns=pool.columns, params=params, accepted_at=_iso(req.accepted_at),
        commitments={"bureau": req.bureau_commitment, "procuratorate": req.procuratorate_commitment},
        bureau_nonce=req.bureau_nonce, procuratorate_nonce=req.procuratorate_nonce,
        procuratorate_nonce_reason=procuratorate_nonce_reason,
        beacon=None if req.beacon is None else {k: req.beacon[k] for k in ("source", "round", "value")},
        prev_receipt_hash=prev_hash, drawn_at=_iso(utcnow()),
    )
    await session.execute(draw.insert().values(
        id=draw_id, request_id=req.id, round=round_no, chain_seq=seq, receipt=pack(receipt),
        receipt_hash=receipt["receipt_hash"], prev_receipt_hash=prev_hash, need=params["need"],
    ))
    await session.execute(chain_entry.insert().values(
        seq=seq, kind="draw", request_id=req.id, draw_id=draw_id, hash=receipt["receipt_hash"], prev_hash=prev_hash,
        body={"draw_id": str(draw_id), "round": round_no, "receipt_hash": receipt["receipt_hash"]}))
    return receipt


async def load_receipt(session: AsyncSession, draw_id: uuid.UUID) -> tuple[Any, dict]:
    row = (await session.execute(select(draw).where(draw.c.id == draw_id))).one_or_none()
    if row is None:
        raise NotFound("抽选记录", draw_id)
    return row, unpack(row.receipt)


async def append_contact(session: AsyncSession, *, draw_id: uuid.UUID, entry: dict, reason: str | None,
                         actor: str | None = None, attempts: list[dict] | None = None) -> dict:
    """Append an entry to a draw's hash-chained contact log (callers hold the request lock)."""
    last = (await session.execute(
        select(contact_log.c.seq, contact_log.c.hash).where(contact_log.c.draw_id == draw_id)
        .order_by(contact_log.c.seq.desc()).limit(1)
    )).one_or_none()
    if last is None:
        prev_hash = await session.scalar(select(draw.c.receipt_hash).where(draw.c.id == draw_id))
        seq = 1
    else:
        prev_hash, seq = last.hash, last.seq + 1
    entry = {**entry, "seq": seq, "at": _iso(utcnow()), "prev_hash": prev_hash, "attempts": attempts or [],
             "reason_sha256": algorithm.sha256_hex(reason.encode()) if reason else None}
    entry["hash"] = algorithm.contact_entry_hash(entry)
    await session.execute(contact_log.insert().values(draw_id=draw_id, seq=seq, entry=entry, reason=reason,
                                                      hash=entry["hash"], actor=actor))
    return entry


async def contact_log_head(session: AsyncSession, request_id: uuid.UUID) -> str | None:
    """Hash of the newest contact-log entry of the request's newest draw (carried by roster events)."""
    return await session.scalar(
        select(contact_log.c.hash).join(draw, draw.c.id == contact_log.c.draw_id)
        .where(draw.c.request_id == request_id).order_by(draw.c.round.desc(), contact_log.c.seq.desc()).limit(1))


async def _skip_status(session: AsyncSession, req, ahead: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Who must be skipped when reached: recused (R13), dismissed (R9.1), no longer drawable on the day."""
    skip = {sid: "recused" for sid in (await session.scalars(select(recusal.c.supervisor_id).where(
        recusal.c.request_id == req.id, recusal.c.status == "granted", recusal.c.supervisor_id.in_(ahead)))).all()}
    day = local_date(req.starts_at)
    for person in (await session.execute(select(supervisor).where(supervisor.c.id.in_(ahead)))).all():
        if person.id in skip:
            continue
        if person.dismissed:
            skip[person.id] = "dismissed"
        elif not person.eligible or (person.term_end and person.term_end < day) \
                or (person.term_start and person.term_start > day):
            skip[person.id] = "ineligible"
    return skip


async def ask(session: AsyncSession, outbox: Outbox, rows: list[dict]) -> None:
    """R12.1: everyone who entered the window is asked whether they can take part (SupervisorAsked, ids only):
    the person hears it in the inbox and by SMS before, or beside, the clerk's call."""
    at = utcnow()
    for row in rows:
        await outbox.add(session, SupervisorAsked(
            request_id=row["request_id"], draw_id=row["draw_id"], supervisor_id=row["supervisor_id"],
            group=row["group"], draw_order=row["position"], asked_at=at))


async def fill_window(session: AsyncSession, *, outbox: Outbox, settings: SelectionSettings, req, group: str,
                      orders: dict | None = None, announce: bool = True) -> list[uuid.UUID]:
    """Let the next ones in draw order in until pending covers the open seats (R12.1, R14.1, R14.2).

    Returns the supervisors who entered the window. Callers hold the request row lock. A round drawn
    here is announced (DrawCompleted) unless the caller announces it.
    """
    seats = req.seats_local if group == "local" else req.seats_cross
    entered: list[uuid.UUID] = []
    short = 0
    new_round: dict | None = None
    orders = {} if orders is None else orders  # draw id -> order per group (parsed once)
    while True:
        stats = (await session.execute(
            select(candidate.c.status, candidate.c.draw_id, func.count().label("n")).where(
                candidate.c.request_id == req.id, candidate.c.group == group
            ).group_by(candidate.c.status, candidate.c.draw_id)
        )).all()
        want = seats - sum(s.n for s in stats if s.status in ("confirmed", "pending"))
        if want <= 0:
            break
        source = (await session.execute(
            select(draw.c.id, draw.c.round).where(
                draw.c.request_id == req.id, draw.c.need[group].as_integer() > 0
            ).order_by(draw.c.round.desc()).limit(1)
        )).one_or_none()
        if source is not None and source.id not in orders:
            blob = await session.scalar(select(draw.c.receipt).where(draw.c.id == source.id))
            orders[source.id] = unpack(blob)["order"]
        order = orders[source.id][group] if source else []
        used = sum(s.n for s in stats if s.draw_id == (source.id if source else None))
        if used >= len(order):
            if source is None or new_round is not None:
                short = want  # the pool itself cannot fill (R14.1)
                break
            # R14.1: one new round per attempt over the pool as it is now, excluding everyone tried;
            # if it brings nobody, the shortfall is reported
            latest_round = await session.scalar(select(func.max(draw.c.round)).where(draw.c.request_id == req.id))
            placed = dict((await session.execute(select(candidate.c.group, func.count()).where(
                candidate.c.request_id == req.id).group_by(candidate.c.group))).all())
            _, head = await chain_head(session)
            pool = await pool_snapshot.snapshot_for(session, year=req.year,
                                                    current_year=local_date(utcnow()).year, chain_head=head)
            params = await round_params(session, settings=settings, req=req,
                                        need={g: (want if g == group else 0) for g in algorithm.GROUPS},
                                        position_base={g: placed.get(g, 0) for g in algorithm.GROUPS})
            new_round = await run_draw(session, req=req, round_no=latest_round + 1, pool=pool, params=params,
                                       procuratorate_nonce_reason=None if req.procuratorate_nonce
                                       else req.procuratorate_nonce_reason or NOT_REVEALED)
            orders[uuid.UUID(new_round["draw_id"])] = new_round["order"]
            continue
        ahead = [uuid.UUID(sid) for sid in order[used:]]
        skip = await _skip_status(session, req, ahead)
        position = sum(s.n for s in stats)
        rows, skipped = [], []
        for sid in ahead:
            if want == 0:
                break
            position += 1
            # granted a recusal (R13), dismissed (R9.1) or no longer drawable on the activity's day, after
            # the draw and before this person was reached: skipped, in the log
            status = skip.get(sid, "pending")
            rows.append(dict(request_id=req.id, supervisor_id=sid, draw_id=source.id, round=source.round,
                             group=group, position=position, status=status))
            if status == "pending":
                entered.append(sid)
                want -= 1
            else:
                skipped.append((sid, position, status))
        await session.execute(candidate.insert(), rows)
        await ask(session, outbox, [r for r in rows if r["status"] == "pending"])
        for sid, position, status in skipped:
            await append_contact(session, draw_id=source.id, entry={
                "supervisor_id": str(sid), "group": group, "position": position,
                "outcome": status, "recorded_by": "system"}, reason=None, actor="system")
        if want == 0:
            break
    # req was read (locked) at the start of the caller's transaction, and each caller fills a
    # group once per transaction, so req.shortfall tells whether there is a stale entry to clear
    if short or group in (req.shortfall or {}):
        cleared = request.c.shortfall.op("-")(literal(group, Text))
        value = cleared.op("||")(func.jsonb_build_object(group, short)) if short else cleared
        await session.execute(update(request).where(request.c.id == req.id).values(shortfall=value))
    if new_round is not None and announce:
        await announce_draw(session, outbox=outbox, request_id=req.id, receipt=new_round)
    return entered


async def record_conflicts(session: AsyncSession, *, req) -> int:
    """Record as recused for this request everyone with a declared relation to a listed party (R13.1)."""
    if not req.conflict_parties:
        return 0
    ids = (await session.scalars(select(declared_relation.c.supervisor_id).distinct().where(
        declared_relation.c.party_name.in_(list(req.conflict_parties))))).all()
    for sid in ids:
        await session.execute(recusal.insert().values(
            id=uuid.uuid4(), request_id=req.id, supervisor_id=sid, source="conflict_list",
            ground="申报的关系与案件当事人名单相符", status="granted", requested_at=utcnow(),
            decided_by="system", decided_at=utcnow(), decision_reason="R13.1 conflict list",
        ))
    return len(ids)


# --- cancellation -------------------------------------------------------------------------------------

async def cancel(session: AsyncSession, *, request_id: uuid.UUID, reason: str, by: str,
                 at: datetime | None = None) -> bool:
    """A request withdrawn: bookings freed, the window and roster closed; its draws stay in the chain."""
    req = await get(session, request_id, lock=True)
    if req is None or req.status in ("refused", "cancelled"):
        return False
    at = at or utcnow()
    cancellation = {"reason": reason, "by": by, "at": _iso(at)}
    await session.execute(update(request).where(request.c.id == req.id).values(
        status="cancelled", cancellation=cancellation))
    await session.execute(update(booking).where(booking.c.request_id == req.id, booking.c.active).values(
        active=False, released_at=func.now()))
    open_ = (await session.execute(select(candidate).where(
        candidate.c.request_id == req.id, candidate.c.status.in_(("pending", "confirmed")))
        .order_by(candidate.c.group, candidate.c.position))).all()
    await session.execute(update(candidate).where(
        candidate.c.request_id == req.id, candidate.c.status.in_(("pending", "confirmed"))).values(
        status="cancelled", updated_at=func.now()))
    for cand in open_:
        await append_contact(session, draw_id=cand.draw_id, entry={
            "supervisor_id": str(cand.supervisor_id), "group": cand.group, "position": cand.position,
            "outcome": "cancelled", "recorded_by": "system"}, reason=reason, actor=by)
    receipts = (await session.scalars(select(draw.c.receipt_hash).where(draw.c.request_id == req.id)
                                      .order_by(draw.c.round))).all()
    await append_chain(session, kind="cancellation", request_id=req.id,
                       body={**cancellation, "receipts": list(receipts)})
    await audit.append(session, platform.audit, actor=by, action="request.cancelled", subject=str(req.id),
                       details={"draws": len(receipts)})
    return True


# --- views ----------------------------------------------------------------------------------------

async def view(session: AsyncSession, req) -> dict:
    """The request as the bureau and the procuratorate see it (no personal data, no secret nonce)."""
    draws = (await session.execute(select(draw.c.id, draw.c.round, draw.c.receipt_hash, draw.c.need)
                                   .where(draw.c.request_id == req.id).order_by(draw.c.round))).all()
    cands = (await session.execute(select(candidate).where(candidate.c.request_id == req.id)
                                   .order_by(candidate.c.group, candidate.c.position))).all()
    accepted = req.accepted_at is not None
    return {
        "request_id": str(req.id), "activity_id": str(req.activity_id), "status": req.status, "via": req.via,
        "district": req.district, "starts_at": req.starts_at.isoformat(), "ends_at": req.ends_at.isoformat(),
        "seats": req.seats, "seats_local": req.seats_local, "seats_cross": req.seats_cross,
        "specialty": req.specialty, "balance_mode": req.balance_mode,
        "requested_at": req.requested_at.isoformat(), "received_claim": req.received_claim,
        "short_notice": req.short_notice, "short_notice_decision": req.short_notice_decision,
        "calendar_provisional": req.calendar_provisional,
        "procuratorate_commitment": req.procuratorate_commitment,
        "acceptance": None if not accepted else {
            "accepted_at": req.accepted_at.isoformat(), "bureau_commitment": req.bureau_commitment,
            "snapshot_hash": req.snapshot_hash, "params_hash": req.params_hash,
            "reveal_deadline": req.reveal_deadline.isoformat() if req.reveal_deadline else None},
        "bureau_commitment": req.bureau_commitment,
        "procuratorate_nonce_revealed": req.procuratorate_nonce is not None,
        "procuratorate_nonce_reason": req.procuratorate_nonce_reason,
        "beacon": None if req.beacon is None else {
            k: req.beacon.get(k) for k in ("source", "round", "value", "entered_by", "entered_at")},
        "cancellation": req.cancellation,
        "refusal": None if req.status != "refused" else {
            "code": req.refusal_code, "detail": req.refusal_detail,
            "earliest_allowed_date": req.earliest_allowed_date.isoformat() if req.earliest_allowed_date else None},
        "shortfall": req.shortfall or {},
        "draws": [{"draw_id": str(d.id), "round": d.round, "receipt_hash": d.receipt_hash, "need": d.need}
                  for d in draws],
        "candidates": [{"supervisor_id": str(c.supervisor_id), "group": c.group, "position": c.position,
                        "round": c.round, "status": c.status} for c in cands],
        "roster": [str(c.supervisor_id) for c in cands if c.status == "confirmed"],
    }


async def chain(session: AsyncSession, *, after: int, limit: int) -> list[dict]:
    """Chain entries after a position, oldest first (auditors follow and re-hash the chain)."""
    rows = (await session.execute(select(chain_entry).where(chain_entry.c.seq > after)
                                  .order_by(chain_entry.c.seq).limit(limit))).all()
    return [{"seq": r.seq, "kind": r.kind, "request_id": str(r.request_id),
             "draw_id": str(r.draw_id) if r.draw_id else None, "hash": r.hash, "prev_hash": r.prev_hash,
             "body": r.body, "created_at": r.created_at.isoformat()} for r in rows]


# --- receipts and verification ---------------------------------------------------------------------

async def receipt_with_log(session: AsyncSession, draw_id: uuid.UUID) -> tuple[Any, dict]:
    """The stored receipt plus the draw's current contact log and the pool buckets it names."""
    row, receipt = await load_receipt(session, draw_id)
    entries = (await session.scalars(select(contact_log.c.entry).where(contact_log.c.draw_id == draw_id)
                                     .order_by(contact_log.c.seq))).all()
    receipt["contact_log"] = list(entries)
    receipt["buckets"] = await pool_snapshot.load_buckets(
        session, sorted(set(receipt["snapshot"]["buckets"].values())), as_stored=True)
    return row, receipt


async def verify_draw(session: AsyncSession, draw_id: uuid.UUID) -> dict:
    """Recompute everything: the receipt alone, plus what only the database can tell (chain, rows)."""
    row, receipt = await receipt_with_log(session, draw_id)
    result = algorithm.verify_receipt(receipt)
    checks = result["checks"]

    def check(name: str, ok: bool, detail: str = "") -> None:
        checks[name] = {"ok": bool(ok), "detail": detail}

    check("stored_hash", row.receipt_hash == receipt.get("receipt_hash")
          and row.prev_receipt_hash == receipt.get("prev_receipt_hash"))
    prev = await session.scalar(select(chain_entry.c.hash).where(chain_entry.c.seq < row.chain_seq)
                                .order_by(chain_entry.c.seq.desc()).limit(1))
    check("chain_link", (prev or algorithm.GENESIS_HASH) == row.prev_receipt_hash,
          f"chain position {row.chain_seq}")
    head = receipt.get("snapshot", {}).get("chain_head")
    head_seq = await session.scalar(select(chain_entry.c.seq).where(chain_entry.c.hash == head))
    check("snapshot_chain_head", head == algorithm.GENESIS_HASH or (head_seq is not None and head_seq < row.chain_seq),
          "the pool snapshot names a chain entry before this draw")
    req = await require(session, row.request_id)
    commitments = receipt.get("commitments", {})
    check("commitments_recorded_at_acceptance", req.bureau_commitment == commitments.get("bureau")
          and req.procuratorate_commitment == commitments.get("procuratorate"))
    if row.round == 1:
        check("inputs_frozen_at_acceptance", req.snapshot_hash == receipt.get("snapshot_hash")
              and req.params_hash == receipt.get("params_hash"))
    cands = (await session.execute(select(candidate.c.supervisor_id, candidate.c.group).where(
        candidate.c.draw_id == draw_id).order_by(candidate.c.position))).all()
    order = receipt.get("order", {})
    per_group = {g: [str(c.supervisor_id) for c in cands if c.group == g] for g in algorithm.GROUPS}
    follows = all(ids == order.get(g, [])[:len(ids)] for g, ids in per_group.items())
    check("candidates_follow_order", follows, f"{len(cands)} contacted")
    stored = (await session.execute(select(contact_log.c.entry, contact_log.c.hash).where(
        contact_log.c.draw_id == draw_id))).all()
    check("contact_log_rows", all(e.entry.get("hash") == e.hash for e in stored))
    result["ok"] = all(c["ok"] for c in checks.values())
    result["draw_id"] = str(draw_id)
    result["receipt_hash"] = row.receipt_hash
    return result


async def redraw(session: AsyncSession, *, outbox: Outbox, settings: SelectionSettings,
                 request_id: uuid.UUID) -> dict:
    """R14.1 on demand: fill the open seats again, drawing round + 1 where a group's list is exhausted."""
    req = await require(session, request_id, lock=True)
    if req.status not in ("drawn", "staffed"):
        raise Unprocessable("request_not_drawn", "该申请尚未抽选或已结束",
                            f"该申请的状态为{req.status}，不能重新抽选。")
    for group in algorithm.GROUPS:
        await fill_window(session, outbox=outbox, settings=settings, req=req, group=group)
    return await view(session, await require(session, request_id))


# --- the bureau's work list ---------------------------------------------------------------------------

STATUSES = ("awaiting_consent", "accepted", "drawn", "staffed", "refused", "cancelled")
STATUS_LABELS = {"awaiting_consent": "待决定是否同意缩短通知期限", "accepted": "已受理，待抽选",
                 "drawn": "已抽选，联络中", "staffed": "人员已确认", "refused": "不予受理", "cancelled": "已撤回"}
# sort name -> (column, descending); the id breaks ties, so the order is total and pages never overlap
SORTS = {"starts_at": (request.c.starts_at, False), "-starts_at": (request.c.starts_at, True),
         "requested_at": (request.c.requested_at, False), "-requested_at": (request.c.requested_at, True)}



def waiting_for(row) -> str | None:
    """What a request waits for, in the bureau's words: the step a work list is sorted into."""
    if row.status == "awaiting_consent":
        return "consent"  # R10.2: a bureau user decides
    if row.status == "accepted":
        if row.beacon is not None and row.beacon.get("value") is None:
            return "beacon"  # a bureau user enters the beacon's value
        return "reveal"  # the procuratorate's nonce, or its timeout; then the draw runs
    if row.status == "drawn":
        return "redraw" if row.shortfall else "contact"  # R14.1 / R12.1
    return None


async def list_requests(session: AsyncSession, *, statuses: list[str] | None, short_staffed: bool | None,
                        since: date | None, until: date | None, district: str | None, sort: str, limit: int,
                        after: list | None) -> tuple[list[dict], int, list | None]:
    """(page, total, sort key of the last row when more follow): filters on state, activity date, district."""
    where = []
    if statuses:
        where.append(request.c.status.in_(statuses))
    if short_staffed is not None:
        has_shortfall = request.c.shortfall.op("<>")(cast(literal("{}"), JSONB))
        where.append(has_shortfall if short_staffed else ~has_shortfall)
    if since is not None:
        where.append(request.c.starts_at >= local_midnight(since))
    if until is not None:
        where.append(request.c.starts_at < local_midnight(until + timedelta(days=1)))
    if district is not None:
        where.append(request.c.district == district)
    total = await session.scalar(select(func.count()).select_from(request).where(*where))
    column, descending = SORTS[sort]
    page_where = list(where)
    if after is not None:
        key = tuple_(column, request.c.id)
        page_where.append(key < tuple(after) if descending else key > tuple(after))
    counts = {status: select(func.count()).where(candidate.c.request_id == request.c.id,
                                                 candidate.c.status == status).scalar_subquery()
              for status in ("confirmed", "pending")}
    rows = (await session.execute(
        select(request.c.id, request.c.activity_id, request.c.status, request.c.district, request.c.office,
               request.c.activity_type, request.c.place, request.c.starts_at, request.c.ends_at, request.c.seats,
               request.c.specialty, request.c.requested_at, request.c.via, request.c.shortfall, request.c.beacon,
               request.c.refusal_code, counts["confirmed"].label("confirmed"), counts["pending"].label("pending"))
        .where(*page_where)
        .order_by(column.desc() if descending else column, request.c.id.desc() if descending else request.c.id)
        .limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = [{
        "request_id": str(r.id), "activity_id": str(r.activity_id), "status": r.status,
        "status_label": STATUS_LABELS.get(r.status, r.status), "waiting_for": waiting_for(r),
        "short_staffed": bool(r.shortfall), "shortfall": r.shortfall or {}, "district": r.district,
        "office": r.office, "activity_type": r.activity_type, "place": r.place,
        "starts_at": r.starts_at.isoformat(), "ends_at": r.ends_at.isoformat(), "seats": r.seats,
        "confirmed": r.confirmed, "pending": r.pending, "specialty": r.specialty,
        "requested_at": r.requested_at.isoformat(), "via": r.via, "refusal_code": r.refusal_code,
    } for r in rows]
    last = rows[-1] if more else None
    next_key = None if last is None else [getattr(last, column.name), last.id]
    return items, total, next_key

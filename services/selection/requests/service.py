"""Use cases of a request: accept or refuse (R10, R44.1), draw (R11), fill the contact window, re-draw (R14.1).

Sequence of a request (documented for whoever audits a draw):
1. accept: the request row is written with `bureau_commitment = sha256(bureau_nonce)` and status
   `accepted` (HTTP path: this transaction commits first, so the commitment is fixed before the draw).
2. draw: under a global advisory lock (the receipt chain), the pool of the activity's year is
   brought up to date (only the buckets changed since the last draw are rebuilt, pool/snapshot.py),
   one query lists who this request must not draw and why (tried, recused, conflict, booked), the
   pure algorithm orders each group's first need + alternates, and the receipt (revealing the
   nonce) is stored with its hash and the previous receipt's hash.
3. the first `seats[g]` of each group enter the contact window as `pending` candidates; every
   outcome that frees a seat lets the next one in order in (R12.1, R14.2); an exhausted list
   triggers round + 1 excluding everyone already tried (R14.1); a pool that cannot fill is
   recorded as `shortfall` (R14.1), never filled with anyone ineligible.
The event path (`SupervisionRequested`) runs 1 and 2 in the consumer's one transaction; the nonce
never leaves the process before the receipt, so nobody outside can see or choose it either way.
Honest limit: the bureau itself knows its nonce, so unpredictability *to the bureau* rests on the
procuratorate nonce and the public value named in advance.
"""

import json
import secrets
import uuid
import zlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Text, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.selection.config import SelectionSettings
from services.selection.draw import algorithm
from services.selection.models import (
    candidate,
    contact_log,
    declared_relation,
    draw,
    recusal,
    request,
    supervisor,
)
from services.selection.pool import snapshot as pool_snapshot
from services.selection.requests.rules import check_lead_time, local_date, split_seats
from shared.calendar import WorkingCalendar
from shared.db import raw
from shared.errors import NotFound, Unprocessable
from shared.events.contracts import SupervisionRequestRefused
from shared.events.outbox import Outbox

CHAIN_LOCK = 0x5E1EC7  # pg_advisory_xact_lock key of the global receipt chain

# Who this request must not draw, with why (algorithm v2 writes them in the params, before the
# seed exists). $1 request id, $2 conflict parties (JSON array text), $3 starts_at, $4 ends_at.
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
"""


def utcnow() -> datetime:
    return datetime.now(UTC)


def pack(receipt: dict) -> bytes:
    """zlib(canonical receipt); the pool buckets it names are stored once, in pool_blob."""
    return zlib.compress(algorithm.canonical({k: v for k, v in receipt.items() if k != "buckets"}), 1)


def unpack(blob: bytes, snapshot_blob: bytes | None = None) -> dict:
    """The stored receipt; a draw of algorithm v1 also had its whole snapshot stored beside it."""
    receipt = json.loads(zlib.decompress(blob))
    if snapshot_blob is not None:
        receipt["snapshot"] = json.loads(zlib.decompress(snapshot_blob))
    return receipt


# --- accept / refuse ------------------------------------------------------------------------------

async def submit(session: AsyncSession, *, outbox: Outbox, calendar: WorkingCalendar,
                 settings: SelectionSettings, data: dict[str, Any], via: str) -> tuple[Any, bool]:
    """Record a request (replay-safe on request_id); refused ones publish SupervisionRequestRefused."""
    starts_at, ends_at = data["starts_at"], data["ends_at"]
    if ends_at <= starts_at:
        raise Unprocessable("invalid_window", "活动时间无效", "活动结束时间应晚于开始时间。")
    decision = check_lead_time(calendar, requested_at=data["requested_at"], starts_at=starts_at,
                               consent=data.get("lead_time_consent") is not None)
    seats_local, seats_cross = split_seats(data["seats"], data.get("seats_local"), settings.local_share)
    nonce = secrets.token_hex(32)
    consent = data.get("lead_time_consent")
    values = dict(
        id=data["request_id"], activity_id=data["activity_id"], case_ref=data["case_ref"],
        activity_type=data["activity_type"], office=data["office"], district=data["district"],
        starts_at=starts_at, ends_at=ends_at, year=local_date(starts_at).year, place=data["place"],
        seats=data["seats"], seats_local=seats_local, seats_cross=seats_cross,
        specialty=data.get("specialty") or None,
        conflict_parties=sorted({p.strip() for p in data.get("conflict_parties") or [] if p.strip()}),
        requested_at=data["requested_at"],
        lead_time_consent=None if consent is None else {
            k: v.isoformat() if isinstance(v, datetime) else v for k, v in dict(consent).items()},
        procuratorate_nonce=data.get("procuratorate_nonce"),
        public_value=data.get("public_value") or settings.public_value,
        bureau_nonce=None if not decision.ok else nonce,
        bureau_commitment=None if not decision.ok else algorithm.commitment(nonce),
        balance_mode=data.get("balance_mode") or settings.balance_mode,
        status="accepted" if decision.ok else "refused",
        refusal_code=decision.code, refusal_detail=None if decision.ok else decision.detail,
        earliest_allowed_date=decision.earliest_allowed_date, calendar_provisional=decision.provisional,
        via=via,
    )
    row = (await session.execute(
        insert(request).values(**values).on_conflict_do_nothing(index_elements=["id"]).returning(*request.c)
    )).one_or_none()
    if row is None:  # a replay (or a concurrent one that won the race): the first one stands
        return await get(session, data["request_id"]), False
    if not decision.ok:
        await outbox.add(session, SupervisionRequestRefused(
            request_id=row.id, code=decision.code, earliest_allowed_date=decision.earliest_allowed_date,
            detail=decision.detail,
        ))
    return row, True


async def get(session: AsyncSession, request_id: uuid.UUID, *, lock: bool = False):
    stmt = select(request).where(request.c.id == request_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).one_or_none()


async def require(session: AsyncSession, request_id: uuid.UUID, *, lock: bool = False):
    row = await get(session, request_id, lock=lock)
    if row is None:
        raise NotFound("抽选申请", request_id)
    return row


# --- the draw -------------------------------------------------------------------------------------

async def draw_request(session: AsyncSession, *, settings: SelectionSettings, request_id: uuid.UUID) -> None:
    """Round 1 for an accepted request, then fill both contact windows (idempotent)."""
    req = await require(session, request_id, lock=True)
    if req.status != "accepted":
        return
    need = {"local": req.seats_local, "cross": req.seats_cross}
    await record_conflicts(session, req=req)
    receipt = await run_draw(session, settings=settings, req=req, round_no=1, need=need)
    await session.execute(update(request).where(request.c.id == req.id).values(status="drawn"))
    draw_id, order = uuid.UUID(receipt["draw_id"]), receipt["order"]
    if all(len(order[g]) >= need[g] for g in algorithm.GROUPS):
        # the usual case, in one statement: the first seats of each group enter the window (R12.1);
        # nobody in this order can be recused or tried: the draw excluded them, under the request lock
        await session.execute(candidate.insert(), [
            dict(request_id=req.id, supervisor_id=uuid.UUID(sid), draw_id=draw_id, round=1, group=g,
                 position=position, status="pending")
            for g in algorithm.GROUPS for position, sid in enumerate(order[g][:need[g]], start=1)])
        return
    orders = {draw_id: order}
    for group in algorithm.GROUPS:  # a group short of people: the general path re-draws, then reports
        await fill_window(session, settings=settings, req=req, group=group, orders=orders)


async def run_draw(session: AsyncSession, *, settings: SelectionSettings, req, round_no: int,
                   need: dict[str, int]) -> dict:
    """Pool snapshot + exclusions → pure draw → stored receipt, appended to the global receipt chain."""
    await session.execute(select(func.pg_advisory_xact_lock(CHAIN_LOCK)))
    last = (await session.execute(
        select(draw.c.receipt_hash, draw.c.chain_seq).order_by(draw.c.chain_seq.desc()).limit(1)
    )).one_or_none()
    prev_hash, seq = (last.receipt_hash, last.chain_seq + 1) if last else (algorithm.GENESIS_HASH, 1)
    pool = await pool_snapshot.snapshot_for(
        session, year=req.year, current_year=local_date(utcnow()).year, prev_receipt_hash=prev_hash)
    excluded: dict[str, set[str]] = {}
    for row in await raw.fetch(session, EXCLUSIONS_SQL, req.id,
                               algorithm.canonical(list(req.conflict_parties)).decode(), req.starts_at, req.ends_at):
        excluded.setdefault(row["id"], set()).add(row["reason"])
    params = {
        "request_id": str(req.id), "district": req.district, "specialty": req.specialty,
        "seats": {"local": req.seats_local, "cross": req.seats_cross}, "need": need,
        "alternates": settings.draw_alternates,
        "balance_mode": req.balance_mode, "weight_base": settings.weight_base,
        "yearly_cap": settings.yearly_cap, "year": req.year,
        "window": {"starts_at": req.starts_at.astimezone(UTC).isoformat(),
                   "ends_at": req.ends_at.astimezone(UTC).isoformat()},
        "excluded": {sid: sorted(reasons) for sid, reasons in excluded.items()},
    }
    draw_id = uuid.uuid4()
    receipt = algorithm.build_receipt(
        draw_id=str(draw_id), request_id=str(req.id), round_no=round_no, snapshot=pool.snapshot,
        buckets=pool.buckets, columns=pool.columns, params=params, bureau_nonce=req.bureau_nonce,
        procuratorate_nonce=req.procuratorate_nonce, public_value=req.public_value, prev_receipt_hash=prev_hash,
        drawn_at=utcnow().isoformat(),
    )
    await session.execute(draw.insert().values(
        id=draw_id, request_id=req.id, round=round_no, chain_seq=seq, receipt=pack(receipt),
        receipt_hash=receipt["receipt_hash"], prev_receipt_hash=prev_hash, need=need,
    ))
    return receipt


async def load_receipt(session: AsyncSession, draw_id: uuid.UUID) -> tuple[Any, dict]:
    row = (await session.execute(select(draw).where(draw.c.id == draw_id))).one_or_none()
    if row is None:
        raise NotFound("抽选记录", draw_id)
    return row, unpack(row.receipt, row.snapshot)


async def append_contact(session: AsyncSession, *, draw_id: uuid.UUID, entry: dict, reason: str | None) -> dict:
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
    entry = {**entry, "seq": seq, "at": utcnow().isoformat(), "prev_hash": prev_hash,
             "reason_sha256": algorithm.sha256_hex(reason.encode()) if reason else None}
    entry["hash"] = algorithm.contact_entry_hash(entry)
    await session.execute(contact_log.insert().values(draw_id=draw_id, seq=seq, entry=entry, reason=reason,
                                                      hash=entry["hash"]))
    return entry


async def fill_window(session: AsyncSession, *, settings: SelectionSettings, req, group: str,
                      orders: dict | None = None) -> list[uuid.UUID]:
    """Let the next ones in draw order in until pending covers the open seats (R12.1, R14.1, R14.2).

    Returns the supervisors who entered the window. Callers hold the request row lock.
    """
    seats = req.seats_local if group == "local" else req.seats_cross
    entered: list[uuid.UUID] = []
    short = 0
    redrawn = False
    recused: set[uuid.UUID] | None = None
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
            if source is None or redrawn:
                short = want  # the pool itself cannot fill (R14.1)
                break
            redrawn = True  # one new round per attempt: if it brings nobody, the shortfall is reported
            latest_round = await session.scalar(select(func.max(draw.c.round)).where(draw.c.request_id == req.id))
            receipt = await run_draw(session, settings=settings, req=req, round_no=latest_round + 1,
                                     need={g: (want if g == group else 0) for g in algorithm.GROUPS})
            orders[uuid.UUID(receipt["draw_id"])] = receipt["order"]
            continue
        if recused is None:
            recused = set((await session.scalars(select(recusal.c.supervisor_id).where(
                recusal.c.request_id == req.id, recusal.c.status == "granted"))).all())
        ahead = [uuid.UUID(sid) for sid in order[used:]]
        dismissed = set((await session.scalars(select(supervisor.c.id).where(
            supervisor.c.id.in_(ahead), supervisor.c.dismissed))).all())
        position = sum(s.n for s in stats)
        rows, skipped = [], []
        for sid in ahead:
            if want == 0:
                break
            position += 1
            # granted a recusal (R13), or dismissed (R9.1), after the draw and before this person was
            # reached: skipped, in the log
            status = "recused" if sid in recused else "dismissed" if sid in dismissed else "pending"
            rows.append(dict(request_id=req.id, supervisor_id=sid, draw_id=source.id, round=source.round,
                             group=group, position=position, status=status))
            if status == "pending":
                entered.append(sid)
                want -= 1
            else:
                skipped.append((sid, position, status))
        await session.execute(candidate.insert(), rows)
        for sid, position, status in skipped:
            await append_contact(session, draw_id=source.id, entry={
                "supervisor_id": str(sid), "group": group, "position": position,
                "outcome": status, "recorded_by": "system"}, reason=None)
        if want == 0:
            break
    # req was read (locked) at the start of the caller's transaction, and each caller fills a
    # group once per transaction, so req.shortfall tells whether there is a stale entry to clear
    if short or group in (req.shortfall or {}):
        cleared = request.c.shortfall.op("-")(literal(group, Text))
        value = cleared.op("||")(func.jsonb_build_object(group, short)) if short else cleared
        await session.execute(update(request).where(request.c.id == req.id).values(shortfall=value))
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


async def view(session: AsyncSession, req) -> dict:
    """The request as the bureau and the procuratorate see it (no personal data)."""
    draws = (await session.execute(select(draw.c.id, draw.c.round, draw.c.receipt_hash, draw.c.need)
                                   .where(draw.c.request_id == req.id).order_by(draw.c.round))).all()
    cands = (await session.execute(select(candidate).where(candidate.c.request_id == req.id)
                                   .order_by(candidate.c.group, candidate.c.position))).all()
    return {
        "request_id": str(req.id), "activity_id": str(req.activity_id), "status": req.status,
        "district": req.district, "starts_at": req.starts_at.isoformat(), "ends_at": req.ends_at.isoformat(),
        "seats": req.seats, "seats_local": req.seats_local, "seats_cross": req.seats_cross,
        "specialty": req.specialty, "balance_mode": req.balance_mode,
        "bureau_commitment": req.bureau_commitment, "calendar_provisional": req.calendar_provisional,
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


# --- receipts and verification ---------------------------------------------------------------------

async def receipt_with_log(session: AsyncSession, draw_id: uuid.UUID) -> tuple[Any, dict]:
    """The stored receipt plus the draw's current contact log (GET /draws/{id}/receipt)."""
    row, receipt = await load_receipt(session, draw_id)
    entries = (await session.scalars(select(contact_log.c.entry).where(contact_log.c.draw_id == draw_id)
                                     .order_by(contact_log.c.seq))).all()
    receipt["contact_log"] = list(entries)
    if isinstance(receipt.get("snapshot", {}).get("buckets"), dict):  # algorithm v2 and later: the pool it names
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
    prev = await session.scalar(select(draw.c.receipt_hash).where(draw.c.chain_seq < row.chain_seq)
                                .order_by(draw.c.chain_seq.desc()).limit(1))
    check("chain_link", (prev or algorithm.GENESIS_HASH) == row.prev_receipt_hash,
          f"chain position {row.chain_seq}")
    committed = await session.scalar(select(request.c.bureau_commitment).where(request.c.id == row.request_id))
    check("commitment_recorded_at_acceptance",
          committed == receipt.get("commitments", {}).get("bureau"))
    cands = (await session.execute(select(candidate.c.supervisor_id, candidate.c.group).where(
        candidate.c.draw_id == draw_id).order_by(candidate.c.position))).all()
    order = receipt.get("order", {})
    per_group = {g: [str(c.supervisor_id) for c in cands if c.group == g] for g in algorithm.GROUPS}
    follows = all(ids == order.get(g, [])[:len(ids)] for g, ids in per_group.items())
    check("contacts_follow_order", follows, f"{len(cands)} contacted")
    stored = (await session.execute(select(contact_log.c.entry, contact_log.c.hash).where(
        contact_log.c.draw_id == draw_id))).all()
    check("contact_log_rows", all(e.entry.get("hash") == e.hash for e in stored))
    result["ok"] = all(c["ok"] for c in checks.values())
    result["draw_id"] = str(draw_id)
    result["receipt_hash"] = row.receipt_hash
    return result


async def redraw(session: AsyncSession, *, settings: SelectionSettings, request_id: uuid.UUID) -> dict:
    """R14.1 on demand: fill the open seats again, drawing round + 1 where a group's list is exhausted."""
    req = await require(session, request_id, lock=True)
    if req.status == "refused":
        raise Unprocessable("request_refused", "该申请已被拒绝", "被拒绝的申请不能重新抽选。")
    if req.status == "accepted":
        await draw_request(session, settings=settings, request_id=req.id)
    else:
        for group in algorithm.GROUPS:
            await fill_window(session, settings=settings, req=req, group=group)
    return await view(session, await require(session, request_id))

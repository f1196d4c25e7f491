"""An audit you can trust (issue 16): each service verifies its own chain, and witnesses the others'.

`shared.audit` chains each service's `audit_log`, but a chain whose newest entries were deleted (or
that was rewritten consistently by a database superuser) still verifies on its own. So:

- Every `AUDIT_VERIFY_SECONDS` each service verifies its whole chain (`run_job`): the result is kept
  on `app.state.audit_status` (and answered by `GET /audit/verify`), broken chains are logged at
  ERROR, metrics `audit_chain_ok` / `audit_chain_verified_seq` are set. A replica also remembers the
  last head it verified good (`app.state.audit_anchor`, in memory, out of the database's reach) and
  verifies against it next time, so it notices its own newest entries vanishing.
- It then publishes its head as `AuditHeadPublished` (topic `platform.audit`, through the outbox).
  Every other service's consumer keeps the highest head it saw per service in `audit_witness`
  (`head_published_handler`, registered by shared.app for every service with a consumer), and
  raises an alarm when a head goes back (`judge`): `audit_witness.alarm`, an ERROR log line,
  metric `audit_witness_alarms`. `GET /audit/witnessed` lists them; an auditor pastes a witnessed
  head into `GET /audit/verify?expected_seq=&expected_hash=` on the producer to see where it broke.

Limits: a head with a higher seq is accepted without checking that its chain extends the witnessed
head (that needs the producer's rows, i.e. asking the producer: `GET /audit/verify` with the
witnessed head does exactly that, on demand). So a chain truncated and then regrown past the
witnessed seq between two publications is not caught by the witnesses alone. An alarm stays until
an operator clears the `alarm` column; the witnessed head is never lowered.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import BaseModel
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    MetaData,
    Table,
    Text,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared import audit
from shared.auth import Principal, Role, require
from shared.errors import Unprocessable
from shared.events.contracts import AuditHeadPublished
from shared.events.envelope import Envelope

log = logging.getLogger(__name__)


def define_witness_table(metadata: MetaData) -> Table:
    """`audit_witness`: the highest audit head this service saw of each other service."""
    return Table(
        "audit_witness",
        metadata,
        Column("service", Text, primary_key=True),
        Column("seq", BigInteger, nullable=False),
        Column("hash", Text, nullable=False),
        Column("at", DateTime(timezone=True), nullable=False),  # the producer's clock, from the event
        Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("alarm", Text, nullable=True),  # why the chain went back; cleared only by an operator
        Column("alarm_at", DateTime(timezone=True), nullable=True),
    )


# --- the witness rule (pure) ---------------------------------------------------------------------

@dataclass(frozen=True)
class Head:
    seq: int
    hash: str


@dataclass(frozen=True)
class Decision:
    """What to do with a newly published head: `first` / `raise` store it, `same` refreshes the
    witnessed row, `alarm` keeps the witnessed head and records `alarm`."""

    action: Literal["first", "raise", "same", "alarm"]
    alarm: str | None = None


def judge(service: str, witnessed: Head | None, new: Head) -> Decision:
    """The witness rule: a chain's head only ever moves forward.

    Lower seq: newest entries deleted. Same seq, other hash: rewritten. Higher seq: raised (whether
    its chain extends the witnessed head cannot be told without the producer's rows; not checked).
    """
    if witnessed is None:
        return Decision("first")
    if new.seq > witnessed.seq:
        return Decision("raise")
    if new.seq == witnessed.seq and new.hash == witnessed.hash:
        return Decision("same")
    why = "newest entries deleted" if new.seq < witnessed.seq else "entry rewritten"
    return Decision("alarm", f"audit chain of {service} went back: witnessed seq {witnessed.seq} hash "
                             f"{witnessed.hash}, now seq {new.seq} hash {new.hash} ({why})")


# --- verification of the own chain ---------------------------------------------------------------

class AuditStatus(BaseModel):
    """One verification of this service's chain."""

    service: str
    ok: bool
    state: Literal["ok", "broken", "truncated"]
    checked_at: datetime
    checked: int  # entries found valid, from seq 1
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    reason: str | None = None
    expected_seq: int | None = None  # the head verified against (given, or the last one verified good)
    expected_hash: str | None = None


async def check_chain(app: FastAPI, expected_head: tuple[int, str] | None = None) -> AuditStatus:
    """Verify the whole chain now (against `expected_head`, else the last head this replica verified
    good); keep the result on app.state.audit_status, set the metrics, log a break at ERROR."""
    table = app.state.platform.audit
    anchor = expected_head or getattr(app.state, "audit_anchor", None)
    async with app.state.db.transaction() as session:
        # one snapshot for the chain and its head (appenders go on meanwhile)
        await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        result = await audit.verify(session, table, expected_head=anchor)
        head_seq, head_hash = await audit.head(session, table)
    state: Literal["ok", "broken", "truncated"] = "ok"
    if not result.ok:
        # every entry there is valid, but the chain stops short of the anchored head
        ends_short = (anchor is not None and result.checked == head_seq < anchor[0]
                      and result.first_bad_seq == result.checked + 1)
        state = "truncated" if ends_short else "broken"
    status = AuditStatus(
        service=app.state.service, ok=result.ok, state=state, checked_at=datetime.now(UTC),
        checked=result.checked, head_seq=head_seq, head_hash=head_hash, first_bad_seq=result.first_bad_seq,
        reason=result.reason, expected_seq=anchor[0] if anchor else None,
        expected_hash=anchor[1] if anchor else None,
    )
    app.state.audit_status = status
    metrics = app.state.metrics
    metrics.audit_chain_ok.labels(status.service).set(1 if status.ok else 0)
    metrics.audit_chain_verified_seq.labels(status.service).set(status.checked)
    if status.ok:
        previous = getattr(app.state, "audit_anchor", None)
        if previous is None or head_seq >= previous[0]:
            app.state.audit_anchor = (head_seq, head_hash)
    else:
        log.error("audit chain of %s broken at seq %s: %s (%s)", status.service, status.first_bad_seq,
                  status.reason, status.state)
    return status


async def publish_head(app: FastAPI) -> AuditHeadPublished:
    """Stage this service's current head for the other services (outbox, own transaction)."""
    table = app.state.platform.audit
    async with app.state.db.transaction() as session:
        # appenders' lock: heads leave in outbox order with never-decreasing seqs, even across replicas
        # (shared.audit serializes appends on the same advisory lock)
        await session.execute(select(func.pg_advisory_xact_lock(audit._lock_key(table))))
        seq, head_hash = await audit.head(session, table)
        event = AuditHeadPublished(service=app.state.service, seq=seq, hash=head_hash, at=datetime.now(UTC))
        await app.state.outbox.add(session, event)
    return event


async def refresh_witness_metrics(app: FastAPI) -> None:
    """audit_witness_alarms{witnessed=...}: 1 while that service's witnessed head holds an alarm."""
    table = app.state.platform.witness
    async with app.state.db.transaction() as session:
        rows = (await session.execute(select(table.c.service, table.c.alarm))).all()
    for service, alarm in rows:
        app.state.metrics.audit_witness_alarms.labels(app.state.service, service).set(1 if alarm else 0)


async def run_job(app: FastAPI) -> AuditStatus:
    """The periodic job (shared.app runs it every AUDIT_VERIFY_SECONDS): verify, publish the head."""
    status = await check_chain(app)
    await publish_head(app)
    await refresh_witness_metrics(app)
    return status


# --- witnessing the other services' heads --------------------------------------------------------

async def witness(session: AsyncSession, app: FastAPI, event: AuditHeadPublished) -> Decision:
    """Apply the witness rule to `event` in the caller's transaction."""
    table = app.state.platform.witness
    row = (await session.execute(
        select(table.c.seq, table.c.hash).where(table.c.service == event.service).with_for_update()
    )).first()
    decision = judge(event.service, Head(row.seq, row.hash) if row else None, Head(event.seq, event.hash))
    now = datetime.now(UTC)
    if decision.action == "alarm":
        log.error(decision.alarm)
        await session.execute(update(table).where(table.c.service == event.service)
                              .values(alarm=decision.alarm, alarm_at=now, received_at=now))
        await audit.append(session, app.state.platform.audit, actor="system", action="audit.witness_alarm",
                           subject=event.service, details={"witnessed_seq": row.seq, "witnessed_hash": row.hash,
                                                           "seq": event.seq, "hash": event.hash})
        app.state.metrics.audit_witness_alarms.labels(app.state.service, event.service).set(1)
        return decision
    values = {"service": event.service, "seq": event.seq, "hash": event.hash, "at": event.at, "received_at": now}
    stmt = insert(table).values(**values)
    # never lower the witnessed head, whatever the order (the row lock above makes this a safeguard)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=[table.c.service],
        set_={k: stmt.excluded[k] for k in ("seq", "hash", "at", "received_at")},
        where=table.c.seq <= stmt.excluded.seq,
    ))
    return decision


def head_published_handler(app: FastAPI):
    """The consumer's handler of AuditHeadPublished: witness the other services' heads, not its own."""

    async def on_head_published(session: AsyncSession, event: AuditHeadPublished,
                                envelope: Envelope | None = None) -> None:
        if event.service == app.state.service:
            return
        if envelope is not None and envelope.source != event.service:
            # signed by another producer than the one it speaks for: not that service's head
            log.warning("audit head of %s published by %s ignored", event.service, envelope.source)
            return
        await witness(session, app, event)

    return on_head_published


# --- endpoints -----------------------------------------------------------------------------------

router = APIRouter(prefix="/audit", tags=["audit 审计"])
AuditReader = Annotated[Principal, Depends(require(Role.AUDITOR, Role.BUREAU_ADMIN))]


class WitnessedHead(BaseModel):
    service: str
    seq: int
    hash: str
    at: datetime
    received_at: datetime
    alarm: str | None
    alarm_at: datetime | None


@router.get("/verify", summary="立即校验本服务审计日志哈希链（可指定外部见证的链头）")
async def verify_now(
    request: Request, _: AuditReader,
    expected_seq: Annotated[int | None, Query(ge=0, description="见证的链头序号")] = None,
    expected_hash: Annotated[str | None, Query(pattern="^[0-9a-f]{64}$", description="见证的链头哈希")] = None,
) -> AuditStatus:
    if (expected_seq is None) != (expected_hash is None):
        raise Unprocessable("expected_head_incomplete", "链头不完整", "expected_seq 与 expected_hash 须同时给出。")
    expected = (expected_seq, expected_hash) if expected_seq is not None else None
    return await check_chain(request.app, expected)


@router.get("/witnessed", summary="本服务见证的其他服务审计链头")
async def witnessed(request: Request, _: AuditReader) -> list[WitnessedHead]:
    table = request.app.state.platform.witness
    async with request.app.state.db.transaction() as session:
        rows = (await session.execute(select(table).order_by(table.c.service))).mappings().all()
    return [WitnessedHead(**row) for row in rows]

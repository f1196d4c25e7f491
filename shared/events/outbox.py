"""Transactional outbox: the event row commits with the state change; a relay publishes it later.

A request never fails because the broker is down: the row waits, the relay retries with backoff.
Several replicas may run the relay: rows are claimed with FOR UPDATE SKIP LOCKED, and a
transaction-scoped advisory lock lets one replica at a time publish, which also keeps the
per-subject order the consumers rely on.
"""

import asyncio
import contextlib
import logging
import random
import time
import zlib
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    Uuid,
    any_,
    bindparam,
    cast,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from shared.context import current_correlation_id
from shared.db import Database
from shared.events.contracts import Event
from shared.events.envelope import Envelope, kafka_headers
from shared.events.kafka import ensure_topics, make_producer
from shared.settings import CommonSettings

log = logging.getLogger(__name__)


def define_outbox_table(metadata: MetaData) -> Table:
    """outbox_event: one row per event to publish, in commit order (id)."""
    return Table(
        "outbox_event", metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("event_id", Uuid, nullable=False, unique=True),
        Column("topic", Text, nullable=False),
        Column("key", Text, nullable=False),
        Column("event_type", Text, nullable=False),
        Column("envelope", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True), nullable=True),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("last_error", Text, nullable=True),
        # the relay only ever looks for unpublished rows; keep that lookup small as history grows
        Index("ix_outbox_event_unpublished", "id", postgresql_where=text("published_at IS NULL")),
    )


PURGE_INTERVAL_SECONDS = 600


def notify_channel(schema: str) -> str:
    """LISTEN/NOTIFY channel that wakes the relay of one service at commit."""
    return f"outbox_{schema}"


class Outbox:
    """Writes events into the caller's transaction."""

    def __init__(self, table: Table, *, source: str) -> None:
        self.table = table
        self.source = source
        self.channel = notify_channel(table.schema or "public")
        self._insert = table.insert()  # built once: compiling a statement per event is the hot cost
        self._notify = text("SELECT pg_notify(:channel, '')")
        self._notified_key = f"outbox_notified:{self.channel}"

    async def add(
        self, session: AsyncSession, event: Event, *, correlation_id: str | None = None
    ) -> Envelope:
        """Stage `event` for publishing; it leaves only if the caller's transaction commits."""
        return (await self.add_many(session, [event], correlation_id=correlation_id))[0]

    async def add_many(
        self, session: AsyncSession, events: list[Event], *, correlation_id: str | None = None
    ) -> list[Envelope]:
        """Stage several events in one round trip (in this order)."""
        correlation_id = correlation_id or current_correlation_id()
        envelopes = [
            Envelope(type=e.TYPE, version=e.VERSION, source=self.source, correlation_id=correlation_id,
                     subject=e.subject, data=e.model_dump(mode="json"))
            for e in events
        ]
        await session.execute(self._insert, [
            {"event_id": env.id, "topic": e.TOPIC, "key": env.subject, "event_type": e.TYPE,
             "envelope": env.model_dump(mode="json")}
            for e, env in zip(events, envelopes, strict=True)
        ])
        await self._notify_once(session)
        return envelopes

    async def _notify_once(self, session: AsyncSession) -> None:
        """NOTIFY the relay once per transaction; PostgreSQL delivers it at commit, when the rows are visible."""
        transaction = session.get_transaction()
        if session.info.get(self._notified_key) is transaction:
            return
        await session.execute(self._notify, {"channel": self.channel})
        session.info[self._notified_key] = transaction


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with jitter, capped at one minute."""
    return min(60.0, 0.25 * 2 ** min(attempts, 8)) * random.uniform(0.8, 1.2)


class OutboxRelay:
    """Publishes unsent outbox rows in id order; marks them sent only after the broker acknowledged."""

    def __init__(self, db: Database, table: Table, settings: CommonSettings, *, name: str) -> None:
        self.db = db
        self.table = table
        self.settings = settings
        self.name = name
        self.channel = notify_channel(table.schema or "public")
        self.lock_key = zlib.crc32(f"outbox:{table.schema}".encode())
        self._wake = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._listen_conn = None
        self._last_purge = 0.0
        self.published_total = 0
        t = table
        # The stored envelope goes out as it is: its JSON text (the row was built from a validated
        # Envelope in the writer's transaction), with the header fields read by PostgreSQL. Decoding,
        # validating and re-serializing it in Python took a third or more of the relay's CPU per event.
        self._claim = (
            select(t.c.id, t.c.topic, t.c.key, t.c.attempts,
                   cast(t.c.envelope, Text).label("envelope_json"),
                   t.c.envelope["type"].astext.label("type"),
                   t.c.envelope["version"].astext.label("version"),
                   t.c.envelope["correlation_id"].astext.label("correlation_id"),
                   (t.c.next_attempt_at <= func.now()).label("due"))
            .where(t.c.published_at.is_(None))
            .order_by(t.c.id).limit(bindparam("limit"))
            .with_for_update(skip_locked=True)
        )
        # one array parameter: `IN (...)` would be a new statement (and server-side prepare) per count
        self._mark_published = (
            update(t).where(t.c.id == any_(bindparam("ids", type_=ARRAY(BigInteger))))
            .values(published_at=bindparam("now"))
        )

    async def _producer_ready(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = make_producer(self.settings, client_id=f"{self.name}-outbox")
            try:
                await producer.start()
                await ensure_topics(self.settings)
            except Exception:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def publish_batch(self) -> int:
        """Publish one batch of due rows; returns how many were published."""
        t = self.table
        async with self.db.transaction() as session:
            locked = await session.scalar(select(func.pg_try_advisory_xact_lock(self.lock_key)))
            if not locked:
                return 0  # another replica is relaying right now
            rows = (await session.execute(self._claim, {"limit": self.settings.outbox_batch_size})).all()
            # Strictly in id order: the batch stops at the first row still waiting out a backoff, so a
            # later row (of the same subject, or any) never overtakes one that failed before it.
            due = next((i for i, row in enumerate(rows) if not row.due), len(rows))
            rows = rows[:due]
            if not rows:
                return 0
            sent_ids, failed, error = await self._send(rows)
            now = datetime.now(UTC)
            if sent_ids:
                await session.execute(self._mark_published, {"ids": sent_ids, "now": now})
            if failed:  # they failed together and retry together (one backoff: the order holds)
                attempts = max(row.attempts for row in failed) + 1
                await session.execute(
                    update(t).where(t.c.id == any_(bindparam("ids", type_=ARRAY(BigInteger)))).values(
                        attempts=t.c.attempts + 1, last_error=error[:2000],
                        next_attempt_at=now + timedelta(seconds=backoff_seconds(attempts)),
                    ), {"ids": [row.id for row in failed]})
        self.published_total += len(sent_ids)
        return len(sent_ids)

    async def _send(self, rows) -> tuple[list[int], list, str]:
        """Send rows in order; on the first failure the rest wait for the next attempt (keeps order)."""
        try:
            producer = await self._producer_ready()
        except Exception as exc:  # broker down: every row waits
            return [], list(rows), f"broker unavailable: {exc!r}"
        futures = []
        for row in rows:
            try:  # send() only enqueues; the acks are awaited together below
                futures.append(await producer.send(
                    row.topic, row.envelope_json.encode(), key=row.key.encode(),
                    headers=kafka_headers(row.type, row.version, row.correlation_id),
                ))
            except Exception as exc:
                # later rows are not even enqueued: they go after this one on the next attempt, so a
                # row of the same subject can never overtake it (per-subject order)
                futures.append(exc)
                break
        results = await asyncio.gather(
            *[f for f in futures if not isinstance(f, Exception)], return_exceptions=True
        )
        it = iter(results)
        outcomes = [f if isinstance(f, Exception) else next(it) for f in futures]
        sent: list[int] = []
        for i, (row, outcome) in enumerate(zip(rows, outcomes, strict=False)):  # stops at the first failure
            if isinstance(outcome, Exception):
                await self._drop_producer()  # reconnect (and re-create topics) on the next try
                return sent, list(rows[i:]), repr(outcome)
            sent.append(row.id)
        return sent, [], ""

    async def _listen(self) -> None:
        """LISTEN for commits of new rows so publishing starts at once, not at the next poll."""
        conn = await self.db.engine.connect()
        raw = await conn.get_raw_connection()
        await raw.driver_connection.add_listener(self.channel, lambda *_: self._wake.set())
        self._listen_conn = conn

    async def run(self) -> None:
        """Relay forever: publish while there is work, else sleep until NOTIFY or the poll interval."""
        while True:
            self._wake.clear()  # a NOTIFY that arrives while publishing sets it again
            try:
                if self._listen_conn is None:
                    await self._listen()
                published = await self.publish_batch()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("outbox relay %s: batch failed, retrying", self.name, exc_info=True)
                await self._close_listener()
                published = 0
                await asyncio.sleep(1.0)
            if published >= self.settings.outbox_batch_size:
                continue
            await self._purge_if_due()
            # asyncio.wait, not wait_for / asyncio.timeout: on 3.11 both implement the timeout by
            # cancelling this task, and a shutdown cancel racing with it can be swallowed, leaving the
            # relay running forever (seen as hangs at shutdown). asyncio.wait never cancels us.
            waiter = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({waiter}, timeout=self.settings.outbox_poll_seconds)
            finally:
                waiter.cancel()

    async def purge_published(self) -> int:
        """Delete rows published longer ago than the retention period; returns how many."""
        cutoff = datetime.now(UTC) - timedelta(days=self.settings.outbox_retention_days)
        async with self.db.transaction() as session:
            result = await session.execute(
                delete(self.table).where(self.table.c.published_at.is_not(None), self.table.c.published_at < cutoff)
            )
        return result.rowcount

    async def _purge_if_due(self) -> None:
        if time.monotonic() - self._last_purge < PURGE_INTERVAL_SECONDS:
            return
        self._last_purge = time.monotonic()
        try:
            await self.purge_published()
        except Exception:
            log.warning("outbox relay %s: purge failed", self.name, exc_info=True)

    async def _close_listener(self) -> None:
        conn, self._listen_conn = self._listen_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()
                await conn.close()

    async def close(self) -> None:
        await self._close_listener()
        await self._drop_producer()

    async def backlog(self) -> int:
        """How many rows wait to be published (for /metrics)."""
        async with self.db.transaction() as session:
            return await session.scalar(
                select(func.count()).select_from(self.table).where(self.table.c.published_at.is_(None))
            )

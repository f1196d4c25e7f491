"""Transactional outbox: the event row commits with the state change; a relay publishes it later.

A request never fails because the broker is down: the row waits, the relay retries with backoff.
Several replicas may run the relay: rows are claimed with FOR UPDATE SKIP LOCKED, and a
transaction-scoped advisory lock lets one replica at a time publish, which also keeps the
per-subject order the consumers rely on.

What goes out is signed by the service (shared/events/signing.py: headers `source`, `seq` = the
row id, `sig`). Events with personal data (contracts marked `PERSONAL`) are stored sealed with the
app's FieldCipher and decrypted only on the way out; the others go out as the stored JSON text.
"""

import asyncio
import contextlib
import json
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
from shared.crypto import FieldCipher
from shared.db import Database
from shared.events.contracts import Event
from shared.events.envelope import Envelope, kafka_headers
from shared.events.kafka import ensure_topics, make_producer
from shared.events.signing import EventSigner
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


def outbox_context(table: Table) -> str:
    """The FieldCipher context of sealed envelopes in this outbox table (its qualified name)."""
    return f"{table.schema}.{table.name}" if table.schema else table.name


def seal_envelope(envelope: Envelope, cipher: FieldCipher, context: str) -> dict:
    """The stored form of an envelope that carries personal data: the envelope's JSON encrypted
    (AES-GCM) under `sealed`, beside its fields without `data` (type, subject, ... stay queryable)."""
    stored = envelope.model_dump(mode="json", exclude={"data"})
    stored["sealed"] = cipher.encrypt(envelope.model_dump_json(), context=context)
    return stored


class Outbox:
    """Writes events into the caller's transaction.

    Events whose contract is marked `PERSONAL` (names, phones) are stored sealed (`seal_envelope`,
    the app's FieldCipher, context = the outbox table's name) and decrypted by the relay just before
    sending; the others keep the plain JSON the relay sends as it is.
    """

    def __init__(self, table: Table, *, source: str, cipher: FieldCipher | None = None) -> None:
        self.table = table
        self.source = source
        self.cipher = cipher
        self.context = outbox_context(table)
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
             "envelope": self._sealed(env) if e.PERSONAL else env.model_dump(mode="json")}
            for e, env in zip(events, envelopes, strict=True)
        ])
        await self._notify_once(session)
        return envelopes

    def _sealed(self, envelope: Envelope) -> dict:
        if self.cipher is None:  # never store personal data in clear: refuse instead
            raise RuntimeError(f"{envelope.type} carries personal data: this Outbox needs a cipher "
                               "(Outbox(table, source=..., cipher=app.state.cipher))")
        return seal_envelope(envelope, self.cipher, self.context)

    async def _notify_once(self, session: AsyncSession) -> None:
        """NOTIFY the relay once per transaction; PostgreSQL delivers it at commit, when the rows are visible."""
        transaction = session.get_transaction()
        if session.info.get(self._notified_key) is transaction:
            return
        await session.execute(self._notify, {"channel": self.channel})
        session.info[self._notified_key] = transaction


def wire_columns(table: Table) -> list:
    """What the relay (and the event feed) read of a row besides its columns: the stored envelope's
    JSON text and the fields the headers need, read by PostgreSQL (see OutboxRelay's claim)."""
    t = table
    return [cast(t.c.envelope, Text).label("envelope_json"),
            t.c.envelope["type"].astext.label("type"),
            t.c.envelope["version"].astext.label("version"),
            t.c.envelope["correlation_id"].astext.label("correlation_id"),
            t.c.envelope["source"].astext.label("source"),
            t.c.envelope["sealed"].astext.label("sealed")]


def _stored_field(row, name: str) -> str | None:
    """A field of the stored envelope: from the claim's column, else (a row selected without
    wire_columns) from its JSON text."""
    value = getattr(row, name, _MISSING)
    if value is not _MISSING:
        return value
    if name == "sealed" and '"sealed"' not in row.envelope_json:
        return None
    return json.loads(row.envelope_json).get(name)


_MISSING = object()


def outbox_headers(row, signer: EventSigner | None = None, *, value: bytes | None = None) -> list[tuple[str, bytes]]:
    """The Kafka headers of an outbox row, as they go on the wire.

    One function for the relay and for the event feed (GET /events/feed, shared.events.feed), so a
    message repaired from the feed carries exactly what the relay would have sent. `row` has the
    outbox columns plus `wire_columns` (the relay's claim). With the service's `signer` (always, but
    for a test) the headers add `source`, `seq` (the row id) and `sig` over topic, seq and `value`
    (the message bytes, `outbox_value(row, ...)`); Ed25519 is deterministic, so the feed's signature
    of a row is the relay's.
    """
    headers = kafka_headers(row.type, row.version, row.correlation_id)
    if signer is not None:
        if value is None:
            raise ValueError("signing an outbox row needs its value (outbox_value)")
        headers += signer.headers(source=_stored_field(row, "source"), topic=row.topic, seq=row.id, value=value)
    return headers


def outbox_value(row, cipher: FieldCipher | None = None, *, context: str | None = None) -> bytes:
    """The message value of an outbox row: the stored envelope's JSON text, as the relay sends it;
    for a sealed row (personal data) the decrypted envelope (`cipher` and the table's
    `outbox_context` needed; crypto.DecryptionError if it does not open)."""
    sealed = _stored_field(row, "sealed")
    if sealed is None:
        return row.envelope_json.encode()
    if cipher is None or context is None:
        raise ValueError(f"outbox row {row.id} is sealed: its value needs the cipher and context")
    return cipher.decrypt(sealed, context=context).encode()


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
        # Signed messages (shared.events.signing): no key, nothing is published (the rows wait).
        self.signer = EventSigner.from_settings(settings)
        self._unsigned_logged_at = 0.0
        # sealed rows (personal data) are decrypted just before sending
        self.cipher = FieldCipher.from_settings(settings.field_encryption_key.get_secret_value(),
                                                settings.field_hash_key.get_secret_value())
        self.context = outbox_context(table)
        t = table
        # The stored envelope goes out as it is: its JSON text (the row was built from a validated
        # Envelope in the writer's transaction), with the header fields read by PostgreSQL. Decoding,
        # validating and re-serializing it in Python took a third or more of the relay's CPU per event.
        self._claim = (
            select(t.c.id, t.c.topic, t.c.key, t.c.attempts, *wire_columns(t),
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
        """Send rows in order, signed; on the first failure the rest wait for the next attempt (keeps order)."""
        signer = self.signer
        if signer is None:  # never publish unsigned: consumers would dead-letter it anyway
            if time.monotonic() - self._unsigned_logged_at > 60:
                self._unsigned_logged_at = time.monotonic()
                log.error("outbox relay %s: EVENT_SIGNING_KEY is not set; nothing is published (%d+ rows wait)",
                          self.name, len(rows))
            return [], list(rows), "EVENT_SIGNING_KEY is not set: events are not published unsigned"
        try:
            producer = await self._producer_ready()
        except Exception as exc:  # broker down: every row waits
            return [], list(rows), f"broker unavailable: {exc!r}"
        futures: list = []
        values: list[bytes] = []
        unopened = None  # index of a sealed row that does not decrypt (a key missing): it and the rest wait
        for i, row in enumerate(rows):
            try:
                values.append(outbox_value(row, self.cipher, context=self.context))
            except Exception as exc:
                unopened = i
                log.error("outbox relay %s: row %d (%s) does not decrypt with FIELD_ENCRYPTION_KEY; "
                          "it and every later row wait", self.name, row.id, row.type)
                error = RuntimeError(f"outbox row {row.id} does not decrypt: {type(exc).__name__}")
                break
        # one signature per group of messages (shared.events.signing: a Merkle root, a path per message)
        signatures = signer.sign_many([(row.source, row.topic, row.id, value)
                                       for row, value in zip(rows, values, strict=False)])
        for row, value, signature in zip(rows, values, signatures, strict=False):
            try:  # send() only enqueues; the acks are awaited together below
                futures.append(await producer.send(
                    row.topic, value, key=row.key.encode(), headers=outbox_headers(row) + signature,
                ))
            except Exception as exc:
                # later rows are not even enqueued: they go after this one on the next attempt, so a
                # row of the same subject can never overtake it (per-subject order)
                futures.append(exc)
                break
        else:
            if unopened is not None:
                futures.append(error)
        results = await asyncio.gather(
            *[f for f in futures if not isinstance(f, Exception)], return_exceptions=True
        )
        it = iter(results)
        outcomes = [f if isinstance(f, Exception) else next(it) for f in futures]
        sent: list[int] = []
        for i, (row, outcome) in enumerate(zip(rows, outcomes, strict=False)):  # stops at the first failure
            if isinstance(outcome, Exception):
                if i != unopened:
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

"""Idempotent inbox: a consumer records each event id in the same transaction as its effect.

Offsets are committed only after the effect committed, so a crash redelivers, and the inbox
makes the redelivery change nothing. A message that cannot be applied (bad JSON, a payload that
breaks the contract, a handler that keeps failing) goes to `<topic>.dlq` with the error, and the
partition moves on. A database outage is not a poison message: the consumer waits and retries.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from pydantic import ValidationError
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
    Uuid,
    func,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.context import reset_correlation_id, set_correlation_id
from shared.db import Database
from shared.events.contracts import Event, contract_for
from shared.events.envelope import Envelope
from shared.events.kafka import ensure_topics, make_producer
from shared.events.topics import dead_letter
from shared.settings import CommonSettings

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, Event, Envelope], Awaitable[None]]


def define_inbox_table(metadata: MetaData) -> Table:
    """inbox_event: (consumer, event id) of every event a consumer applied or dead-lettered."""
    return Table(
        "inbox_event", metadata,
        Column("consumer", Text, primary_key=True),
        Column("event_id", Uuid, primary_key=True),
        Column("event_type", Text, nullable=False),
        Column("topic", Text, nullable=False),
        Column("partition", Integer, nullable=False),
        Column("offset", BigInteger, nullable=False),
        Column("status", Text, nullable=False),  # applied | dead_lettered
        Column("error", Text, nullable=True),
        Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


TRANSIENT_ERRORS = (OSError, ConnectionError, OperationalError, InterfaceError, TimeoutError)


def is_transient(exc: BaseException) -> bool:
    """Errors of an unavailable database: wait and retry, never dead-letter."""
    if isinstance(exc, TRANSIENT_ERRORS):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class Poison(Exception):
    """A message that can never be applied."""


@dataclass(frozen=True)
class Parsed:
    envelope: Envelope
    event: Event


class InboxConsumer:
    """Consumes the topics of its handlers; each event's effect applies exactly once."""

    def __init__(
        self, *, name: str, db: Database, inbox: Table, settings: CommonSettings,
        handlers: dict[type[Event], Handler],
    ) -> None:
        self.name = name
        self.db = db
        self.inbox = inbox
        self.settings = settings
        self.handlers = {(cls.TYPE, cls.VERSION): h for cls, h in handlers.items()}
        self.topics = sorted({cls.TOPIC for cls in handlers})
        self._consumer: AIOKafkaConsumer | None = None
        self._dlq_producer: AIOKafkaProducer | None = None
        qualified = f'"{inbox.schema}"."{inbox.name}"' if inbox.schema else f'"{inbox.name}"'
        self._claim_sql = text(
            f"INSERT INTO {qualified} (consumer, event_id, event_type, topic, partition, \"offset\", status, error) "
            "SELECT :consumer, e.id, e.type, e.topic, e.part, e.off, :status, :error FROM unnest("
            "CAST(:event_ids AS uuid[]), CAST(:event_types AS text[]), CAST(:topics AS text[]), "
            "CAST(:partitions AS integer[]), CAST(:offsets AS bigint[])) AS e(id, type, topic, part, off) "
            "ON CONFLICT DO NOTHING RETURNING event_id"
        ).columns(event_id=Uuid)
        self.applied_total = 0
        self.dead_lettered_total = 0
        self.lag = 0

    # --- parsing ------------------------------------------------------------------------------

    def parse(self, record: ConsumerRecord) -> Parsed | None:
        """Envelope + payload model; None if this consumer does not handle the event type."""
        try:
            envelope = Envelope.from_bytes(record.value)
        except (ValidationError, ValueError, TypeError) as exc:
            raise Poison(f"invalid envelope: {exc}") from exc
        if (envelope.type, envelope.version) not in self.handlers:
            return None
        contract = contract_for(envelope.type, envelope.version)
        try:
            event = contract.model_validate(envelope.data)
        except ValidationError as exc:
            raise Poison(f"payload breaks the {envelope.type} v{envelope.version} contract: {exc}") from exc
        return Parsed(envelope, event)

    # --- applying -----------------------------------------------------------------------------

    async def _claim(self, session: AsyncSession, records: list[tuple[ConsumerRecord, Parsed]],
                     status: str = "applied", error: str | None = None) -> set:
        """Insert inbox rows; returns the event ids that were new (the others were applied before)."""
        # One fixed statement whatever the batch size (a VALUES list would be compiled anew per size).
        result = await session.execute(self._claim_sql, {
            "consumer": self.name, "status": status, "error": error,
            "event_ids": [p.envelope.id for _, p in records],
            "event_types": [p.envelope.type for _, p in records],
            "topics": [r.topic for r, _ in records],
            "partitions": [r.partition for r, _ in records],
            "offsets": [r.offset for r, _ in records],
        })
        return set(result.scalars())

    async def _apply(self, session: AsyncSession, parsed: Parsed) -> None:
        token = set_correlation_id(parsed.envelope.correlation_id)
        try:
            await self.handlers[(parsed.envelope.type, parsed.envelope.version)](
                session, parsed.event, parsed.envelope
            )
        finally:
            reset_correlation_id(token)

    async def apply_batch(self, batch: list[tuple[ConsumerRecord, Parsed]]) -> None:
        """Fast path: the whole batch in one transaction; on a failure, one by one to isolate it."""
        if not batch:
            return
        try:
            async with self.db.transaction() as session:
                new = await self._claim(session, batch)
                applied = len(new)
                for _record, parsed in batch:
                    if parsed.envelope.id in new:
                        new.discard(parsed.envelope.id)  # the same event twice in one batch applies once
                        await self._apply(session, parsed)
            self.applied_total += applied
            return
        except Exception as exc:
            if is_transient(exc):
                raise
        for record, parsed in batch:
            await self.apply_one(record, parsed)

    async def apply_one(self, record: ConsumerRecord, parsed: Parsed) -> None:
        """Apply one event with retries; dead-letter it if it keeps failing for a non-transient reason."""
        for attempt in range(1, self.settings.consumer_max_attempts + 1):
            try:
                async with self.db.transaction() as session:
                    if parsed.envelope.id in await self._claim(session, [(record, parsed)]):
                        await self._apply(session, parsed)
                        self.applied_total += 1
                return
            except Exception as exc:
                if is_transient(exc):
                    raise
                error = f"{type(exc).__name__}: {exc}"
                log.warning("consumer %s: event %s failed (attempt %d): %s", self.name,
                            parsed.envelope.id, attempt, error)
        await self.dead_letter(record, error)
        async with self.db.transaction() as session:
            await self._claim(session, [(record, parsed)], status="dead_lettered", error=error[:2000])

    async def dead_letter(self, record: ConsumerRecord, error: str) -> None:
        """Publish the original message to `<topic>.dlq` with the consumer's name and the error."""
        if self._dlq_producer is None:
            producer = make_producer(self.settings, client_id=f"{self.name}-dlq")
            await producer.start()
            self._dlq_producer = producer
        headers = [
            *(record.headers or ()),
            ("dlq.consumer", self.name.encode()),
            ("dlq.error", error[:2000].encode()),
            ("dlq.topic", record.topic.encode()),
            ("dlq.partition", str(record.partition).encode()),
            ("dlq.offset", str(record.offset).encode()),
        ]
        await self._dlq_producer.send_and_wait(
            dead_letter(record.topic), record.value, key=record.key, headers=headers
        )
        self.dead_lettered_total += 1
        log.error("consumer %s: dead-lettered %s[%d]@%d: %s", self.name, record.topic,
                  record.partition, record.offset, error[:200])

    async def process(self, records: list[ConsumerRecord]) -> None:
        """Apply one partition's records in order, dead-lettering the poison ones."""
        batch: list[tuple[ConsumerRecord, Parsed]] = []
        for record in records:
            try:
                parsed = self.parse(record)
            except Poison as exc:
                await self.apply_batch(batch)
                batch = []
                await self.dead_letter(record, str(exc))
                continue
            if parsed is not None:
                batch.append((record, parsed))
        await self.apply_batch(batch)

    # --- the loop -----------------------------------------------------------------------------

    async def _start(self) -> AIOKafkaConsumer:
        await ensure_topics(self.settings)
        consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=self.name,
            client_id=self.name,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.settings.kafka_fetch_max_wait_ms,
            max_poll_records=500,
        )
        await consumer.start()
        return consumer

    async def _stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()

    async def run(self) -> None:
        """Consume forever; reconnect after broker or database outages without losing a message."""
        delay = 0.5
        while True:
            try:
                if self._consumer is None:
                    self._consumer = await self._start()
                    log.info("consumer %s subscribed to %s", self.name, self.topics)
                batches = await self._consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    await self._process_with_db_retry(records)
                if batches:  # offsets only after every effect of the poll committed
                    await self._consumer.commit({tp: records[-1].offset + 1 for tp, records in batches.items()})
                await self._update_lag()
                delay = 0.5
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("consumer %s: broker trouble, reconnecting in %.1fs", self.name, delay,
                            exc_info=True)
                await self._stop()  # uncommitted records are fetched again and the inbox dedups
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _process_with_db_retry(self, records: list[ConsumerRecord]) -> None:
        delay = 0.5
        while True:
            try:
                await self.process(records)
                return
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("consumer %s: database unavailable, retrying in %.1fs", self.name, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _update_lag(self) -> None:
        """Messages on the assigned partitions not yet consumed (for /metrics)."""
        consumer, lag = self._consumer, 0
        for tp in consumer.assignment() if consumer else ():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                lag += max(0, highwater - await consumer.position(tp))
        self.lag = lag

    async def close(self) -> None:
        await self._stop()
        if self._dlq_producer is not None:
            with contextlib.suppress(Exception):
                await self._dlq_producer.stop()
            self._dlq_producer = None


async def applied(session: AsyncSession, inbox: Table, consumer: str) -> int:
    """How many events a consumer applied (for tests and metrics)."""
    return await session.scalar(
        select(func.count()).select_from(inbox)
        .where(inbox.c.consumer == consumer, inbox.c.status == "applied")
    )


"""Idempotent inbox: a consumer records each event id in the same transaction as its effect.

Offsets are committed only after the effect committed, so a crash redelivers, and the inbox
makes the redelivery change nothing. A message that cannot be applied (bad JSON, a payload that
breaks the contract, a handler that keeps failing) goes to `<topic>.dlq` with the error, and the
partition moves on. A database outage is not a poison message: the consumer waits and retries.

Before anything else `parse` checks the producer's signature (shared/events/signing.py): a forged
or misrouted message is poison. An event that states its subject's state (`LATEST_WINS` contracts:
appointment, update, dismissal, eligibility, a calendar year) and is older (by the producer's `seq`)
than one of them already applied of its (source, topic, subject) is recorded as `stale` and not
applied (table `inbox_sequence`). Facts (a signature, a drawn person, a training) apply whatever
their order: one lost and repaired after a newer fact of the same subject still counts.
"""

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.structs import TopicPartition
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
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession

from shared.context import reset_correlation_id, set_correlation_id
from shared.db import Database
from shared.errors import describe_exception, transactions_crossed
from shared.events.contracts import Event, contract_for
from shared.events.envelope import Envelope
from shared.events.kafka import (
    BrokerProbe,
    BrokerUnavailable,
    TopicsNotCreated,
    bounded,
    ensure_topics,
    is_unreachable,
    kafka_security,
    make_producer,
)
from shared.events.signing import EventVerifier, SignatureError
from shared.events.topics import dead_letter
from shared.settings import CommonSettings

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, Event, Envelope], Awaitable[None]]


def define_inbox_table(metadata: MetaData) -> Table:
    """inbox_event: (consumer, event id) of every event a consumer applied, found stale or
    dead-lettered. Also defines its companion `inbox_sequence` (`define_inbox_sequence_table`,
    reachable as `inbox.info["sequence_table"]`): every service's migrations create both."""
    inbox = Table(
        "inbox_event", metadata,
        Column("consumer", Text, primary_key=True),
        Column("event_id", Uuid, primary_key=True),
        Column("event_type", Text, nullable=False),
        Column("topic", Text, nullable=False),
        Column("partition", Integer, nullable=False),
        Column("offset", BigInteger, nullable=False),
        Column("status", Text, nullable=False),  # applied | stale | dead_lettered
        Column("error", Text, nullable=True),
        Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    inbox.info["sequence_table"] = define_inbox_sequence_table(metadata)
    return inbox


def define_inbox_sequence_table(metadata: MetaData) -> Table:
    """inbox_sequence: per consumer, producer (source), topic and subject, the highest producer
    sequence (`seq` header = the producer's outbox id) applied. An event with a lower one is stale.

    Per topic as well as per subject: Kafka keeps one subject's order within a topic only (a
    supervisor's training records and appointment travel on different topics)."""
    return Table(
        "inbox_sequence", metadata,
        Column("consumer", Text, primary_key=True),
        Column("source", Text, primary_key=True),
        Column("topic", Text, primary_key=True),
        Column("subject", Text, primary_key=True),
        Column("seq", BigInteger, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


# PoolTimeout: no pooled connection came within the pool's timeout (a database that stopped answering holds them)
TRANSIENT_ERRORS = (OSError, ConnectionError, OperationalError, InterfaceError, TimeoutError, PoolTimeout)


def is_transient(exc: BaseException) -> bool:
    """Errors of an unavailable database, or of two transactions that crossed (a deadlock PostgreSQL broke): wait
    and retry, never dead-letter."""
    if isinstance(exc, TRANSIENT_ERRORS) or transactions_crossed(exc):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class Poison(Exception):
    """A message that can never be applied."""


@dataclass(frozen=True)
class Parsed:
    envelope: Envelope
    event: Event
    seq: int | None = None  # the producer's sequence (verified `seq` header)


class InboxConsumer:
    """Consumes the topics of its handlers; each event's effect applies exactly once."""

    def __init__(
        self, *, name: str, db: Database, inbox: Table, settings: CommonSettings,
        handlers: dict[type[Event], Handler],
        first_lock: Callable[[AsyncSession], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        # taken first in every transaction that applies events (the service's lock order, shared/app.py)
        self.first_lock = first_lock
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
        # authentic events (shared.events.signing) and stale ones (inbox_sequence)
        self.verifier = EventVerifier.from_settings(settings)
        self._sequence_sql, self._mark_stale_sql = _sequence_statements(inbox)
        self.stale_total = 0
        self.applied_total = 0
        self.dead_lettered_total = 0
        self.lag = 0
        # --- healing (run / watchdog): see _consume and _watch_once
        self._probe = BrokerProbe(settings, client_id=name)
        self._next: dict[TopicPartition, int] = {}  # next offset to read per partition (after our commit)
        self._anchor: dict[TopicPartition, tuple[int, bytes]] = {}  # an early record read: offset, digest
        self._reseek: set[TopicPartition] = set()  # read these from the beginning once assigned
        self._reset_commits: set[TopicPartition] = set()  # re-read from 0: commit 0 unless records come
        self._suspect = False  # the broker may have lost its log: check the anchors before going on
        self._verify_lock = asyncio.Lock()
        self._rebuild: str | None = None  # why the watchdog wants a fresh Kafka consumer
        self._rebuild_backoff = 1.0
        self._next_rebuild_at = 0.0
        self._wake = asyncio.Event()  # cuts a reconnect backoff short when the broker is back
        self._ok_at = time.monotonic()  # last moment the consumer was caught up or progressing
        self._positions_seen = -1
        self._progress_at = time.monotonic()
        self._probe_failures = 0
        self._last_anchor_check = 0.0
        self._last_stuck_log = 0.0
        self.restart_detected = asyncio.Event()  # the repair job waits on it
        self.stuck_since: datetime | None = None
        self.ended_at: datetime | None = None  # set when run() returns or raises: never ready again
        self.stuck_reason: str | None = None
        self.rebuilds_total = 0
        self.broker_restarts_total = 0
        self.commit_failures_total = 0
        self.end_offsets: dict[TopicPartition, int] = {}

    # --- parsing ------------------------------------------------------------------------------

    def parse(self, record: ConsumerRecord) -> Parsed | None:
        """Envelope + payload model; None if this consumer does not handle the event type.

        The signature is checked first, before the bytes are even parsed: unsigned, an unknown
        source, a bad signature or a source that may not publish on the topic is Poison (dead letter,
        no effect); so is an envelope whose `source` is not its signer."""
        try:
            signed = self.verifier.verify(record.topic, record.headers, record.value)
        except SignatureError as exc:
            raise Poison(f"not authentic: {exc}") from exc
        try:
            envelope = Envelope.from_bytes(record.value)
        except (ValidationError, ValueError, TypeError) as exc:
            raise Poison(f"invalid envelope: {describe_exception(exc)}") from exc
        if envelope.source != signed.source:
            raise Poison(f"envelope source {envelope.source[:64]!r} is not its signer {signed.source!r}")
        if (envelope.type, envelope.version) not in self.handlers:
            return None
        contract = contract_for(envelope.type, envelope.version)
        try:
            event = contract.model_validate(envelope.data)
        except ValidationError as exc:
            raise Poison(f"payload breaks the {envelope.type} v{envelope.version} contract: "
                         f"{describe_exception(exc)}") from exc
        return Parsed(envelope, event, signed.seq)

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

    async def _claim_fresh(self, session: AsyncSession, records: list[tuple[ConsumerRecord, Parsed]]) -> set:
        """Claim inbox rows (`_claim`); of the new events that state their subject's state
        (`LATEST_WINS` contracts), those older than one this consumer already applied of their
        (source, topic, subject) are marked `stale` and left out: returns the ids to apply. Raises
        each (source, topic, subject)'s highest applied sequence in the same transaction, so it
        commits with the effects. Facts (LATEST_WINS False) apply in any order."""
        new = await self._claim(session, records)
        fresh: dict = {}
        for record, parsed in records:
            if parsed.envelope.id in new and parsed.seq is not None and type(parsed.event).LATEST_WINS:
                fresh.setdefault(parsed.envelope.id, (record, parsed))  # one event twice: once
        if not fresh:
            return new
        items = list(fresh.values())
        rows = await session.execute(self._sequence_sql, {
            "consumer": self.name,
            "sources": [p.envelope.source for _, p in items],
            "topics": [r.topic for r, _ in items],
            "subjects": [p.envelope.subject for _, p in items],
            "seqs": [p.seq for _, p in items],
        })
        highest = {(row.source, row.topic, row.subject): row.seq for row in rows}
        stale = []
        for record, parsed in items:  # in batch order: a later, older event of a subject is stale too
            key = (parsed.envelope.source, record.topic, parsed.envelope.subject)
            top = highest.get(key)
            if top is not None and parsed.seq <= top:
                stale.append((record, parsed, top))
            else:
                highest[key] = parsed.seq
        if stale:
            await session.execute(self._mark_stale_sql, {
                "consumer": self.name, "ids": [p.envelope.id for _, p, _ in stale]})
            for record, parsed, top in stale:
                log.info("consumer %s: stale %s %s from %s (seq %d, already applied seq %d of %s %s); "
                         "recorded, not applied", self.name, parsed.envelope.type, parsed.envelope.id,
                         parsed.envelope.source, parsed.seq, top, record.topic, parsed.envelope.subject)
            new -= {p.envelope.id for _, p, _ in stale}
            self.stale_total += len(stale)
        return new

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
                if self.first_lock is not None:
                    await self.first_lock(session)
                new = await self._claim_fresh(session, batch)
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
                    if self.first_lock is not None:
                        await self.first_lock(session)
                    if parsed.envelope.id in await self._claim_fresh(session, [(record, parsed)]):
                        await self._apply(session, parsed)
                        self.applied_total += 1
                return
            except Exception as exc:
                if is_transient(exc):
                    raise
                error = describe_exception(exc)  # never the statement's values (shared.errors)
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
        """A fresh Kafka consumer in the group; partitions marked for re-seek start at the beginning."""
        await ensure_topics(self.settings)  # BrokerUnavailable: retried; TopicsNotCreated: logged at ERROR
        timeout = self.settings.consumer_broker_timeout_seconds
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=self.name,
            client_id=self.name,
            enable_auto_commit=False,
            auto_offset_reset="earliest",  # also what an offset beyond the end of a partition resets to
            fetch_max_wait_ms=self.settings.kafka_fetch_max_wait_ms,
            max_poll_records=500,
            metadata_max_age_ms=10_000,  # notice re-created topics soon (default: 5 minutes)
            # request_timeout_ms stays aiokafka's 40 s: a JoinGroup is held by the broker until the
            # rebalance completes (up to the rebalance timeout, 30 s), and cutting it shorter makes
            # every join fail while an old member of the group is still being waited for
            **kafka_security(self.settings),
        )
        try:
            await bounded(consumer.start(), timeout, "consumer start")
            consumer.subscribe(self.topics, listener=_Rebalance(self, consumer))
        except BaseException:
            with contextlib.suppress(Exception):
                await bounded(consumer.stop(), 5, "consumer stop")
            raise
        return consumer

    async def _on_assigned(self, consumer: AIOKafkaConsumer, assigned: set[TopicPartition]) -> None:
        """Re-seek partitions of a log the broker lost; and one whose committed offset lies beyond its
        end (the broker's topic is younger than the group's offsets): read it from the beginning.

        `seek(tp, 0)`, not seek_to_beginning (a coroutine that waits for the fetcher, not to be awaited
        inside a rebalance): where retention removed offset 0 the fetch is out of range and
        auto_offset_reset="earliest" starts at the log's first record, the same thing. The group's
        committed offset of a re-read partition is set back too (`_reset_commits`, by the poll loop):
        left beyond the end, every later assignment would find the log "lost" again."""
        unknown = [tp for tp in assigned if tp not in self._next and tp not in self._reseek]
        if unknown:
            beyond = await self._beyond_the_end(unknown)
            if beyond:
                self._lost_log(beyond, "the group's offsets lie beyond the end of the partition", rebuild=False)
        restart = assigned & self._reseek
        for tp in restart:
            consumer.seek(tp, 0)
            self._reset_commits.add(tp)
        self._reseek -= restart

    async def _beyond_the_end(self, tps: list[TopicPartition]) -> set[TopicPartition]:
        """Partitions whose committed group offset lies beyond their end, seen twice a moment apart
        (committed read before the end offsets each time, so a commit in between cannot look like
        it); empty when the broker cannot be asked (the watchdog looks again)."""
        found: set[TopicPartition] | None = None
        for attempt in range(2):
            if attempt:
                await asyncio.sleep(LOST_CONFIRM_SECONDS)
            try:
                committed = await self._probe.committed(self.name, tps)
                ends = await self._probe.end_offsets(tps)
            except Exception:
                return set()
            # one past the end is tolerated: the dev broker (tansu) reports the end of a log whose last
            # batch holds several records one short; a topic really younger than the group's offsets
            # is further behind, or is caught by the anchor check once records are read
            beyond = {tp for tp in tps if tp in ends and committed.get(tp, -1) > ends[tp] + END_SLACK}
            found = beyond if found is None else found & beyond
            if not found:
                return set()
        return found

    async def _stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                await bounded(consumer.stop(), 5.0, "consumer stop")
            except TimeoutError:
                log.warning("consumer %s: the Kafka consumer did not stop within 5 s; abandoned", self.name)
            except Exception:
                pass
        producer, self._dlq_producer = self._dlq_producer, None  # reconnects with the next consumer
        if producer is not None:
            with contextlib.suppress(Exception):
                await bounded(producer.stop(), 5.0, "dead-letter producer stop")

    async def run(self) -> None:
        """Consume forever and heal: reconnect after broker or database outages without losing a
        message; a watchdog rebuilds the Kafka consumer when it is stuck or the broker lost its log."""
        watchdog = asyncio.create_task(self._watch(), name=f"{self.name}-watchdog")
        try:
            await self._consume()
        finally:
            # whatever ended the loop, the service is not ready any more (health() says so)
            self.ended_at = datetime.now(UTC)
            watchdog.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait({watchdog}, timeout=5)

    async def _consume(self) -> None:
        delay = 0.5
        timeout = self.settings.consumer_broker_timeout_seconds
        while True:
            try:
                if self._rebuild is not None:
                    reason, self._rebuild = self._rebuild, None
                    await self._stop()
                    self.rebuilds_total += 1
                    log.warning("consumer %s: rebuilding its Kafka consumer (%s)", self.name, reason)
                if self._consumer is None:
                    self._consumer = await self._start()
                    log.info("consumer %s subscribed to %s", self.name, self.topics)
                consumer = self._consumer
                try:
                    batches = await bounded(consumer.getmany(timeout_ms=500), timeout, "poll")
                except TimeoutError:
                    # a poll held up (a rebalance in progress, the broker slow): poll again with the
                    # same consumer; tearing it down mid-join would only start the join over. The
                    # watchdog rebuilds it if it stays stuck.
                    continue
                if batches and await self._log_changed(batches):
                    continue  # rebuilt and re-read from the beginning; these records are not applied
                if self._rebuild is not None:
                    continue  # the watchdog found the log changed while we polled
                for records in batches.values():
                    await self._process_with_db_retry(records)
                # offsets only after every effect of the poll committed; a partition re-read from 0
                # that gave nothing yet has its group offset set back to 0 (see _on_assigned)
                offsets = {tp: records[-1].offset + 1 for tp, records in batches.items()}
                offsets.update({tp: 0 for tp in self._reset_commits - set(offsets)
                                if tp in consumer.assignment()})
                if offsets:
                    try:
                        await bounded(consumer.commit(offsets), timeout, "offset commit")
                    except Exception:
                        self.commit_failures_total += 1
                        raise
                    self._reset_commits -= set(offsets)
                    self._committed(batches)
                delay = 0.5
            except asyncio.CancelledError:
                if _being_cancelled():
                    raise
                # a cancellation from inside a client (not ours, not through `bounded`): reconnect;
                # re-raising it would end this loop for good while the service looks alive
                log.error("consumer %s: a Kafka client call was cancelled from inside; reconnecting", self.name)
                await self._stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            except Exception as exc:
                if isinstance(exc, TopicsNotCreated):
                    log.error("consumer %s: %s; retrying in %.1fs", self.name, exc, delay)
                elif isinstance(exc, BrokerUnavailable):
                    log.warning("consumer %s: broker unavailable, retrying in %.1fs", self.name, delay)
                else:
                    log.warning("consumer %s: broker trouble, reconnecting in %.1fs", self.name, delay,
                                exc_info=True)
                await self._stop()  # uncommitted records are fetched again and the inbox dedups
                self._wake.clear()
                waiter = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait({waiter}, timeout=delay)
                finally:
                    waiter.cancel()
                delay = min(delay * 2, 5.0)

    def _committed(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        for tp, records in batches.items():
            self._next[tp] = records[-1].offset + 1
            if tp not in self._anchor:
                self._anchor[tp] = (records[0].offset, _digest(records[0]))
        self._progress_at = time.monotonic()

    async def _log_changed(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> bool:
        """Before applying a poll: if the broker may have lost its log (it was unreachable, or a
        partition does not continue where we left it), check our anchors. True if it did: the
        records are dropped, the consumer rebuilt, the partitions re-read from the beginning."""
        jumped = any(tp in self._next and records[0].offset != self._next[tp] for tp, records in batches.items())
        if not (self._suspect or jumped):
            return False
        lost = await self._verify_log()
        if not lost:
            return False
        self._lost_log(set(lost), _why(lost))
        return True

    async def _verify_log(self) -> dict[TopicPartition, str]:
        """Partitions whose log is not the one we read: gone, shorter than our offset, or holding
        another record where our anchor was, found twice a moment apart (a real loss stays; a
        broker's passing answer does not trigger a re-read of whole topics). Works the same on any
        Kafka broker."""
        async with self._verify_lock:
            first = await self._find_lost()
            lost: dict[TopicPartition, str] = {}
            if first:
                await asyncio.sleep(LOST_CONFIRM_SECONDS)
                again = await self._find_lost()
                lost = {tp: why for tp, why in again.items() if tp in first}
            self._suspect = False
            self._last_anchor_check = time.monotonic()
            return lost

    async def _find_lost(self) -> dict[TopicPartition, str]:
        """One look at the broker for _verify_log: each partition found lost, and why."""
        known = set(self._next) | set(self._anchor)
        if not known:
            return {}
        present, _missing = await self._probe.partitions(sorted({tp.topic for tp in known}))
        present_set = set(present)
        lost = {tp: "the partition is gone" for tp in known if tp not in present_set}
        check = sorted(tp for tp in known if tp in present_set)
        ends = await self._probe.end_offsets(check)
        begins = await self._probe.beginning_offsets(check)
        # (not "our offset lies beyond its end": the dev broker reports the end of a log whose last
        # batch holds several records one short, so that would fire on a healthy broker; the anchor
        # below sees a younger log as surely)
        wanted = {}
        for tp in check:
            if tp in lost or tp not in self._anchor:
                continue
            offset = self._anchor[tp][0]
            if offset < begins[tp]:  # retention removed it: anchor again on the next record
                del self._anchor[tp]
            elif offset >= ends[tp]:
                lost[tp] = f"it ends at {ends[tp]}, before the record we read at {offset}"
            else:
                wanted[tp] = offset
        for tp, record in (await self._probe.records_at(wanted)).items():
            anchor = self._anchor.get(tp)  # (the poll loop may have dropped it meanwhile)
            if anchor is not None and record is None:
                lost[tp] = f"it has no record at offset {anchor[0]} any more"
            elif anchor is not None and _digest(record) != anchor[1]:
                lost[tp] = f"another record than the one we read is at offset {anchor[0]}"
        return lost

    def _lost_log(self, lost: set[TopicPartition], why: str, *, rebuild: bool = True) -> None:
        """The broker's log of these partitions is younger than what we read: start them again
        (rebuild: with a fresh Kafka consumer; not when called while partitions are being assigned,
        which re-seeks them at once)."""
        topics = {tp.topic for tp in lost}
        self.broker_restarts_total += 1
        log.error("consumer %s: the broker lost its log of %s (%s): re-reading from the beginning and "
                  "repairing from the producers' outboxes", self.name,
                  ", ".join(sorted(f"{tp.topic}[{tp.partition}]" for tp in lost)), why)
        for tp in list(self._next) + list(self._anchor):
            if tp.topic in topics:
                self._next.pop(tp, None)
                self._anchor.pop(tp, None)
        self._reseek |= lost | {tp for tp in self.end_offsets if tp.topic in topics}
        if rebuild:
            self._rebuild = "the broker lost its log"
        self.restart_detected.set()
        self._wake.set()

    # --- the watchdog -------------------------------------------------------------------------

    async def _watch(self) -> None:
        """Every consumer_watch_seconds: the broker's real end offsets against ours (see _watch_once)."""
        while True:
            await asyncio.sleep(self.settings.consumer_watch_seconds)
            try:
                await self._watch_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("consumer %s: watchdog check failed", self.name, exc_info=True)

    async def _watch_once(self) -> None:
        now = time.monotonic()
        try:
            partitions, missing = await self._probe.partitions(self.topics)
            if missing:
                with contextlib.suppress(BrokerUnavailable):
                    await ensure_topics(self.settings, [*self.topics, *map(dead_letter, self.topics)])
            ends = await self._probe.end_offsets(partitions)
            committed = await self._probe.committed(self.name, partitions)
            unknown = [tp for tp in partitions if committed.get(tp, -1) < 0 and tp not in self._next]
            begins = await self._probe.beginning_offsets(unknown)
        except Exception as exc:
            self._probe_failures += 1
            self._suspect = True  # unreachable: it may come back without the log we read
            if self._probe_failures % 5 == 0 or not is_unreachable(exc):
                await self._probe.close()  # fresh clients next time
            self._judge(now, caught_up=False, progressed=False,
                        reason=f"broker unreachable ({type(exc).__name__})")
            return
        if self._probe_failures:
            self._probe_failures = 0
            self._wake.set()  # the broker is back: cut a reconnect backoff short
            # it may have come back without what it acknowledged before the outage, even where we
            # had read nothing of it to compare: repair from the producers' outboxes now
            self.restart_detected.set()
        self.end_offsets = ends
        if self._suspect or now - self._last_anchor_check >= ANCHOR_CHECK_SECONDS:
            if self._rebuild is None and (lost := await self._verify_log()):
                self._lost_log(set(lost), _why(lost))
        positions = {tp: max(committed.get(tp, -1), self._next.get(tp, -1), begins.get(tp, 0))
                     for tp in partitions}
        self._update_lag(ends, positions)
        consumer = self._consumer
        mine = [tp for tp in (consumer.assignment() if consumer else ()) if tp in positions] or partitions
        waiting = sum(max(0, ends[tp] - positions[tp]) for tp in mine)
        total = sum(positions[tp] for tp in mine)
        recent = now - self.settings.consumer_watch_seconds * 2
        progressed = total > self._positions_seen >= 0 or self._progress_at > recent
        self._positions_seen = total
        reason = (f"no progress while {waiting} events wait" if consumer and consumer.assignment()
                  else f"no partitions assigned while {waiting} events wait")
        self._judge(now, caught_up=waiting == 0, progressed=progressed, reason=reason)

    def _judge(self, now: float, *, caught_up: bool, progressed: bool, reason: str) -> None:
        """Stuck = neither caught up nor progressing for consumer_stuck_seconds: say so, rebuild."""
        if caught_up or progressed:
            self._ok_at = now
            if self.stuck_since is not None:
                log.warning("consumer %s: recovered (stuck since %s, %.1f s)", self.name,
                            self.stuck_since.isoformat(), (datetime.now(UTC) - self.stuck_since).total_seconds())
                self.stuck_since, self.stuck_reason = None, None
                self._rebuild_backoff = 1.0
            return
        stuck_for = now - self._ok_at
        if stuck_for < self.settings.consumer_stuck_seconds:
            return
        if self.stuck_since is None:
            self.stuck_since = datetime.fromtimestamp(time.time() - stuck_for, UTC)
        self.stuck_reason = reason
        if now - self._last_stuck_log >= 60 or self._last_stuck_log == 0:
            self._last_stuck_log = now
            log.error("consumer %s: stuck since %s (%s)", self.name, self.stuck_since.isoformat(), reason)
        if now >= self._next_rebuild_at and self._rebuild is None and self._consumer is not None:
            self._rebuild = f"stuck: {reason}"
            # a new member needs time to join: the broker may wait a session timeout for the old one
            # and then rebalance; rebuilding again before that would start the join over for ever
            self._next_rebuild_at = now + max(self._rebuild_backoff,
                                              self.settings.consumer_stuck_seconds + GROUP_SESSION_SECONDS)
            self._rebuild_backoff = min(self._rebuild_backoff * 2, self.settings.consumer_rebuild_max_backoff_seconds)

    def health(self) -> dict:
        """For /readyz and /metrics: stuck or not, since when and why; lag against the broker."""
        if self.ended_at is not None:
            return {"ok": False, "stuck_since": self.ended_at.isoformat(),
                    "stuck_seconds": round((datetime.now(UTC) - self.ended_at).total_seconds(), 1),
                    "reason": "its consume loop has ended", "lag": self.lag}
        stuck = self.stuck_since is not None
        return {
            "ok": not stuck,
            "stuck_since": self.stuck_since.isoformat() if stuck else None,
            "stuck_seconds": round((datetime.now(UTC) - self.stuck_since).total_seconds(), 1) if stuck else 0.0,
            "reason": self.stuck_reason if stuck else None,
            "lag": self.lag,
        }

    async def _process_with_db_retry(self, records: list[ConsumerRecord]) -> None:
        delay = 0.5
        while True:
            try:
                await self.process(records)
                return
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("consumer %s: database unavailable or busy, retrying in %.1fs: %s", self.name, delay,
                            describe_exception(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _update_lag(self, ends: dict[TopicPartition, int], positions: dict[TopicPartition, int]) -> None:
        """Events on the broker not yet consumed by the group (for /metrics): the broker's real end
        offsets (read by the watchdog) against the group's committed offsets or ours."""
        self.lag = sum(max(0, end - positions.get(tp, 0)) for tp, end in ends.items())

    async def close(self) -> None:
        """Stop the Kafka clients, each within a few seconds whatever the broker does."""
        await self._stop()
        await self._probe.close()
        if self._dlq_producer is not None:
            with contextlib.suppress(Exception):
                await bounded(self._dlq_producer.stop(), 5.0, "dead-letter producer stop")
            self._dlq_producer = None


def _being_cancelled() -> bool:
    """True when the running task itself is being cancelled (shutdown), not just a call inside it."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


END_SLACK = 1  # see _beyond_the_end
LOST_CONFIRM_SECONDS = 1.0  # a log found lost is looked at again this much later before it counts
GROUP_SESSION_SECONDS = 10.0  # aiokafka's session_timeout_ms default: how long a broker keeps a silent member
ANCHOR_CHECK_SECONDS = 10.0  # the watchdog checks that the broker still holds what we read this often


def _why(lost: dict[TopicPartition, str]) -> str:
    return "; ".join(f"{tp.topic}[{tp.partition}]: {why}" for tp, why in sorted(lost.items()))


def _digest(record: ConsumerRecord) -> bytes:
    return hashlib.blake2b((record.key or b"") + b"\0" + (record.value or b""), digest_size=16).digest()


class _Rebalance(ConsumerRebalanceListener):
    """Re-seeks partitions as they are assigned (see InboxConsumer._on_assigned)."""

    def __init__(self, owner: InboxConsumer, consumer: AIOKafkaConsumer) -> None:
        self.owner, self.consumer = owner, consumer

    async def on_partitions_revoked(self, revoked) -> None:
        pass  # offsets are committed after every poll

    async def on_partitions_assigned(self, assigned) -> None:
        await self.owner._on_assigned(self.consumer, set(assigned))


def _sequence_statements(inbox: Table):
    """(read-and-raise the highest sequences, mark events stale), fixed statements for any batch size."""
    sequences: Table = inbox.info["sequence_table"]

    def qualified(table: Table) -> str:
        return f'"{table.schema}"."{table.name}"' if table.schema else f'"{table.name}"'

    seq_table, inbox_table = qualified(sequences), qualified(inbox)
    # One round trip: `previous` reads the highest applied sequence of each key from the statement's
    # snapshot (before `raised` writes), `raised` lifts it to the batch's highest.
    read_and_raise = text(
        "WITH input AS (SELECT source, topic, subject, max(seq) AS seq FROM unnest("
        "CAST(:sources AS text[]), CAST(:topics AS text[]), CAST(:subjects AS text[]), CAST(:seqs AS bigint[])) "
        "AS i(source, topic, subject, seq) GROUP BY source, topic, subject), "
        f"previous AS (SELECT s.source, s.topic, s.subject, s.seq FROM {seq_table} s "
        "JOIN input USING (source, topic, subject) WHERE s.consumer = :consumer), "
        f"raised AS (INSERT INTO {seq_table} AS s (consumer, source, topic, subject, seq) "
        "SELECT :consumer, source, topic, subject, seq FROM input "
        "ON CONFLICT (consumer, source, topic, subject) DO UPDATE SET seq = EXCLUDED.seq, updated_at = now() "
        "WHERE s.seq < EXCLUDED.seq) "
        "SELECT source, topic, subject, seq FROM previous"
    ).columns(source=Text, topic=Text, subject=Text, seq=BigInteger)
    mark_stale = text(
        f"UPDATE {inbox_table} SET status = 'stale' WHERE consumer = :consumer AND event_id = ANY(CAST(:ids AS uuid[]))"
    )
    return read_and_raise, mark_stale


async def applied(session: AsyncSession, inbox: Table, consumer: str) -> int:
    """How many events a consumer applied (for tests and metrics)."""
    return await session.scalar(
        select(func.count()).select_from(inbox)
        .where(inbox.c.consumer == consumer, inbox.c.status == "applied")
    )


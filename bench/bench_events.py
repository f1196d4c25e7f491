"""Event latency and throughput through the outbox and the inbox, beside a raw aiokafka round trip.

Everything runs in this process against its own embedded PostgreSQL and broker on 127.0.0.1
(or BENCH_DATABASE_URL / BENCH_KAFKA_BOOTSTRAP_SERVERS if set), with topics, consumer groups and
schemas unique to the run:

1. raw: an aiokafka producer (the relay's settings: acks=all, linger 0) sends one message at a
   time; a consumer in a group (manual commit, the inbox consumer's fetch settings) receives it.
   Latency = send() called -> record returned by getmany(); the next message is sent only after
   the previous one arrived and its offset was committed.
2. latency: one event per transaction, a transaction every `interval` ms, with an OutboxRelay and
   an InboxConsumer running. Latency = the outbox transaction's COMMIT returned -> the consumer's
   transaction (inbox row + effect row) COMMIT returned, both taken with time.perf_counter() in
   SQLAlchemy `after_commit` hooks. The consumer's Kafka offset commit comes right after and is
   not included (the effect is already durable and visible then).
3. throughput: M events committed as fast as a few concurrent writers can, in transactions of
   50 events ("batched") and of 1 event ("single"). events/s = M / (first transaction started ->
   last effect committed); the commit rate of the writers alone and latency under load are
   reported beside it.

The writers, the relay and the consumer share this one Python process and event loop (in
production they are separate processes), so the throughput figures are a lower bound on 2 cores.
"""

import argparse
import asyncio
import base64
import contextlib
import os
import secrets
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from sqlalchemy import Column, DateTime, Table, Uuid, text
from sqlalchemy import event as sa_event
from sqlalchemy.dialects.postgresql import insert

from bench import ratio, summarize_ms
from shared.db import Database, service_metadata
from shared.devstack import infra
from shared.events.contracts import EligibilityChanged
from shared.events.envelope import Envelope
from shared.events.inbox import InboxConsumer, define_inbox_table
from shared.events.kafka import ensure_topics, make_producer
from shared.events.outbox import Outbox, OutboxRelay, define_outbox_table
from shared.settings import CommonSettings

TARGET_P50_MS = 15.0
TARGET_P99_MS = 100.0
TARGET_EVENTS_PER_S = 2000.0
PHASE_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class Sizes:
    raw_n: int
    raw_warmup: int
    latency_n: int
    latency_interval_s: float
    warmup_events: int
    throughput_m: int
    batch_size: int
    single_m: int
    writers: int


def sizes(quick: bool) -> Sizes:
    if quick:
        return Sizes(raw_n=200, raw_warmup=20, latency_n=200, latency_interval_s=0.005,
                     warmup_events=20, throughput_m=5_000, batch_size=50, single_m=2_000, writers=4)
    return Sizes(raw_n=500, raw_warmup=50, latency_n=500, latency_interval_s=0.005,
                 warmup_events=50, throughput_m=20_000, batch_size=50, single_m=5_000, writers=4)


# --- infrastructure -------------------------------------------------------------------------------

def random_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def make_settings(database_url: str, bootstrap: str) -> CommonSettings:
    return CommonSettings(
        environment="test", database_url=database_url, kafka_bootstrap_servers=bootstrap,
        kafka_idempotent_producer=False,  # the dev broker refuses InitProducerId
        field_encryption_key=random_key(), field_hash_key=random_key(),
        outbox_poll_seconds=1.0, log_json=False,
    )


@contextlib.contextmanager
def servers() -> Iterator[tuple[str, str]]:
    """(database URL, bootstrap servers): our own embedded PostgreSQL and broker, stopped on exit."""
    with contextlib.ExitStack() as stack:
        url = os.environ.get("BENCH_DATABASE_URL")
        bootstrap = os.environ.get("BENCH_KAFKA_BOOTSTRAP_SERVERS")
        if not (url and bootstrap):
            tmp = Path(stack.enter_context(
                tempfile.TemporaryDirectory(prefix="bench-events-", ignore_cleanup_errors=True)))
            if not url:
                postgres = infra.start_postgres(tmp / "pg", cleanup="delete")
                stack.callback(postgres.stop)
                url = postgres.url
            if not bootstrap:
                # started from this (the main) thread: the broker dies with the thread that spawned it
                broker = infra.start_broker(infra.free_port(), log_path=tmp / "broker.log")
                stack.callback(broker.stop)
                bootstrap = broker.bootstrap
        yield url, bootstrap


async def cancel(*tasks: asyncio.Task) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def wait_for_event(event: asyncio.Event, timeout: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)
    return event.is_set()


# --- 1. raw round trip ----------------------------------------------------------------------------

def sample_envelope() -> Envelope:
    """An envelope of the size the outbox publishes, for the raw round trip."""
    event = EligibilityChanged(supervisor_id=uuid.uuid4(), eligible=False, reasons=["suspended"])
    return Envelope(type=event.TYPE, version=event.VERSION, source="bench", correlation_id="bench",
                    subject=event.subject, data=event.model_dump(mode="json"))


async def raw_round_trip(settings: CommonSettings, run_id: str, n: int, warmup: int) -> list[float]:
    """Seconds from send() to receipt of n messages, one at a time (after `warmup` discarded ones)."""
    topic = f"bench.{run_id}.raw"
    await ensure_topics(settings, [topic])
    producer = make_producer(settings, client_id=f"bench-{run_id}-raw")
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.kafka_bootstrap_servers, group_id=f"bench-{run_id}-raw",
        client_id=f"bench-{run_id}-raw", enable_auto_commit=False, auto_offset_reset="earliest",
        fetch_max_wait_ms=100, max_poll_records=500,  # as the inbox consumer
    )
    received: dict[int, float] = {}
    arrived = asyncio.Event()
    value = sample_envelope().to_bytes()

    async def consume() -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            now = time.perf_counter()
            for tp, records in batches.items():
                for record in records:
                    received[int(record.key)] = now
                await consumer.commit({tp: records[-1].offset + 1})
            if batches:
                arrived.set()

    latencies: list[float] = []
    task = None
    try:
        await producer.start()
        await consumer.start()
        task = asyncio.create_task(consume())
        for seq in range(warmup + n):
            arrived.clear()
            sent = time.perf_counter()
            await producer.send(topic, value, key=str(seq).encode())
            deadline = sent + (60.0 if seq < warmup else 10.0)  # the first ones wait for the group join
            while seq not in received:
                if task.done():
                    task.result()
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise TimeoutError(f"raw message {seq} not received")
                await wait_for_event(arrived, left)
                arrived.clear()
            if seq >= warmup:
                latencies.append(received[seq] - sent)
    finally:
        if task is not None:
            await cancel(task)
        with contextlib.suppress(Exception):
            await consumer.stop()
        with contextlib.suppress(Exception):
            await producer.stop()
    return latencies


# --- 2./3. outbox -> relay -> broker -> inbox consumer --------------------------------------------

@dataclass
class Tracker:
    """When each event's producing transaction and its effect's transaction committed."""

    expected: int = 0
    committed: dict[uuid.UUID, float] = field(default_factory=dict)
    applied: dict[uuid.UUID, float] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def on_committed(self, ids: list[uuid.UUID], at: float) -> None:
        for event_id in ids:
            self.committed[event_id] = at

    def on_applied(self, ids: list[uuid.UUID], at: float) -> None:
        for event_id in ids:
            self.applied.setdefault(event_id, at)
        if self.expected and len(self.applied) >= self.expected:
            self.done.set()

    def latencies(self) -> list[float]:
        return [self.applied[i] - t for i, t in self.committed.items() if i in self.applied]


class Pipeline:
    """A pretend service's schema (outbox, inbox, effect) with its relay and consumer running."""

    def __init__(self, db: Database, settings: CommonSettings, run_id: str) -> None:
        self.db = db
        self.settings = settings
        self.schema = f"bench_{run_id}"
        self.topic = f"bench.{run_id}.registry.supervisors"
        # EligibilityChanged on the wire (same type and version), on a topic of this run only
        self.event_cls = type("BenchEligibilityChanged", (EligibilityChanged,),
                              {"TOPIC": self.topic, "__module__": __name__})
        metadata = service_metadata(self.schema)
        self.outbox_table = define_outbox_table(metadata)
        self.inbox = define_inbox_table(metadata)
        self.effect = Table(
            "effect", metadata,
            Column("event_id", Uuid, primary_key=True),
            Column("applied_at", DateTime(timezone=True), nullable=False,
                   server_default=text("clock_timestamp()")),
        )
        self.metadata = metadata
        self.outbox = Outbox(self.outbox_table, source="bench")
        self.relay = OutboxRelay(db, self.outbox_table, settings, name=f"bench-{run_id}")
        self.consumer = InboxConsumer(
            name=f"bench-{run_id}-consumer", db=db, inbox=self.inbox, settings=settings,
            handlers={self.event_cls: self.handle},
        )
        self.tracker = Tracker()

    async def handle(self, session, event, envelope: Envelope) -> None:
        """The consumer's effect: one row per event; its commit time goes to the tracker."""
        await session.execute(
            insert(self.effect).values(event_id=envelope.id).on_conflict_do_nothing()
        )
        ids = session.info.get("bench_ids")
        if ids is None:
            ids = session.info["bench_ids"] = []
            tracker = self.tracker
            sa_event.listen(session.sync_session, "after_commit",
                            lambda _s: tracker.on_applied(ids, time.perf_counter()))
        ids.append(envelope.id)

    def new_event(self) -> EligibilityChanged:
        return self.event_cls(supervisor_id=uuid.uuid4(), eligible=False, reasons=["suspended"])

    async def commit(self, count: int) -> None:
        """One transaction with `count` events; the COMMIT's return time goes to the tracker."""
        tracker = self.tracker
        async with self.db.transaction() as session:
            ids = [(await self.outbox.add(session, self.new_event())).id for _ in range(count)]
            sa_event.listen(session.sync_session, "after_commit",
                            lambda _s: tracker.on_committed(ids, time.perf_counter()))

    @contextlib.asynccontextmanager
    async def running(self, warmup_events: int) -> AsyncIterator["Pipeline"]:
        """Create the schema and topic, start relay and consumer, wait until events flow."""
        async with self.db.engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
            await conn.run_sync(self.metadata.create_all)
        await ensure_topics(self.settings, [self.topic])
        tasks = [asyncio.create_task(self.relay.run()), asyncio.create_task(self.consumer.run())]
        try:
            # warm-up: producer connected, consumer group joined, caches filled
            self.tracker = Tracker(expected=warmup_events)
            for _ in range(warmup_events):
                await self.commit(1)
            if not await wait_for_event(self.tracker.done, PHASE_TIMEOUT_S):
                raise TimeoutError("warm-up events never reached the consumer")
            yield self
        finally:
            await cancel(*tasks)
            await self.relay.close()
            await self.consumer.close()

    async def measure_latency(self, n: int, interval: float) -> dict:
        """n single-event transactions, paced every `interval` seconds."""
        self.tracker = tracker = Tracker(expected=n)
        start = time.perf_counter()
        for i in range(n):
            delay = start + i * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.commit(1)
        complete = await wait_for_event(tracker.done, PHASE_TIMEOUT_S)
        return {"complete": complete, "applied": len(tracker.applied), **summarize_ms(tracker.latencies())}

    async def measure_throughput(self, m: int, batch: int, writers: int) -> dict:
        """m events from `writers` concurrent writers in transactions of `batch` events."""
        self.tracker = tracker = Tracker(expected=m)
        transactions = m // batch
        shares = [transactions // writers + (1 if k < transactions % writers else 0) for k in range(writers)]

        async def writer(share: int) -> None:
            for _ in range(share):
                await self.commit(batch)

        start = time.perf_counter()
        await asyncio.gather(*(writer(s) for s in shares))
        committed_at = time.perf_counter()
        complete = await wait_for_event(tracker.done, PHASE_TIMEOUT_S)
        total = transactions * batch
        last_effect = max(tracker.applied.values(), default=start)
        elapsed = last_effect - start
        return {
            "events": total, "batch": batch, "writers": writers, "complete": complete,
            "applied": len(tracker.applied),
            "events_per_s": round(len(tracker.applied) / elapsed, 1) if elapsed > 0 else None,
            "commit_events_per_s": round(total / (committed_at - start), 1),
            "seconds": round(elapsed, 3),
            "drain_after_last_commit_s": round(max(0.0, last_effect - committed_at), 3),
            "latency_under_load": summarize_ms(tracker.latencies()),
        }


# --- the benchmark --------------------------------------------------------------------------------

def build_rows(raw: dict, latency: dict, batched: dict, single: dict) -> list[dict]:
    def lat_row(metric: str, key: str, target: float) -> dict:
        value = latency.get(key)
        return {"metric": metric, "value": value, "unit": "ms", "baseline": raw.get(key),
                "ratio": ratio(value, raw.get(key)), "target": f"<= {target:g} ms",
                "ok": value is not None and latency["complete"] and value <= target}

    def tput_row(metric: str, result: dict) -> dict:
        value = result["events_per_s"]
        return {"metric": metric, "value": value, "unit": "events/s",
                "target": f">= {TARGET_EVENTS_PER_S:g}/s",
                "ok": value is not None and result["complete"] and value >= TARGET_EVENTS_PER_S}

    return [
        {"metric": "raw aiokafka round trip p50", "value": raw.get("p50_ms"), "unit": "ms"},
        {"metric": "raw aiokafka round trip p99", "value": raw.get("p99_ms"), "unit": "ms"},
        lat_row("outbox commit -> effect p50", "p50_ms", TARGET_P50_MS),
        lat_row("outbox commit -> effect p99", "p99_ms", TARGET_P99_MS),
        tput_row(f"sustained, {batched['batch']} events/txn", batched),
        {"metric": f"  writers' commit rate ({batched['batch']}/txn)",
         "value": batched["commit_events_per_s"], "unit": "events/s"},
        {"metric": "  latency under load p50", "value": batched["latency_under_load"].get("p50_ms"),
         "unit": "ms"},
        {"metric": "  latency under load p99", "value": batched["latency_under_load"].get("p99_ms"),
         "unit": "ms"},
        tput_row("sustained, 1 event/txn", single),
        {"metric": "  writers' commit rate (1/txn)", "value": single["commit_events_per_s"],
         "unit": "events/s"},
        {"metric": "  latency under load p50", "value": single["latency_under_load"].get("p50_ms"),
         "unit": "ms"},
        {"metric": "  latency under load p99", "value": single["latency_under_load"].get("p99_ms"),
         "unit": "ms"},
    ]


async def main(args: argparse.Namespace) -> dict:
    size = sizes(getattr(args, "quick", False))
    run_id = uuid.uuid4().hex[:8]
    with servers() as (database_url, bootstrap):
        settings = make_settings(database_url, bootstrap)
        raw = summarize_ms(await raw_round_trip(settings, run_id, size.raw_n, size.raw_warmup))
        db = Database(database_url, pool_size=size.writers + 4)
        try:
            pipeline = Pipeline(db, settings, run_id)
            async with pipeline.running(size.warmup_events):
                latency = await pipeline.measure_latency(size.latency_n, size.latency_interval_s)
                batched = await pipeline.measure_throughput(size.throughput_m, size.batch_size,
                                                            size.writers)
                single = await pipeline.measure_throughput(size.single_m, 1, size.writers)
        finally:
            await db.dispose()
    notes = [
        f"raw: send() -> getmany() of one message at a time, n={raw['n']}.",
        f"latency: outbox COMMIT -> consumer's effect COMMIT, one event per txn every "
        f"{size.latency_interval_s * 1000:g} ms, n={latency.get('n')}.",
        "sustained: first txn started -> last effect committed; writers, relay and consumer "
        "share one Python process.",
        "ratio = outbox latency / raw round trip at the same percentile.",
    ]
    for name, result in (("latency", latency), ("batched", batched), ("single", single)):
        if not result["complete"]:
            notes.append(f"INCOMPLETE: {name} phase saw {result['applied']} effects before "
                         f"the {PHASE_TIMEOUT_S:g} s timeout.")
    return {
        "name": "events",
        "rows": build_rows(raw, latency, batched, single),
        "notes": notes,
        "targets": {"p50_ms": TARGET_P50_MS, "p99_ms": TARGET_P99_MS,
                    "events_per_s": TARGET_EVENTS_PER_S},
        "sizes": size.__dict__,
        "raw": raw,
        "latency": latency,
        "throughput_batched": batched,
        "throughput_single": single,
        "ratios": {"p50": ratio(latency.get("p50_ms"), raw.get("p50_ms")),
                   "p99": ratio(latency.get("p99_ms"), raw.get("p99_ms"))},
        "cpu_count": os.cpu_count(),
    }

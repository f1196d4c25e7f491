"""Event latency and throughput through the outbox and the inbox, beside a raw aiokafka round trip.

Everything runs in this process against its own embedded PostgreSQL and broker on 127.0.0.1
(or BENCH_DATABASE_URL / BENCH_KAFKA_BOOTSTRAP_SERVERS if set), with topics, consumer groups and
schemas unique to the run. Both sides fetch with fetch_max_wait_ms=FETCH_MAX_WAIT_MS (10), as the
dev stack sets `kafka_fetch_max_wait_ms`: the dev broker (tansu) holds every fetch for the full
wait even when records are waiting, Apache Kafka answers as soon as there is data.

1. raw: an aiokafka producer (the relay's settings: acks=all, linger 0) sends one message at a
   time; a consumer in a group (manual commit, max_poll_records 500, the inbox consumer's
   settings) receives it. Latency = send() called -> record returned by getmany(); the next
   message is sent only after the previous one arrived and its offset was committed.
2. latency: one event per transaction, a transaction every LATENCY_INTERVAL_S, with an OutboxRelay
   and an InboxConsumer running. Latency = the outbox transaction's COMMIT returned -> the
   consumer's transaction (inbox row + effect row) COMMIT returned, both taken with
   time.perf_counter() in SQLAlchemy `after_commit` hooks. The consumer's Kafka offset commit comes
   right after and is not included (the effect is already durable and visible then).
3. throughput: M events committed as fast as a few concurrent writers can, in transactions of
   50 events (one `Outbox.add_many`) and of 1 event. events/s = applied / (first transaction
   started -> last effect committed); the commit rate of the writers alone and latency under load
   are reported beside it.

The writers, the relay and the consumer share this one Python process and event loop (in
production they are separate processes), so the throughput figures are a lower bound on 2 cores.
"""

import argparse
import asyncio
import base64
import contextlib
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, field

from aiokafka import AIOKafkaConsumer
from sqlalchemy import Column, DateTime, Table, Uuid, text
from sqlalchemy import event as sa_event
from sqlalchemy.dialects.postgresql import insert

from bench import ratio, servers, summarize_ms
from shared.db import Database, service_metadata
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
# What the dev stack and the tests set as kafka_fetch_max_wait_ms; the raw baseline uses it too.
# The dev broker (tansu) holds every fetch this long even when records are waiting (Apache Kafka
# answers at once), so the raw baseline and the inbox consumer wait alike.
FETCH_MAX_WAIT_MS = 10
LATENCY_INTERVAL_S = 0.020  # the paced latency run: one single-event transaction every 20 ms


@dataclass(frozen=True)
class Sizes:
    raw_n: int
    raw_warmup: int
    latency_n: int  # paced at LATENCY_INTERVAL_S: n * 20 ms
    warmup_events: int
    throughput_m: int
    batch_size: int
    single_m: int
    writers: int
    batched_cap_s: float  # writers stop early after this long, to bound the run time on a slow machine
    single_cap_s: float


def sizes(quick: bool) -> Sizes:
    if quick:
        return Sizes(raw_n=200, raw_warmup=10, latency_n=200, warmup_events=20,
                     throughput_m=5_000, batch_size=50, single_m=1_000, writers=4,
                     batched_cap_s=6.0, single_cap_s=4.0)
    return Sizes(raw_n=500, raw_warmup=20, latency_n=500, warmup_events=50,
                 throughput_m=20_000, batch_size=50, single_m=4_000, writers=4,
                 batched_cap_s=15.0, single_cap_s=10.0)


# --- infrastructure -------------------------------------------------------------------------------

def random_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def make_settings(database_url: str, bootstrap: str) -> CommonSettings:
    return CommonSettings(
        environment="test", database_url=database_url, kafka_bootstrap_servers=bootstrap,
        kafka_idempotent_producer=False,  # the dev broker refuses InitProducerId
        field_encryption_key=random_key(), field_hash_key=random_key(),
        outbox_poll_seconds=1.0, log_json=False,
        kafka_fetch_max_wait_ms=FETCH_MAX_WAIT_MS,  # as the dev stack: the inbox consumer uses it
    )


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


async def raw_round_trip(settings: CommonSettings, name: str, n: int, warmup: int) -> list[float]:
    """Seconds from send() to receipt of n messages, one at a time (after `warmup` discarded ones)."""
    topic = f"bench.{name}"
    await ensure_topics(settings, [topic])
    producer = make_producer(settings, client_id=f"bench-{name}")  # the relay's producer settings
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.kafka_bootstrap_servers, group_id=f"bench-{name}",
        client_id=f"bench-{name}", enable_auto_commit=False, auto_offset_reset="earliest",
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS, max_poll_records=500,  # as InboxConsumer with our settings
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
        self._check()

    def expect(self, n: int) -> None:
        """Wait for n effects (set when the writers know how many they committed)."""
        self.expected = n
        self._check()

    def _check(self) -> None:
        if self.expected and len(self.applied) >= self.expected:
            self.done.set()

    def latencies(self) -> list[float]:
        return [self.applied[i] - t for i, t in self.committed.items() if i in self.applied]


class Pipeline:
    """A pretend service's schema (outbox, inbox, effect) with its relay and consumer running."""

    def __init__(self, db: Database, settings: CommonSettings, name: str) -> None:
        self.db = db
        self.settings = settings
        self.schema = "bench_" + name.replace("-", "_")
        self.topic = f"bench.{name}.registry.supervisors"
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
        self.relay = OutboxRelay(db, self.outbox_table, settings, name=f"bench-{name}")
        self.consumer = InboxConsumer(
            name=f"bench-{name}-consumer", db=db, inbox=self.inbox, settings=settings,
            handlers={self.event_cls: self.handle},
        )
        self.tracker = Tracker()
        self.warmup_seconds = 0.0
        self._effect_insert = insert(self.effect).on_conflict_do_nothing()

    async def handle(self, session, event, envelope: Envelope) -> None:
        """The consumer's effect: one row per event; its commit time goes to the tracker."""
        # a statement built once and executed with parameters, as a well-written handler does
        await session.execute(self._effect_insert, {"event_id": envelope.id})
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
            if count == 1:
                envelopes = [await self.outbox.add(session, self.new_event())]
            else:
                envelopes = await self.outbox.add_many(session, [self.new_event() for _ in range(count)])
            ids = [envelope.id for envelope in envelopes]
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
            started = time.perf_counter()
            self.tracker = Tracker(expected=warmup_events)
            for _ in range(warmup_events):
                await self.commit(1)
            if not await wait_for_event(self.tracker.done, PHASE_TIMEOUT_S):
                raise TimeoutError("warm-up events never reached the consumer")
            self.warmup_seconds = round(time.perf_counter() - started, 1)
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

    async def measure_throughput(self, m: int, batch: int, writers: int, cap_s: float) -> dict:
        """m events from `writers` concurrent writers in transactions of `batch` events.

        Writers start no new transaction after `cap_s` seconds (the run stays bounded on a slow or
        busy machine); the rate is computed from the events actually committed.
        """
        self.tracker = tracker = Tracker()
        transactions = m // batch
        shares = [transactions // writers + (1 if k < transactions % writers else 0) for k in range(writers)]
        committed = 0

        async def writer(share: int) -> None:
            nonlocal committed
            for _ in range(share):
                if time.perf_counter() > deadline:
                    return
                await self.commit(batch)
                committed += batch

        start = time.perf_counter()
        deadline = start + cap_s
        await asyncio.gather(*(writer(s) for s in shares))
        committed_at = time.perf_counter()
        tracker.expect(committed)
        complete = await wait_for_event(tracker.done, PHASE_TIMEOUT_S)
        total = committed
        last_effect = max(tracker.applied.values(), default=start)
        elapsed = last_effect - start
        return {
            "events": total, "planned": transactions * batch, "capped": total < transactions * batch,
            "batch": batch, "writers": writers, "complete": complete,
            "applied": len(tracker.applied),
            "events_per_s": round(len(tracker.applied) / elapsed, 1) if elapsed > 0 else None,
            "commit_events_per_s": round(total / (committed_at - start), 1),
            "seconds": round(elapsed, 3),
            "drain_after_last_commit_s": round(max(0.0, last_effect - committed_at), 3),
            "latency_under_load": summarize_ms(tracker.latencies()),
        }


# --- the benchmark --------------------------------------------------------------------------------

def latency_rows(label: str, latency: dict, raw: dict, raw_label: str) -> list[dict]:
    rows = []
    for pct, target in (("p50", TARGET_P50_MS), ("p99", TARGET_P99_MS)):
        key = f"{pct}_ms"
        value = latency.get(key)
        rows.append({
            "metric": f"{label} {pct}", "value": value, "unit": "ms",
            "baseline": raw.get(key), "ratio": ratio(value, raw.get(key)),
            "target": f"<= {target:g} ms", "ok": value is not None and latency["complete"] and value <= target,
        })
    rows[0]["note"] = f"baseline = {raw_label}"
    return rows


def throughput_rows(result: dict) -> list[dict]:
    batch = result["batch"]
    value = result["events_per_s"]
    load = result["latency_under_load"]
    return [
        {"metric": f"sustained, {batch} event{'s' if batch > 1 else ''}/txn", "value": value,
         "unit": "events/s", "target": f">= {TARGET_EVENTS_PER_S:g}/s",
         "ok": value is not None and result["complete"] and value >= TARGET_EVENTS_PER_S},
        {"metric": "  writers' commit rate", "value": result["commit_events_per_s"], "unit": "events/s"},
        {"metric": "  latency under load p50 / p99",
         "value": f"{load.get('p50_ms', 0):,.0f} / {load.get('p99_ms', 0):,.0f}", "unit": "ms"},
    ]


def raw_rows(label: str, raw: dict) -> list[dict]:
    return [{"metric": f"{label} p50", "value": raw.get("p50_ms"), "unit": "ms"},
            {"metric": f"{label} p99", "value": raw.get("p99_ms"), "unit": "ms"}]


async def main(args: argparse.Namespace) -> dict:
    size = sizes(getattr(args, "quick", False))
    run_id = uuid.uuid4().hex[:8]
    load_before = os.getloadavg()[0]
    phases: dict[str, float] = {}
    phase_cpu: dict[str, float] = {}  # this process's CPU seconds per phase: ~wall = Python-bound
    wall0, cpu0 = time.perf_counter(), time.process_time()

    @contextlib.contextmanager
    def phase(name: str) -> Iterator[None]:
        started, cpu = time.perf_counter(), time.process_time()
        yield
        phases[name] = round(time.perf_counter() - started, 1)
        phase_cpu[name] = round(time.process_time() - cpu, 1)

    with servers("events") as (database_url, bootstrap):
        settings = make_settings(database_url, bootstrap)
        with phase("raw"):
            raw = summarize_ms(await raw_round_trip(settings, f"{run_id}-raw", size.raw_n, size.raw_warmup))
        db = Database(database_url, pool_size=size.writers + 4)
        try:
            pipeline = Pipeline(db, settings, run_id)
            async with pipeline.running(size.warmup_events):
                with phase("latency"):
                    latency = await pipeline.measure_latency(size.latency_n, LATENCY_INTERVAL_S)
                with phase("throughput batched"):
                    batched = await pipeline.measure_throughput(size.throughput_m, size.batch_size, size.writers,
                                                                size.batched_cap_s)
                with phase("throughput single"):
                    single = await pipeline.measure_throughput(size.single_m, 1, size.writers, size.single_cap_s)
            phases["warm-up (group join)"] = pipeline.warmup_seconds
        finally:
            await db.dispose()

    raw_label = f"raw, fetch_max_wait_ms={FETCH_MAX_WAIT_MS}"
    rows = [
        *raw_rows(raw_label, raw),
        *latency_rows("outbox commit -> effect", latency, raw, raw_label),
        *throughput_rows(batched),
        *throughput_rows(single),
    ]
    notes = [
        f"fetch_max_wait_ms={FETCH_MAX_WAIT_MS} for the raw consumer and the inbox consumer "
        "(kafka_fetch_max_wait_ms, as the dev stack): the dev broker (tansu) holds every fetch that long "
        "even when records are waiting, Apache Kafka returns as soon as there is data.",
        f"raw: send() -> getmany() of one message at a time, n={raw.get('n')}; "
        "producer acks=all, consumer in a group with manual commit.",
        f"latency: outbox COMMIT -> consumer's effect COMMIT, one event per txn every "
        f"{LATENCY_INTERVAL_S * 1000:g} ms, n={latency.get('n')}; ratio = latency / raw round trip "
        "at the same percentile.",
        f"sustained: {batched['events']:,} events in txns of {size.batch_size} (Outbox.add_many) and "
        f"{single['events']:,} in txns of 1, {size.writers} writers (writing stops after "
        f"{size.batched_cap_s:g} s / {size.single_cap_s:g} s); first txn started -> last effect committed; "
        "writers, relay and consumer share one Python process.",
        f"1-min load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after "
        f"({os.cpu_count()} CPUs): other work on the machine inflates every number; this process used "
        f"{time.process_time() - cpu0:.0f} s CPU in {time.perf_counter() - wall0:.0f} s.",
    ]
    for name, result in (("latency", latency), ("batched", batched), ("single", single)):
        if not result["complete"]:
            notes.append(f"INCOMPLETE: {name} phase saw {result['applied']} effects before "
                         f"the {PHASE_TIMEOUT_S:g} s timeout.")
    return {
        "name": "events",
        "rows": rows,
        "notes": notes,
        "targets": {"p50_ms": TARGET_P50_MS, "p99_ms": TARGET_P99_MS, "events_per_s": TARGET_EVENTS_PER_S},
        "sizes": asdict(size),
        "fetch_max_wait_ms": FETCH_MAX_WAIT_MS,
        "raw": raw,
        "latency": {"interval_ms": LATENCY_INTERVAL_S * 1000, **latency},
        "throughput_batched": batched,
        "throughput_single": single,
        "ratios": {
            "p50": ratio(latency.get("p50_ms"), raw.get("p50_ms")),
            "p99": ratio(latency.get("p99_ms"), raw.get("p99_ms")),
        },
        "phase_seconds": phases,
        "phase_cpu_seconds": phase_cpu,
        "load_average": [load_before, os.getloadavg()[0]],
        "cpu_count": os.cpu_count(),
    }

"""Event latency and throughput through the outbox and the inbox, beside a raw aiokafka round trip.

Runs against its own embedded PostgreSQL and broker on 127.0.0.1 (or BENCH_DATABASE_URL /
BENCH_KAFKA_BOOTSTRAP_SERVERS if set), with topics, consumer groups and schemas unique to the run.
Both sides fetch with fetch_max_wait_ms=FETCH_MAX_WAIT_MS (10), as the dev stack sets
`kafka_fetch_max_wait_ms`: the dev broker (tansu) holds every fetch for the full wait even when
records are waiting, Apache Kafka answers as soon as there is data.

What runs where (as in production, where the service that writes an event and the service that
consumes it are separate processes; the machine's cores are shared by all of them):
- this process, one event loop: the raw round trip's producer and consumer; for the pipeline, the
  writers (the producing service's requests) and its OutboxRelay, as a service runs its relay;
- a child process (`python -m bench.bench_events consume`, see ConsumerProcess), one event loop: the
  consuming service's stock InboxConsumer with the effect handler; it sends each effect
  transaction's COMMIT time and event ids back over its stdout;
- PostgreSQL and the broker: their own processes.

1. raw: an aiokafka producer (the relay's settings: acks=all, linger 0) sends one message at a
   time; a consumer in a group (manual commit, max_poll_records 500, the inbox consumer's
   settings) receives it. Latency = send() called -> record returned by getmany(); the next
   message is sent only after the previous one arrived and its offset was committed.
2. latency: one event per transaction, a transaction every LATENCY_INTERVAL_S, with the relay and
   the consumer process running. Latency = the outbox transaction's COMMIT returned (here) -> the
   consumer's transaction (inbox row + effect row) COMMIT returned (in the child), both taken with
   time.perf_counter() (CLOCK_MONOTONIC: one clock for every process on Linux; checked at start)
   in SQLAlchemy `after_commit` hooks. The consumer's Kafka offset commit comes right after and is
   not included (the effect is already durable and visible then).
3. throughput: M events committed as fast as a few concurrent writers can, in transactions of
   50 events (one `Outbox.add_many`) and of 1 event. events/s = applied / (first transaction
   started -> last effect committed); the commit rate of the writers alone and latency under load
   are reported beside it.

The JSON has the CPU seconds of this process and of the consumer process per phase.

4. signing: 2. and 3. run twice in the same run, each with its own schema, topic and consumer
   process: first `unsigned` (the relay's signer and the consumer's verifier swapped for ones that
   send and read the `source`/`seq` headers without a signature: the pipeline as it was, stale-event
   check included), then `signed` (the stock pipeline: Ed25519 signature per message by the relay,
   verified by the consumer). The signing cost is reported as ratios signed / unsigned (throughput,
   latency, CPU per event), beside a micro-measurement of one signature and one verification.
"""

import argparse
import asyncio
import base64
import contextlib
import logging
import os
import secrets
import signal
import struct
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from sqlalchemy import Column, DateTime, Table, Uuid, text
from sqlalchemy import event as sa_event
from sqlalchemy.dialects.postgresql import insert

from bench import ratio, servers, summarize_ms
from shared.db import Database, service_metadata
from shared.devstack.infra import die_with_parent
from shared.events.contracts import EligibilityChanged
from shared.events.envelope import Envelope
from shared.events.inbox import InboxConsumer, define_inbox_table
from shared.events.kafka import ensure_topics, make_producer
from shared.events.outbox import Outbox, OutboxRelay, define_outbox_table
from shared.events.signing import (
    BATCH_GROUP,
    HEADER_SEQ,
    HEADER_SOURCE,
    EventSigner,
    EventVerifier,
    SignatureError,
    Verified,
    generate_keypair,
)
from shared.settings import CommonSettings

TARGET_P50_MS = 15.0
TARGET_P99_MS = 100.0
TARGET_EVENTS_PER_S = 2000.0
TARGET_SIGNING_RATIO = 1.2  # signed pipeline's cost / unsigned (issue 16)
SOURCE = "bench"  # the pretend producer; its topics `bench.<run>...` have it as their publisher
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


def make_settings(database_url: str, bootstrap: str, *, signing_key: str | None = None,
                  verify_key: str | None = None) -> CommonSettings:
    """The pretend service's settings; a key pair of this run (the consumer process gets the public
    key only, the writer side the private one)."""
    if signing_key is None and verify_key is None:
        signing_key, verify_key = generate_keypair()
    return CommonSettings(
        environment="test", database_url=database_url, kafka_bootstrap_servers=bootstrap,
        kafka_idempotent_producer=False,  # the dev broker refuses InitProducerId
        field_encryption_key=random_key(), field_hash_key=random_key(),
        outbox_poll_seconds=1.0, log_json=False,
        kafka_fetch_max_wait_ms=FETCH_MAX_WAIT_MS,  # as the dev stack: the inbox consumer uses it
        event_signing_key=signing_key, event_verify_keys={SOURCE: verify_key} if verify_key else {},
    )


class UnsignedHeaders:
    """The baseline's relay signer: the `source` and `seq` headers, no signature."""

    def headers(self, *, source: str, topic: str, seq: int, value: bytes) -> list[tuple[str, bytes]]:
        return [(HEADER_SOURCE, source.encode()), (HEADER_SEQ, str(seq).encode())]

    def sign_many(self, messages) -> list[list[tuple[str, bytes]]]:
        return [self.headers(source=source, topic=topic, seq=seq, value=value)
                for source, topic, seq, value in messages]


class UncheckedVerifier:
    """The baseline's consumer verifier: reads `source` and `seq`, checks nothing."""

    def verify(self, topic: str, headers, value: bytes) -> Verified:
        found = dict(headers or ())
        if HEADER_SEQ not in found:
            raise SignatureError("no seq header")
        return Verified(found[HEADER_SOURCE].decode(), int(found[HEADER_SEQ]))


def sign_verify_micro(n: int = 1000, rounds: int = 3) -> dict[str, float]:
    """Microseconds per message of a message of the pipeline's size (best of `rounds`): signed alone
    and verified (in full each time); signed in batches of 200 (groups of
    BATCH_GROUP) and verified by one verifier, as the relay and a consumer do."""
    private, public = generate_keypair()
    signer = EventSigner.from_b64(private)
    value = sample_envelope().to_bytes()
    topic = f"{SOURCE}.micro"
    headers = signer.headers(source=SOURCE, topic=topic, seq=1, value=value)
    batches = [[(SOURCE, topic, seq, value) for seq in range(k, k + 200)] for k in range(0, n, 200)]

    def best(job) -> float:
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            job()
            times.append(time.perf_counter() - started)
        return round(min(times) / n * 1e6, 1)

    def verify_alone() -> None:  # a message signed alone is verified in full every time (nothing cached)
        verifier = EventVerifier.from_keys({SOURCE: public})
        for _ in range(n):
            verifier.verify(topic, headers, value)

    signed_batches = [signer.sign_many(batch) for batch in batches]

    def verify_batched() -> None:
        verifier = EventVerifier.from_keys({SOURCE: public})
        for batch, signatures in zip(batches, signed_batches, strict=True):
            for (_, _, _, message), signature in zip(batch, signatures, strict=True):
                verifier.verify(topic, signature, message)

    return {
        "sign_us": best(lambda: [signer.headers(source=SOURCE, topic=topic, seq=seq, value=value) for seq in range(n)]),
        "verify_us": best(verify_alone),
        "batch_sign_us": best(lambda: [signer.sign_many(batch) for batch in batches]),
        "batch_verify_us": best(verify_batched),
        "message_bytes": len(value),
    }


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
    return Envelope(type=event.TYPE, version=event.VERSION, source=SOURCE, correlation_id="bench",
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
    """A pretend service's schema (outbox, inbox, effect), its relay and its consumer.

    Built alike in both processes (it makes no connection until used): this process uses the writer
    side (`commit`, `relay`), the consumer process uses `consumer` with `handle`.
    """

    def __init__(self, db: Database, settings: CommonSettings, name: str, *, signed: bool = True) -> None:
        self.db = db
        self.settings = settings
        self.name = name
        self.signed = signed
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
        self.outbox = Outbox(self.outbox_table, source=SOURCE)
        self.relay = OutboxRelay(db, self.outbox_table, settings, name=f"bench-{name}")
        self.consumer = InboxConsumer(
            name=f"bench-{name}-consumer", db=db, inbox=self.inbox, settings=settings,
            handlers={self.event_cls: self.handle},
        )
        if not signed:  # the baseline: the stock relay and consumer, signature swapped out
            self.relay.signer = UnsignedHeaders()
            self.consumer.verifier = UncheckedVerifier()
        self.tracker = Tracker()
        self.warmup_seconds = 0.0
        self.consumer_process: ConsumerProcess | None = None
        self._effect_insert = insert(self.effect).on_conflict_do_nothing()

    async def handle(self, session, event, envelope: Envelope) -> None:
        """The consumer's effect: one row per event; its commit time goes to `report_applied`."""
        # a statement built once and executed with parameters, as a well-written handler does
        await session.execute(self._effect_insert, {"event_id": envelope.id})
        ids = session.info.get("bench_ids")
        if ids is None:
            ids = session.info["bench_ids"] = []
            report = self.report_applied
            sa_event.listen(session.sync_session, "after_commit", lambda _s: report(ids, time.perf_counter()))
        ids.append(envelope.id)

    def report_applied(self, ids: list[uuid.UUID], at: float) -> None:
        """Where effect commit times go: the tracker here; the consumer process replaces it with a pipe."""
        self.tracker.on_applied(ids, at)

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
        """Create the schema and topic, start the relay here and the consumer in its own process,
        wait until events flow."""
        async with self.db.engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
            await conn.run_sync(self.metadata.create_all)
        await ensure_topics(self.settings, [self.topic])
        relay = asyncio.create_task(self.relay.run())
        self.consumer_process = ConsumerProcess(self.settings, self.name, on_applied=self.report_applied,
                                                signed=self.signed)
        try:
            await self.consumer_process.start()
            # warm-up: producer connected, consumer group joined, caches filled
            started = time.perf_counter()
            self.tracker = Tracker(expected=warmup_events)
            for _ in range(warmup_events):
                await self.commit(1)
            if not await self.wait_applied(PHASE_TIMEOUT_S):
                raise TimeoutError("warm-up events never reached the consumer")
            self.warmup_seconds = round(time.perf_counter() - started, 1)
            yield self
        finally:
            await cancel(relay)
            await self.relay.close()
            await self.consumer_process.stop()

    async def wait_applied(self, timeout: float) -> bool:
        """Until the tracker saw every effect it expects; raises if the consumer process died."""
        done = asyncio.ensure_future(self.tracker.done.wait())
        exited = self.consumer_process.wait_exited()
        try:
            await asyncio.wait({done, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            done.cancel()
            exited.cancel()
        if not self.tracker.done.is_set() and self.consumer_process.exited:
            raise RuntimeError(f"the consumer process exited (code {self.consumer_process.process.returncode})")
        return self.tracker.done.is_set()

    async def measure_latency(self, n: int, interval: float) -> dict:
        """n single-event transactions, paced every `interval` seconds."""
        self.tracker = tracker = Tracker(expected=n)
        start = time.perf_counter()
        for i in range(n):
            delay = start + i * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.commit(1)
        complete = await self.wait_applied(PHASE_TIMEOUT_S)
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
        complete = await self.wait_applied(PHASE_TIMEOUT_S)
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


# --- the consuming service's process --------------------------------------------------------------

# One report per effect transaction, on the consumer process's stdout: the COMMIT time
# (time.perf_counter()) and how many events, then their 16-byte ids.
REPORT = struct.Struct("<dI")
REPO_ROOT = Path(__file__).resolve().parent.parent  # the child runs `-m bench.bench_events` from here


def pack_report(ids: list[uuid.UUID], at: float) -> bytes:
    return REPORT.pack(at, len(ids)) + b"".join(event_id.bytes for event_id in ids)


async def read_report(stream: asyncio.StreamReader) -> tuple[float, list[uuid.UUID]]:
    """The next report; asyncio.IncompleteReadError once the stream ended."""
    at, count = REPORT.unpack(await stream.readexactly(REPORT.size))
    raw = await stream.readexactly(16 * count)
    return at, [uuid.UUID(bytes=raw[k:k + 16]) for k in range(0, len(raw), 16)]


class ConsumerProcess:
    """The consuming service: the pipeline's stock InboxConsumer in a process of its own
    (`python -m bench.bench_events consume`), as in production, where events are consumed in another
    service's process than the one that writes them.

    The child reports every effect transaction (COMMIT time, event ids) over its stdout; `on_applied`
    gets them here. Times are time.perf_counter() in both processes: CLOCK_MONOTONIC on Linux, one
    clock for the whole machine; `start()` checks that the child's clock agrees with this one.
    """

    def __init__(self, settings: CommonSettings, name: str, *,
                 on_applied: Callable[[list[uuid.UUID], float], None], signed: bool = True) -> None:
        self.settings = settings
        self.name = name
        self.signed = signed
        self.on_applied = on_applied
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task | None = None
        self._hello: asyncio.Future[float] | None = None

    async def start(self) -> None:
        """Spawn the child and wait until it runs (its consumer may still be joining the group)."""
        self._hello = asyncio.get_running_loop().create_future()
        spawned = time.perf_counter()
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.bench_events", "consume",
            # settings through the environment, not argv: a BENCH_DATABASE_URL may hold a password
            env={**os.environ, "BENCH_CONSUMER_DATABASE_URL": self.settings.database_url,
                 "BENCH_CONSUMER_BOOTSTRAP": self.settings.kafka_bootstrap_servers,
                 "BENCH_CONSUMER_NAME": self.name, "BENCH_CONSUMER_SIGNED": "1" if self.signed else "0",
                 "BENCH_CONSUMER_VERIFY_KEY": self.settings.event_verify_keys.get(SOURCE, "")},
            stdout=asyncio.subprocess.PIPE, cwd=REPO_ROOT,
        )
        self._reader = asyncio.create_task(self._read_reports())
        done, _ = await asyncio.wait({self._hello, self._reader}, timeout=PHASE_TIMEOUT_S,
                                     return_when=asyncio.FIRST_COMPLETED)
        if self._hello not in done:
            raise RuntimeError(f"the consumer process did not start (exit code {self.process.returncode})")
        if not spawned <= self._hello.result() <= time.perf_counter():
            raise RuntimeError("the consumer process's perf_counter is not this process's clock; "
                               "cross-process latencies would be meaningless")

    async def _read_reports(self) -> None:
        """Until the child's stdout closes: the first report (no ids) is its hello, then effects."""
        with contextlib.suppress(asyncio.IncompleteReadError):  # EOF: the child is gone
            while True:
                at, ids = await read_report(self.process.stdout)
                if not self._hello.done():
                    self._hello.set_result(at)
                else:
                    self.on_applied(ids, at)
        await self.process.wait()

    @property
    def exited(self) -> bool:
        return self._reader is not None and self._reader.done()

    def wait_exited(self) -> asyncio.Future:
        """Done when the child is gone (shielded: cancelling the wait leaves the reader running)."""
        return asyncio.shield(self._reader)

    def cpu_seconds(self) -> float | None:
        """CPU (user + system) the child used so far, from /proc (Linux); None elsewhere."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError, AttributeError):
            return None

    async def stop(self) -> None:
        """SIGTERM: the child cancels its consumer and closes it; killed if it is not gone in 10 s."""
        if self.process is None:
            return
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.process.wait(), 10.0)
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()
        if self._reader is not None:
            await cancel(self._reader)


async def consume(database_url: str, bootstrap: str, name: str, *, signed: bool = True,
                  verify_key: str | None = None) -> None:
    """The child: the stock InboxConsumer of the pipeline `name` until SIGTERM, reporting on stdout."""
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # stdout carries the reports only; a stray print must not break them
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    def report(ids: list[uuid.UUID], at: float) -> None:
        # a blocking write of a few KB: the parent reads continuously, the pipe never stays full
        out.write(pack_report(ids, at))
        out.flush()

    db = Database(database_url, pool_size=4)
    settings = make_settings(database_url, bootstrap, verify_key=verify_key)  # the public key only
    pipeline = Pipeline(db, settings, name, signed=signed)  # same schema, topic, group
    pipeline.report_applied = report
    report([], time.perf_counter())  # hello: the clock check in ConsumerProcess.start()
    consumer = asyncio.create_task(pipeline.consumer.run())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({consumer, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if consumer.done():
            consumer.result()  # run() only ends by raising: let the exit code say so
    finally:
        await cancel(consumer, stopping)
        await pipeline.consumer.close()
        await db.dispose()


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
    """The >= 2 000/s target is the pipeline's capacity, read from the batched run, where writers
    commit faster than that. With one event per transaction the writers themselves commit only a
    few hundred per second here (each commit is a durable round trip), so that run shows whether
    the pipeline keeps up with them (>= 95 % of their rate), not the target."""
    batch = result["batch"]
    value = result["events_per_s"]
    load = result["latency_under_load"]
    committed = result["commit_events_per_s"]
    if batch > 1:
        target = {"target": f">= {TARGET_EVENTS_PER_S:g}/s",
                  "ok": value is not None and result["complete"] and value >= TARGET_EVENTS_PER_S}
    else:
        target = {"target": ">= 95% of writers' rate", "baseline": committed, "ratio": ratio(value, committed),
                  "ok": value is not None and result["complete"] and bool(committed)
                  and value >= 0.95 * committed}
    return [
        {"metric": f"sustained, {batch} event{'s' if batch > 1 else ''}/txn", "value": value,
         "unit": "events/s", **target},
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
    consumer_cpu: dict[str, float] = {}  # the same for the consumer process
    wall0, cpu0 = time.perf_counter(), time.process_time()

    @contextlib.contextmanager
    def phase(name: str, consumer: ConsumerProcess | None = None) -> Iterator[None]:
        started, cpu = time.perf_counter(), time.process_time()
        child_cpu = consumer.cpu_seconds() if consumer else None
        yield
        phases[name] = round(time.perf_counter() - started, 1)
        phase_cpu[name] = round(time.process_time() - cpu, 1)
        if child_cpu is not None and (child_after := consumer.cpu_seconds()) is not None:
            consumer_cpu[name] = round(child_after - child_cpu, 1)

    raw_cpu: dict[str, list[tuple[float, float | None]]] = {}  # unrounded (this process, consumer) per phase

    async def measured(pipeline: "Pipeline", name: str, job) -> dict:
        consumer = pipeline.consumer_process
        cpu, child = time.process_time(), consumer.cpu_seconds()
        label = f"{name} ({'signed' if pipeline.signed else 'unsigned'})"
        with phase(f"{label} #{len(raw_cpu.get(label, [])) + 1}", consumer):
            result = await job
        child_after = consumer.cpu_seconds()
        raw_cpu.setdefault(label, []).append(
            (time.process_time() - cpu, child_after - child if child is not None and child_after is not None else None))
        return result

    async def compare(db: Database, settings: CommonSettings) -> dict:
        """Both pipelines up at once; every phase measured on both, interleaved: latency unsigned then
        signed, each throughput phase unsigned, signed, signed, unsigned (a drift of the machine's load
        during the run weighs on both alike)."""
        pipelines = {v: Pipeline(db, settings, f"{run_id}-{v}", signed=v == "signed") for v in ("unsigned", "signed")}
        samples: dict[str, dict[str, list[dict]]] = {v: {"latency": [], "batched": [], "single": []} for v in pipelines}
        async with pipelines["unsigned"].running(size.warmup_events), pipelines["signed"].running(size.warmup_events):
            for v in ("unsigned", "signed"):
                samples[v]["latency"].append(await measured(
                    pipelines[v], "latency", pipelines[v].measure_latency(size.latency_n, LATENCY_INTERVAL_S)))
            for key, name, m, batch, cap in (
                    ("batched", "throughput batched", size.throughput_m, size.batch_size, size.batched_cap_s),
                    ("single", "throughput single", size.single_m, 1, size.single_cap_s)):
                for v in ("unsigned", "signed", "signed", "unsigned"):
                    samples[v][key].append(await measured(
                        pipelines[v], name, pipelines[v].measure_throughput(m, batch, size.writers, cap)))
            consumer_cpu_signed = pipelines["signed"].consumer_process.cpu_seconds()
        for v, pipeline in pipelines.items():
            phases[f"warm-up (group join, {v})"] = pipeline.warmup_seconds
        variants = {v: {"latency": s["latency"][0], "batched": merge(s["batched"]), "single": merge(s["single"]),
                        "samples": s} for v, s in samples.items()}
        variants["signed"]["consumer_cpu_total"] = consumer_cpu_signed
        return variants

    with servers("events") as (database_url, bootstrap):
        settings = make_settings(database_url, bootstrap)
        micro = sign_verify_micro()
        with phase("raw"):
            raw = summarize_ms(await raw_round_trip(settings, f"{run_id}-raw", size.raw_n, size.raw_warmup))
        db = Database(database_url, pool_size=2 * size.writers + 4)
        try:
            variants = await compare(db, settings)
        finally:
            await db.dispose()

    signed, unsigned = variants["signed"], variants["unsigned"]
    latency, batched, single = signed["latency"], signed["batched"], signed["single"]
    consumer_cpu_total = signed["consumer_cpu_total"]
    cost = signing_cost(variants, raw_cpu, micro)
    raw_label = f"raw, fetch_max_wait_ms={FETCH_MAX_WAIT_MS}"
    rows = [
        *raw_rows(raw_label, raw),
        *latency_rows("outbox commit -> effect", latency, raw, raw_label),
        *throughput_rows(batched),
        *throughput_rows(single),
        *signing_rows(cost, micro),
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
        f"sustained: {size.throughput_m:,} events in txns of {size.batch_size} (Outbox.add_many) and "
        f"{size.single_m:,} in txns of 1 per run, {size.writers} writers (writing stops after "
        f"{size.batched_cap_s:g} s / {size.single_cap_s:g} s); first txn started -> last effect committed; "
        "writers and relay share this process (the producing service), the inbox consumer runs in a "
        "process of its own (the consuming service); events/s = the mean of two runs.",
        "the rows above are the stock pipeline (signed). signing cost: a second pipeline ran beside it "
        "with the relay's signer and the consumer's verifier swapped for header-only ones (unsigned; "
        "stale-event check and everything else the same), on a schema, topic and consumer process of "
        "its own; phases interleaved (latency unsigned, signed; each throughput phase unsigned, signed, "
        "signed, unsigned); ratio = signed / unsigned (throughput: unsigned / signed, so > 1 is a cost). "
        f"CPU/event = this process's (writers + relay) and the consumer process's CPU in the batched "
        f"runs / events applied. A message signed alone: {micro['sign_us']:g} us to sign, "
        f"{micro['verify_us']:g} us to verify; in a batch of 200 (one signature per "
        f"{BATCH_GROUP}, a Merkle path each): {micro['batch_sign_us']:g} / {micro['batch_verify_us']:g} us "
        f"per message ({micro['message_bytes']} B message).",
        f"1-min load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after "
        f"({os.cpu_count()} CPUs): other work on the machine inflates every number; this process used "
        f"{time.process_time() - cpu0:.0f} s CPU in {time.perf_counter() - wall0:.0f} s, the consumer "
        f"process (signed) {f'{consumer_cpu_total:.0f}' if consumer_cpu_total is not None else '?'} s.",
    ]
    for variant, results in variants.items():
        for name in ("latency", "batched", "single"):
            if not results[name]["complete"]:
                notes.append(f"INCOMPLETE ({variant}): {name} phase saw {results[name]['applied']} effects "
                             f"before the {PHASE_TIMEOUT_S:g} s timeout.")
    return {
        "name": "events",
        "rows": rows,
        "notes": notes,
        "targets": {"p50_ms": TARGET_P50_MS, "p99_ms": TARGET_P99_MS, "events_per_s": TARGET_EVENTS_PER_S,
                    "signing_ratio": TARGET_SIGNING_RATIO},
        "sizes": asdict(size),
        "fetch_max_wait_ms": FETCH_MAX_WAIT_MS,
        "raw": raw,
        "latency": {"interval_ms": LATENCY_INTERVAL_S * 1000, **latency},
        "throughput_batched": batched,
        "throughput_single": single,
        "unsigned": {"latency": unsigned["latency"], "throughput_batched": unsigned["batched"],
                     "throughput_single": unsigned["single"]},
        "signing": {**cost, "micro": micro},
        "ratios": {
            "p50": ratio(latency.get("p50_ms"), raw.get("p50_ms")),
            "p99": ratio(latency.get("p99_ms"), raw.get("p99_ms")),
        },
        "phase_seconds": phases,
        "phase_cpu_seconds": phase_cpu,
        "consumer_process_cpu_seconds": consumer_cpu,
        "load_average": [load_before, os.getloadavg()[0]],
        "cpu_count": os.cpu_count(),
    }


def merge(samples: list[dict]) -> dict:
    """Throughput samples of one variant as one: the mean rate, the sums, the first's details."""
    rates = [r["events_per_s"] for r in samples if r["events_per_s"] is not None]
    return {**samples[0], "events_per_s": round(sum(rates) / len(rates), 1) if rates else None,
            "events": sum(r["events"] for r in samples), "applied": sum(r["applied"] for r in samples),
            "complete": all(r["complete"] for r in samples),
            "samples_events_per_s": [r["events_per_s"] for r in samples]}


def signing_cost(variants: dict, raw_cpu: dict, micro: dict) -> dict:
    """Signed against unsigned: throughput (unsigned / signed events/s), latency (signed / unsigned)
    and CPU per event of each process in the batched phases (signed / unsigned)."""
    def per_event(variant: str, which: int) -> float | None:
        cpus = [sample[which] for sample in raw_cpu.get(f"throughput batched ({variant})", [])]
        applied = variants[variant]["batched"]["applied"]
        if not cpus or any(c is None for c in cpus) or not applied:
            return None
        return sum(cpus) / applied * 1e6

    signed, unsigned = variants["signed"], variants["unsigned"]
    cpu = {f"{variant}_{side}_us_per_event": (round(v, 1) if (v := per_event(variant, i)) is not None else None)
           for variant in ("unsigned", "signed") for i, side in enumerate(("producer", "consumer"))}
    total = {variant: (cpu[f"{variant}_producer_us_per_event"] or 0) + (cpu[f"{variant}_consumer_us_per_event"] or 0)
             for variant in ("unsigned", "signed")}
    return {
        "throughput_batched_ratio": ratio(unsigned["batched"]["events_per_s"], signed["batched"]["events_per_s"]),
        "throughput_single_ratio": ratio(unsigned["single"]["events_per_s"], signed["single"]["events_per_s"]),
        "latency_p50_ratio": ratio(signed["latency"].get("p50_ms"), unsigned["latency"].get("p50_ms")),
        "latency_p99_ratio": ratio(signed["latency"].get("p99_ms"), unsigned["latency"].get("p99_ms")),
        "unsigned_events_per_s": unsigned["batched"]["events_per_s"],
        "signed_events_per_s": signed["batched"]["events_per_s"],
        "unsigned_single_events_per_s": unsigned["single"]["events_per_s"],
        "signed_single_events_per_s": signed["single"]["events_per_s"],
        "unsigned_latency_p50_ms": unsigned["latency"].get("p50_ms"),
        "signed_latency_p50_ms": signed["latency"].get("p50_ms"),
        "unsigned_latency_p99_ms": unsigned["latency"].get("p99_ms"),
        **cpu,
        "cpu_per_event_ratio": ratio(total["signed"], total["unsigned"]),
        "sign_plus_verify_share_of_unsigned_cpu": ratio(micro["sign_us"] + micro["verify_us"], total["unsigned"]),
    }


def signing_rows(cost: dict, micro: dict) -> list[dict]:
    target = f"<= {TARGET_SIGNING_RATIO:g}x"

    def row(metric: str, value, baseline, key: str, unit: str) -> dict:
        r = cost.get(key)
        return {"metric": metric, "value": value, "unit": unit, "baseline": baseline, "ratio": r,
                "target": target, "ok": r is not None and r <= TARGET_SIGNING_RATIO}

    return [
        row("signing: sustained, 50 events/txn", cost["signed_events_per_s"], cost["unsigned_events_per_s"],
            "throughput_batched_ratio", "events/s"),
        row("signing: sustained, 1 event/txn", cost["signed_single_events_per_s"], cost["unsigned_single_events_per_s"],
            "throughput_single_ratio", "events/s"),
        row("signing: latency p50", cost["signed_latency_p50_ms"], cost["unsigned_latency_p50_ms"],
            "latency_p50_ratio", "ms"),
        row("signing: CPU per event (both sides)",
            round((cost["signed_producer_us_per_event"] or 0) + (cost["signed_consumer_us_per_event"] or 0), 1),
            round((cost["unsigned_producer_us_per_event"] or 0) + (cost["unsigned_consumer_us_per_event"] or 0), 1),
            "cpu_per_event_ratio", "us"),
        {"metric": "  sign / verify a message alone", "value": f"{micro['sign_us']:g} / {micro['verify_us']:g}",
         "unit": "us"},
        {"metric": "  sign / verify per message, batched",
         "value": f"{micro['batch_sign_us']:g} / {micro['batch_verify_us']:g}", "unit": "us"},
    ]


if __name__ == "__main__" and sys.argv[1:] == ["consume"]:  # ConsumerProcess's child
    die_with_parent()  # SIGTERM if the benchmark dies: no consumer left behind
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent stops us
    logging.basicConfig(level=logging.WARNING, format="consumer process %(levelname)s %(name)s: %(message)s")
    asyncio.run(consume(os.environ["BENCH_CONSUMER_DATABASE_URL"], os.environ["BENCH_CONSUMER_BOOTSTRAP"],
                        os.environ["BENCH_CONSUMER_NAME"], signed=os.environ.get("BENCH_CONSUMER_SIGNED") != "0",
                        verify_key=os.environ.get("BENCH_CONSUMER_VERIFY_KEY") or None))

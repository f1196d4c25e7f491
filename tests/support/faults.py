"""Fault rigs: a producing and a consuming service against a broker process of their own, killed at will.

Both services are real `create_service_app` apps (outbox relay, inbox consumer with its watchdog,
gap repair, /readyz), each in a schema of its own:

- the producer is named `registry` (the publisher of `registry.supervisors` in
  shared.events.asyncapi), `POST /writes {"subject": uuid}` stages one `EligibilityChanged` per
  accepted write (201);
- the consumer counts applications per subject (`effect`), so exactly once means every count is 1.

`python -m tests.support.faults consume` runs the consumer as a process of its own under uvicorn
(settings from the environment, see `consumer_env`), for the test that kills it with SIGKILL.
Used by tests/integration/platform/test_healing.py and bench/bench_healing.py.
"""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from fastapi import APIRouter, Depends, FastAPI
from pydantic import BaseModel
from sqlalchemy import Column, Integer, MetaData, Table, Text, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.app import OutboxDep, ServiceSpec, SessionDep, create_service_app
from shared.auth import Role, require
from shared.db import service_metadata
from shared.db.platform import define_platform_tables
from shared.devstack import infra
from shared.events.contracts import EligibilityChanged
from shared.events.signing import generate_keypair
from shared.settings import CommonSettings
from tests.support.eventing import counting_handler

ROOT = Path(__file__).resolve().parents[2]
PRODUCER = "registry"  # publishes registry.supervisors (shared.events.asyncapi.publishers)
CONSUMER = "appraisal"

# what makes healing fast enough to measure in a test; production keeps the defaults
FAST_HEALING = {
    "outbox_poll_seconds": 0.5,
    "consumer_watch_seconds": 0.5,
    "consumer_stuck_seconds": 8.0,  # above the dev broker's group join (a few seconds)
    "consumer_broker_timeout_seconds": 5.0,
    "consumer_rebuild_max_backoff_seconds": 5.0,
    "event_repair_seconds": 10.0,
    "event_repair_margin_seconds": 30.0,
    "shutdown_budget_seconds": 8.0,
}


# each service signs its events (shared.events.signing); every one knows the others' public keys
SIGNING_KEYS = {name: generate_keypair() for name in (PRODUCER, CONSUMER)}
VERIFY_KEYS = {name: public for name, (_, public) in SIGNING_KEYS.items()}


class WriteIn(BaseModel):
    subject: uuid.UUID


def producer_spec(schema: str) -> ServiceSpec:
    metadata = service_metadata(schema)
    platform = define_platform_tables(metadata)
    router = APIRouter()

    @router.post("/writes", status_code=201)
    async def write(body: WriteIn, session: SessionDep, outbox: OutboxDep,
                    _=Depends(require(Role.BUREAU_ADMIN))) -> dict:
        await outbox.add(session, EligibilityChanged(supervisor_id=body.subject, eligible=True, reasons=[]))
        return {"subject": str(body.subject)}

    return ServiceSpec(name=PRODUCER, title="producer", metadata=metadata, platform=platform, routers=[router])


def effect_table(metadata: MetaData) -> Table:
    return Table("effect", metadata, Column("subject", Text, primary_key=True),
                 Column("applied", Integer, nullable=False))


def consumer_spec(schema: str) -> tuple[ServiceSpec, Table]:
    metadata = service_metadata(schema)
    platform = define_platform_tables(metadata)
    effect = effect_table(metadata)
    spec = ServiceSpec(name=CONSUMER, title="consumer", metadata=metadata, platform=platform,
                       handlers={EligibilityChanged: counting_handler(effect)})
    return spec, effect


async def create_schema(database_url: str, metadata: MetaData) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{metadata.schema}"'))
            await conn.run_sync(metadata.create_all)
    finally:
        await engine.dispose()


def settings_for(settings_env: dict[str, str], bootstrap: str, service: str, **overrides) -> CommonSettings:
    from tests.support.apps import PUBLIC_KEY

    values = {k.lower(): v for k, v in settings_env.items()}
    values.update(kafka_bootstrap_servers=bootstrap, jwt_verify_key=PUBLIC_KEY, **FAST_HEALING,
                  event_signing_key=SIGNING_KEYS[service][0], event_verify_keys=VERIFY_KEYS)
    values.update(overrides)
    return CommonSettings(**values)


def empty_page() -> dict:
    return {"now": datetime.now(UTC).isoformat(), "events": [], "next_after_id": None}


def feed_from(client: httpx.AsyncClient, producer: str = PRODUCER):
    """A fetch for app.state.event_feed_fetch: the producer app's feed through its (in-process)
    client, with a service token; the other publishers of the consumer's topics have nothing."""
    from tests.support.apps import bearer

    headers = bearer("service", subject="consumer")

    async def fetch(name: str, params: dict) -> dict:
        if name != producer:
            return empty_page()
        response = await client.get("/events/feed", params=params, headers=headers)
        response.raise_for_status()
        return response.json()

    return fetch


@dataclass
class Readiness:
    """/readyz of one app, polled every `interval` s: (monotonic time, status, body)."""

    samples: list[tuple[float, int, dict]] = field(default_factory=list)

    def since(self, t: float) -> list[tuple[float, int, dict]]:
        return [s for s in self.samples if s[0] >= t]

    def first_ready_after(self, t: float) -> float | None:
        return next((at for at, status, _ in self.since(t) if status == 200), None)

    def stuck_seen_after(self, t: float) -> bool:
        return any(status == 503 and body.get("checks", {}).get("consumer") is False
                   for _, status, body in self.since(t))


async def poll_readiness(get, readiness: Readiness, interval: float = 0.2) -> None:
    while True:
        try:
            response = await get("/readyz")
            readiness.samples.append((time.monotonic(), response.status_code, response.json()))
        except Exception:
            readiness.samples.append((time.monotonic(), 0, {}))
        await asyncio.sleep(interval)


@dataclass
class Writers:
    """Concurrent writers on the producer: every 201 is an accepted write (its subject).

    A write whose answer never came (a connection cut, the writer stopped mid-request) may or may
    not have committed: it is `uncertain`, and may show up once or not at all."""

    post: object
    accepted: list[str] = field(default_factory=list)
    accepted_at: list[float] = field(default_factory=list)
    uncertain: set[str] = field(default_factory=set)
    refused: int = 0
    tasks: list[asyncio.Task] = field(default_factory=list)

    def start(self, n: int = 4, pause: float = 0.01) -> None:
        from tests.support.apps import bearer

        headers = bearer("bureau_admin", subject="writer")

        async def write_forever() -> None:
            while True:
                subject = str(uuid.uuid4())
                self.uncertain.add(subject)  # until an answer says otherwise
                try:
                    response = await self.post("/writes", json={"subject": subject}, headers=headers)
                except Exception:
                    self.refused += 1
                    await asyncio.sleep(pause)
                    continue
                if response.status_code == 201:
                    self.accepted.append(subject)
                    self.accepted_at.append(time.monotonic())
                else:
                    self.refused += 1  # a clear refusal (4xx, 503) changed nothing
                self.uncertain.discard(subject)
                await asyncio.sleep(pause)

        self.tasks = [asyncio.create_task(write_forever()) for _ in range(n)]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def check_exactly_once(self, counts: dict[str, int]) -> None:
        """Every accepted write applied once; nothing else but uncertain writes, each at most once."""
        lost = set(self.accepted) - set(counts)
        duplicated = {s for s, n in counts.items() if n > 1}
        unknown = set(counts) - set(self.accepted) - self.uncertain
        assert not (lost or duplicated or unknown), (
            f"lost {len(lost)}, duplicated {len(duplicated)}, never written {len(unknown)}")

    def before(self, t: float) -> list[str]:
        return [s for s, at in zip(self.accepted, self.accepted_at, strict=True) if at < t]


async def effect_counts(database_url: str, effect: Table) -> dict[str, int]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return dict((await conn.execute(select(effect.c.subject, effect.c.applied))).all())
    finally:
        await engine.dispose()


class EffectReader:
    """Reads the consumer's effect table on one engine of its own."""

    def __init__(self, database_url: str, effect: Table) -> None:
        self.engine = create_async_engine(database_url, pool_size=2)
        self.effect = effect

    async def counts(self) -> dict[str, int]:
        async with self.engine.connect() as conn:
            return dict((await conn.execute(select(self.effect.c.subject, self.effect.c.applied))).all())

    async def wait_for(self, subjects: list[str], timeout: float) -> float | None:
        """Seconds until every subject has an effect, or None on timeout."""
        started = time.monotonic()
        wanted = set(subjects)
        while time.monotonic() - started < timeout:
            if wanted <= set(await self.counts()):
                return time.monotonic() - started
            await asyncio.sleep(0.1)
        return None

    async def close(self) -> None:
        await self.engine.dispose()


class BrokerProcess:
    """The dev broker on a fixed port: SIGKILL it, start a new one on the same port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or infra.free_port()
        self.broker: infra.Broker | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        deadline = time.monotonic() + 15
        while True:  # the killed broker's socket may linger an instant
            try:
                self.broker = infra.start_broker(self.port)
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def kill(self) -> None:
        if self.broker is not None:
            self.broker.process.send_signal(signal.SIGKILL)
            self.broker.process.wait(10)

    def stop(self) -> None:
        if self.broker is not None:
            self.broker.stop()


@contextlib.asynccontextmanager
async def two_services(settings_env: dict[str, str], database_url: str, broker: BrokerProcess,
                       **consumer_overrides) -> AsyncIterator[dict]:
    """The producer and the consumer apps in-process (lifespans started), the consumer's feed wired
    to the producer app."""
    from tests.support.apps import running

    run = uuid.uuid4().hex[:8]
    pspec = producer_spec(f"fp_{run}")
    cspec, effect = consumer_spec(f"fc_{run}")
    await create_schema(database_url, pspec.metadata)
    await create_schema(database_url, cspec.metadata)
    producer = create_service_app(pspec, settings_for(settings_env, broker.bootstrap, PRODUCER))
    consumer = create_service_app(cspec, settings_for(settings_env, broker.bootstrap, CONSUMER,
                                                      consumer_group=f"heal-{run}", **consumer_overrides))
    async with running(producer) as (_, pclient), running(consumer) as (_, cclient):
        consumer.state.event_feed_fetch = feed_from(pclient)
        reader = EffectReader(database_url, effect)
        try:
            yield {"producer": producer, "consumer": consumer, "pclient": pclient, "cclient": cclient,
                   "effect": effect, "reader": reader, "run": run}
        finally:
            await reader.close()


# --- the consumer as a process of its own (SIGKILL test) --------------------------------------------

def consumer_env(settings_env: dict[str, str], *, bootstrap: str, schema: str, group: str, port: int,
                 producer_url: str, service_token: str) -> dict[str, str]:
    import json

    names = ["registry", "selection", "casework", "appraisal", "finance"]
    env = {**os.environ, **{k.upper(): v for k, v in settings_env.items()},
           **{k.upper(): str(v) for k, v in FAST_HEALING.items()},
           "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "CONSUMER_GROUP": group, "SERVICE_TOKEN": service_token,
           # the producer answers for every publisher of the consumer's topics (it has no calendar events)
           "SERVICE_URLS": json.dumps({n: producer_url for n in names if n != CONSUMER}),
           "EVENT_SIGNING_KEY": SIGNING_KEYS[CONSUMER][0], "EVENT_VERIFY_KEYS": json.dumps(VERIFY_KEYS),
           "FAULT_SCHEMA": schema, "FAULT_PORT": str(port), "PYTHONPATH": str(ROOT)}
    return env


def start_consumer_process(env: dict[str, str], log_path: Path | None = None) -> subprocess.Popen:
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-m", "tests.support.faults", "consume"], env=env, cwd=ROOT,
                            stdout=out, stderr=subprocess.STDOUT, preexec_fn=infra.die_with_parent)


def consumer_process_app() -> FastAPI:
    spec, _ = consumer_spec(os.environ["FAULT_SCHEMA"])
    return create_service_app(spec, CommonSettings())


def _serve_consumer() -> None:
    import uvicorn

    uvicorn.run(consumer_process_app(), host="127.0.0.1", port=int(os.environ["FAULT_PORT"]), log_config=None,
                access_log=False)


if __name__ == "__main__" and sys.argv[1:] == ["consume"]:
    _serve_consumer()

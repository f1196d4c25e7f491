"""Notify: an event → the message in the supervisor's inbox (issue 14: ≤ 1 s p99 after its event).

What runs, as in production: selection's own outbox table (its real schema) and an `OutboxRelay` in this
process publish signed `SupervisorDrawn` events (R12.1) on the real topic; the notify service runs under
uvicorn in its own process (`bench.serve`) with its consumer, its scheduler and its SMS job (development
sender: the SMS goes to the log). One event at a time: from the COMMIT of selection's outbox transaction
(SQLAlchemy `after_commit`, `time.perf_counter()`) to the moment notify's message row is visible to a
reader (this process polls notify.message every 2 ms by the event's request id; the inbox reads the same
committed row). At the end one `GET /inbox` of a drawn supervisor shows the message is there for them.

Baseline in the same run, on the same broker: the raw aiokafka round trip of bench_events (send() → the
record returned by a group consumer's getmany, one at a time, fetch_max_wait_ms=10 as the dev stack).
Ratio = notify's latency / the raw round trip at the same percentile; target: p99 ≤ 1 000 ms absolute.
"""

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import event as sa_event
from sqlalchemy import text

from bench import event_keys, ratio, serve, servers, summarize_ms
from bench.bench_events import FETCH_MAX_WAIT_MS, make_settings, random_key, raw_round_trip
from services.selection.models import platform as selection_platform
from shared.crypto import FieldCipher
from shared.db import Database
from shared.db.migrations import service_migrations, upgrade
from shared.events.contracts import SupervisorDrawn
from shared.events.outbox import Outbox, OutboxRelay
from shared.tokens import generate_dev_keypair, mint

TARGET_P99_MS = 1_000.0
POLL_S = 0.002


def drawn(supervisor_id: uuid.UUID) -> SupervisorDrawn:
    return SupervisorDrawn(
        request_id=uuid.uuid4(), draw_id=uuid.uuid4(), supervisor_id=supervisor_id, name="张三",
        phone="13912345678", district="环翠区", specialties=["法律"], group="local", draw_order=1,
        confirmed_at=datetime.now(UTC))


async def visible_at(db: Database, request_id: uuid.UUID, timeout: float) -> float:
    """perf_counter() when notify's message about this request is committed (polled every 2 ms)."""
    deadline = time.perf_counter() + timeout
    query = text("SELECT 1 FROM notify.message WHERE subject_id = :s AND kind = 'supervisor_drawn'")
    while time.perf_counter() < deadline:
        async with db.engine.connect() as conn:
            if await conn.scalar(query, {"s": str(request_id)}):
                return time.perf_counter()
        await asyncio.sleep(POLL_S)
    raise TimeoutError(f"no message for request {request_id} within {timeout} s")


async def event_to_inbox(db: Database, outbox: Outbox, supervisor_id: uuid.UUID, timeout: float) -> float:
    """Seconds from the outbox COMMIT of one SupervisorDrawn to notify's message being readable."""
    committed: list[float] = []
    event = drawn(supervisor_id)
    async with db.transaction() as session:
        await outbox.add(session, event)
        sa_event.listen(session.sync_session, "after_commit", lambda _s: committed.append(time.perf_counter()))
    return await visible_at(db, event.request_id, timeout) - committed[0]


async def main(args: argparse.Namespace) -> dict:
    quick = bool(getattr(args, "quick", False))
    n, warmup, raw_n = (60, 5, 200) if quick else (200, 10, 500)
    load_before = os.getloadavg()[0]
    private_jwt, public_jwt = generate_dev_keypair()
    signing, verify = event_keys("selection", "notify")
    supervisor_id = uuid.uuid4()
    with servers("notify") as (database_url, bootstrap), \
            tempfile.TemporaryDirectory(prefix="bench-notify-", ignore_cleanup_errors=True) as tmp:
        for name in ("selection", "notify"):
            await asyncio.to_thread(upgrade, service_migrations(name), database_url)
        settings = make_settings(database_url, bootstrap, signing_key=signing["selection"],
                                 verify_key=verify["selection"])
        raw = await raw_round_trip(settings, f"notify-raw-{uuid.uuid4().hex[:8]}", raw_n, 20)
        notify_env = {
            "DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "KAFKA_IDEMPOTENT_PRODUCER": "false",
            "KAFKA_FETCH_MAX_WAIT_MS": str(FETCH_MAX_WAIT_MS), "FIELD_ENCRYPTION_KEY": random_key(),
            "FIELD_HASH_KEY": random_key(), "JWT_VERIFY_KEY": public_jwt, "LOG_LEVEL": "WARNING",
            "ENVIRONMENT": "test", "EVENT_SIGNING_KEY": signing["notify"], "EVENT_VERIFY_KEYS": json.dumps(verify),
            "CONSUMER_GROUP": f"notify-bench-{uuid.uuid4().hex[:8]}", "SERVICE_URLS": "{}",
            # quiet hours off: every SMS of the run is sent (to the log), whatever the hour
            "QUIET_HOURS_START": "00:00", "QUIET_HOURS_END": "00:00",
        }
        db = Database(database_url)
        relay = OutboxRelay(db, selection_platform.outbox, settings, name="bench-notify-relay")
        outbox = Outbox(selection_platform.outbox, source="selection", cipher=FieldCipher.from_settings(
            settings.field_encryption_key.get_secret_value(), settings.field_hash_key.get_secret_value()))
        relay_task = asyncio.create_task(relay.run())
        try:
            async with serve("services.notify.app:create_app", notify_env, Path(tmp) / "notify.log") as notify_url:
                for i in range(warmup):  # the consumer group joins; caches fill
                    await event_to_inbox(db, outbox, supervisor_id, 120.0 if i == 0 else 30.0)
                started = time.perf_counter()
                latencies = [await event_to_inbox(db, outbox, supervisor_id, 30.0) for _ in range(n)]
                elapsed = time.perf_counter() - started
                token = mint(private_jwt, subject="bench-supervisor", roles=["supervisor"],
                             supervisor_id=str(supervisor_id))
                async with httpx.AsyncClient(base_url=notify_url, timeout=10) as client:
                    page = (await client.get("/inbox", params={"kind": "supervisor_drawn", "limit": 1},
                                             headers={"Authorization": f"Bearer {token}"})).json()
                sms_sent = await sms_counts(db)
        finally:
            relay_task.cancel()
            await asyncio.gather(relay_task, return_exceptions=True)
            await relay.close()
            await db.dispose()
    notify = summarize_ms(latencies)
    baseline = summarize_ms(raw)
    rows = []
    for p in ("p50", "p99"):
        value, base = notify[f"{p}_ms"], baseline[f"{p}_ms"]
        row = {"metric": f"event -> inbox {p}", "value": value, "unit": "ms", "baseline": base,
               "ratio": ratio(value, base)}
        if p == "p99":
            row |= {"target": f"<= {TARGET_P99_MS:.0f} ms", "ok": value <= TARGET_P99_MS}
        rows.append(row)
    rows.append({"metric": "events (one at a time)", "value": n, "unit": "events"})
    rows.append({"metric": "inbox total for the supervisor", "value": page.get("total"), "unit": "messages",
                 "target": f"= {warmup + n}", "ok": page.get("total") == warmup + n})
    return {
        "rows": rows, "notify": notify, "raw_round_trip": baseline, "elapsed_s": round(elapsed, 1),
        "sms": sms_sent, "load_average_before": load_before, "load_average_after": os.getloadavg()[0],
        "notes": [
            "from selection's outbox COMMIT (its OutboxRelay here) to notify's message row committed (notify under "
            "uvicorn in its own process: signed consumer, inbox dedupe, message + deliveries in one transaction)",
            "baseline: the raw aiokafka round trip of bench_events on the same broker, fetch_max_wait_ms=10",
            f"load average before {load_before:.1f}",
        ],
    }


async def sms_counts(db: Database) -> dict[str, int]:
    """Delivery states of the run's SMS (the development sender writes them to notify's log)."""
    async with db.engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT status, count(*) FROM notify.delivery WHERE channel = 'sms' GROUP BY status"))).all()
    return {status: count for status, count in rows}

"""Casework's activities work list over 50 000 activities: the casework app beside a bare FastAPI + asyncpg endpoint.

The method of bench/bench_registry.py (its minimal keep-alive client, closed-loop capacity, open-loop latency, one
uvicorn process per server on 127.0.0.1, the same embedded PostgreSQL table), for `GET /activities` (issue 14):

- page:   GET /activities?limit=50[&cursor=…]          (the bureau's list, newest first; pages 1–20 by keyset)
- filter: GET /activities?district=D&status=open&from=&to=&limit=50  (district, state, one month)
- type:   GET /activities?activity_type=T&limit=50
- case:   GET /activities?case_ref=…                    (one case number)

The casework app answers with its full stack (JWT, authorization, R2.1 scoping, the signed cursor, the total count,
the response model); the baseline runs the page query (same keyset order, same filters) through a bare asyncpg pool
and returns the rows (no auth, no count, no cursor).

1. Capacity: closed loop, 50 keep-alive clients, alternating servers (information; the baseline's sets the rate).
2. Latency (target: casework p99 <= 50 ms): open loop at OPEN_LOOP_FRACTION (50 %) of the baseline's measured
   closed-loop throughput, the same rate for both, latency from each request's scheduled send time (no coordinated
   omission); met only if casework also answered >= 95 % of the scheduled rate.
"""

import argparse
import asyncio
import contextlib
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import asyncpg
from fastapi import FastAPI, Query
from pydantic_settings import BaseSettings, SettingsConfigDict

from bench import percentile, ratio, serve, summarize_ms
from bench.bench_registry import Connection, key, median_run
from shared.activity_types import ACTIVITY_TYPES
from shared.db.migrations import service_migrations, upgrade
from shared.devstack import infra
from shared.tokens import generate_dev_keypair, mint

TARGET_P99_MS = 50.0
POOL = 40
OPEN_LOOP_FRACTION = 0.5
OPEN_LOOP_CONNECTIONS = 50
OPEN_LOOP_DRAIN_S = 10.0
ACTIVITIES = 50_000
DISTRICTS = ["环翠区", "文登区", "荣成市", "乳山市", "高区", "经区", "临港区"]
FIRST_DAY = date(2025, 1, 1)
DAYS = 730


class BaselineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BENCH_BASELINE_")
    dsn: str


BASELINE_SQL = """SELECT id, case_ref, activity_type, other_description, hearing_matter, mandatory_invitation, office,
       district, starts_at, ends_at, place, summary, status, created_by, created_at, held_at
FROM casework.activity
WHERE ($1::text IS NULL OR district = $1) AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR activity_type = $3) AND ($4::text IS NULL OR case_ref = $4)
  AND ($5::timestamptz IS NULL OR starts_at >= $5) AND ($6::timestamptz IS NULL OR starts_at < $6)
ORDER BY starts_at DESC, id DESC LIMIT $7"""


def baseline_app() -> FastAPI:
    """The bare endpoint: one asyncpg pool, the page query with the same filters, rows as JSON."""
    settings = BaselineSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.pool = await asyncpg.create_pool(settings.dsn, min_size=10, max_size=POOL)
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/activities")
    async def activities(limit: int = Query(50, le=200), district: str | None = None, status: str | None = None,
                         activity_type: str | None = None, case_ref: str | None = None,
                         since: date | None = Query(None, alias="from"), until: date | None = Query(None, alias="to"),
                         cursor: str | None = None) -> dict:
        start = None if since is None else datetime.combine(since, datetime.min.time(), tzinfo=UTC)
        end = None if until is None else datetime.combine(until + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        async with app.state.pool.acquire() as conn:
            rows = await conn.fetch(BASELINE_SQL, district, status, activity_type, case_ref, start, end, limit + 1)
        return {"items": [dict(r) for r in rows[:limit]], "limit": limit}

    return app


def rows(n: int, rng: random.Random) -> list[tuple]:
    out = []
    for i in range(n):
        starts = datetime.combine(FIRST_DAY + timedelta(days=rng.randrange(DAYS)), datetime.min.time(), tzinfo=UTC) \
            + timedelta(hours=rng.randint(0, 9))
        district = DISTRICTS[i % len(DISTRICTS)]
        status = rng.choices(("open", "held", "cancelled"), (3, 6, 1))[0]
        out.append((uuid.uuid4(), f"威检刑诉〔{starts.year}〕{i}号", rng.choice(ACTIVITY_TYPES[:-1]), False,
                    f"{district}人民检察院", district, starts, starts + timedelta(hours=3), "第一听证室",
                    "对拟不起诉案件举行公开听证。", status, "bench"))
    return out


COLUMNS = ["id", "case_ref", "activity_type", "mandatory_invitation", "office", "district", "starts_at", "ends_at",
           "place", "summary", "status", "created_by"]


async def load(dsn: str, data: list[tuple]) -> float:
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table("activity", schema_name="casework", records=data, columns=COLUMNS)
        await conn.execute("VACUUM ANALYZE casework.activity")
    finally:
        await conn.close()
    return time.perf_counter() - started


def filter_paths(n: int, case_refs: list[str]) -> list[str]:
    """The filtered kinds of request (district + state + month, type, case number), cycling."""
    out = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            month = FIRST_DAY + timedelta(days=30 * (i % 24))
            out.append(f"/activities?limit=50&district={DISTRICTS[i % 7]}&status=open&from={month.isoformat()}"
                       f"&to={(month + timedelta(days=30)).isoformat()}")
        elif kind == 1:
            out.append(f"/activities?limit=50&activity_type={ACTIVITY_TYPES[i % (len(ACTIVITY_TYPES) - 1)]}")
        else:
            out.append(f"/activities?case_ref={case_refs[i % len(case_refs)]}")
    return [quote(p, safe="/?&=") for p in out]


async def page_paths(base: str, headers: dict[str, str], pages: int) -> list[str]:
    """Pages 1..pages of the bureau's list, each by the cursor the previous page returned (casework's own)."""
    import json

    host, port = base.removeprefix("http://").split(":")
    conn = Connection(host, int(port), headers)
    out, path = [], "/activities?limit=50"
    try:
        for _ in range(pages):
            out.append(path)
            status, body = await conn.get(path)
            assert status == 200, body[:300]
            cursor = json.loads(body)["next_cursor"]
            path = "/activities?limit=50&cursor=" + quote(cursor, safe="")
    finally:
        await conn.close()
    return out


def mixed(pages: list[str], filtered: list[str], n: int) -> list[str]:
    return [pages[i // 2 % len(pages)] if i % 2 == 0 else filtered[i // 2 % len(filtered)] for i in range(n)]


def ok(status: int, body: bytes) -> bool:
    return status == 200 and b'"items":[' in body


async def run_load(base: str, headers: dict[str, str], todo: list[str], concurrency: int, time_limit: float) -> dict:
    host, port = base.removeprefix("http://").split(":")
    latencies: list[float] = []
    errors = 0
    connections = [Connection(host, int(port), headers) for _ in range(concurrency)]
    for path in todo[:100]:
        await connections[0].get(path)
    queue = iter(todo)
    deadline = time.monotonic() + time_limit

    async def worker(conn: Connection) -> None:
        nonlocal errors
        for path in queue:
            if time.monotonic() > deadline:
                return
            started = time.perf_counter()
            try:
                status, body = await conn.get(path)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                errors += 1
                await conn.close()
                continue
            latencies.append(time.perf_counter() - started)
            errors += not ok(status, body)

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    elapsed = time.perf_counter() - started
    for conn in connections:
        await conn.close()
    return {**summarize_ms(latencies), "rps": round(len(latencies) / elapsed, 1), "errors": errors}


async def run_open_loop(base: str, headers: dict[str, str], todo: list[str], rate: float) -> dict:
    """As bench_registry.run_open_loop: request i due at start + i/rate, latency from that scheduled time."""
    host, port = base.removeprefix("http://").split(":")
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(OPEN_LOOP_CONNECTIONS):
        conn = Connection(host, int(port), headers)
        await conn.get(todo[0])
        idle.put_nowait(conn)
    latencies: list[float] = []
    send_lag: list[float] = []
    errors = 0

    async def one(path: str, due: float) -> None:
        nonlocal errors
        conn = await idle.get()
        try:
            status, body = await conn.get(path)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
            await conn.close()
            return
        finally:
            idle.put_nowait(conn)
        latencies.append(time.perf_counter() - due)
        errors += not ok(status, body)

    tasks = []
    start = time.perf_counter()
    for i, path in enumerate(todo):
        due = start + i / rate
        if (wait := due - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        send_lag.append(time.perf_counter() - due)
        tasks.append(asyncio.create_task(one(path, due)))
    _, pending = await asyncio.wait(tasks, timeout=OPEN_LOOP_DRAIN_S)
    elapsed = time.perf_counter() - start
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    while not idle.empty():
        await idle.get_nowait().close()
    return {**summarize_ms(latencies), "rate": round(rate, 1), "rps": round(len(latencies) / elapsed, 1),
            "errors": errors + len(pending), "unanswered": len(pending),
            "send_lag_p99_ms": round(percentile(send_lag, 99) * 1000, 3)}


async def main(args: argparse.Namespace) -> dict:
    quick = bool(getattr(args, "quick", False))
    requests, concurrency, time_limit, rounds = (1_500, 50, 30.0, 2) if quick else (4_000, 50, 60.0, 2)
    open_seconds, open_rounds = (4.0, 3) if quick else (8.0, 3)
    load_before = os.getloadavg()[0]
    private_key, public_key = generate_dev_keypair()
    rng = random.Random(11)
    data = rows(ACTIVITIES, rng)
    case_refs = [data[i][1] for i in range(0, ACTIVITIES, 997)]
    casework_open: list[dict] = []
    baseline_open: list[dict] = []
    casework_runs: list[dict] = []
    baseline_runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-worklists-", ignore_cleanup_errors=True) as tmp:
        postgres = infra.start_postgres(Path(tmp) / "pg", cleanup="delete")
        try:
            await asyncio.to_thread(upgrade, service_migrations("casework"), postgres.url)
            dsn = postgres.url.replace("postgresql+asyncpg://", "postgresql://")
            load_s = await load(dsn, data)
            env = {"DATABASE_URL": postgres.url, "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{infra.free_port()}",
                   "KAFKA_IDEMPOTENT_PRODUCER": "false", "FIELD_ENCRYPTION_KEY": key(), "FIELD_HASH_KEY": key(),
                   "JWT_VERIFY_KEY": public_key, "LOG_LEVEL": "WARNING", "ENVIRONMENT": "test",
                   "OUTBOX_POLL_SECONDS": "30", "DATABASE_POOL_SIZE": str(POOL), "RECEIPT_CHECK_SECONDS": "3600"}
            auth = {"Authorization": "Bearer " + mint(private_key, subject="bench", roles=["bureau_admin"])}
            async with (
                serve("bench.bench_worklists:baseline_app", {"BENCH_BASELINE_DSN": dsn},
                      Path(tmp) / "baseline.log") as baseline_url,
                serve("services.casework.app:create_app", env, Path(tmp) / "casework.log") as casework_url,
            ):
                pages = await page_paths(casework_url, auth, 20)
                filtered = filter_paths(60, case_refs)
                # the baseline reads the same pages by the same filters (its cursor is ignored: page 1 each time,
                # the cheapest keyset page) — casework pays the cursor's check and the seek after the key
                todo = mixed(pages, filtered, requests)
                for _ in range(rounds):
                    baseline_runs.append(await run_load(baseline_url, {}, todo, concurrency, time_limit))
                    casework_runs.append(await run_load(casework_url, auth, todo, concurrency, time_limit))
                rate = OPEN_LOOP_FRACTION * median_run(baseline_runs)["rps"]
                paced = mixed(pages, filtered, int(rate * open_seconds))
                for _ in range(open_rounds):
                    baseline_open.append(await run_open_loop(baseline_url, {}, paced, rate))
                    casework_open.append(await run_open_loop(casework_url, auth, paced, rate))
            if any(r["errors"] for r in casework_runs + casework_open):
                print((Path(tmp) / "casework.log").read_text()[-3000:], file=sys.stderr)
        finally:
            postgres.stop()
    casework, baseline = median_run(casework_runs), median_run(baseline_runs)
    casework_paced, baseline_paced = median_run(casework_open, "p99_ms"), median_run(baseline_open, "p99_ms")
    kept_up = casework_paced["rps"] >= 0.95 * rate and not casework_paced["unanswered"]
    label = f"open loop, {rate:.0f} req/s"
    return {
        "rows": [
            {"metric": f"casework activities p99, {label}", "value": casework_paced.get("p99_ms"), "unit": "ms",
             "baseline": baseline_paced.get("p99_ms"),
             "ratio": ratio(casework_paced.get("p99_ms"), baseline_paced.get("p99_ms")),
             "target": f"<= {TARGET_P99_MS:.0f} ms", "ok": kept_up and (casework_paced.get("p99_ms") or 1e9)
             <= TARGET_P99_MS},
            {"metric": f"casework activities p50, {label}", "value": casework_paced.get("p50_ms"), "unit": "ms",
             "baseline": baseline_paced.get("p50_ms"),
             "ratio": ratio(casework_paced.get("p50_ms"), baseline_paced.get("p50_ms"))},
            {"metric": f"casework answered, {label}", "value": casework_paced["rps"], "unit": "req/s",
             "baseline": baseline_paced["rps"]},
            {"metric": f"throughput, closed loop, {concurrency} clients", "value": casework["rps"], "unit": "req/s",
             "baseline": baseline["rps"], "ratio": ratio(casework["rps"], baseline["rps"])},
            {"metric": "errors (casework / baseline)", "value": sum(r["errors"] for r in casework_runs + casework_open),
             "unit": "", "baseline": sum(r["errors"] for r in baseline_runs + baseline_open)},
        ],
        "notes": [
            f"{ACTIVITIES} activities (7 districts, 2 years, mixed states and types) bulk-loaded with COPY in "
            f"{load_s:.1f} s; requests alternate the bureau's pages 1-20 (keyset cursors casework issued) with "
            "filtered lists (district + open + one month, one type, one case number); baseline = bare FastAPI + "
            "asyncpg, same query and filters, no auth, no count, no cursor.",
            f"p99 target: open loop at {rate:.0f} req/s = {OPEN_LOOP_FRACTION:.0%} of the baseline's median "
            f"closed-loop throughput (req/s per round: casework {[r['rps'] for r in casework_runs]}, baseline "
            f"{[r['rps'] for r in baseline_runs]}), {open_seconds:.0f} s per round, {open_rounds} alternating rounds, "
            f"median-p99 round shown (p99 ms per round: casework {[r.get('p99_ms') for r in casework_open]}, "
            f"baseline {[r.get('p99_ms') for r in baseline_open]}); met only if casework answered >= 95% of the "
            f"rate. Load average (1 min) before/after: {load_before:.2f} / {os.getloadavg()[0]:.2f}.",
        ],
        "casework": casework_runs, "baseline": baseline_runs, "casework_open_loop": casework_open,
        "baseline_open_loop": baseline_open, "open_loop_rate": rate,
    }

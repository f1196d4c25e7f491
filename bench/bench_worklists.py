"""Work lists (issue 14) at their target sizes, each service beside a bare FastAPI + asyncpg endpoint.

The method of bench/bench_registry.py, with its client and loops (`bench.Connection`, `bench.closed_loop`,
`bench.open_loop`): one uvicorn process per server on 127.0.0.1, the same embedded PostgreSQL tables, the two servers
of a case loaded in turn from this process. Two cases, one after the other:

casework activities, 50 000 activities (`GET /activities`):
- page:   GET /activities?limit=50[&cursor=…]          (the bureau's list, newest first; pages 1–20 by keyset)
- filter: GET /activities?district=D&status=open&from=&to=&limit=50  (district, state, one month)
- type:   GET /activities?activity_type=T&limit=50
- case:   GET /activities?case_ref=…                    (one case number)

registry roster, 20 000 supervisors (`GET /supervisors`, the filters of issue 14):
- status + district:   GET /supervisors?status=active&district=D&limit=50
- specialty:           GET /supervisors?specialty=S&limit=50
- term end:            GET /supervisors?sort=term_end&term_ends_from=&term_ends_to=&limit=50  (one quarter)
- all four:            GET /supervisors?status=active&district=D&specialty=S&term_ends_from=&term_ends_to=&limit=50

Each service answers with its full stack (JWT, authorization, R2.1 scoping, the signed cursor, the total count, the
page rendered as JSON by PostgreSQL); the baselines run the page query (same keyset order, same filters) through a
bare asyncpg pool and return the rows (no auth, no count, no cursor).

1. Capacity: closed loop, 50 keep-alive clients, alternating servers (information; the baseline's sets the rate).
2. Latency (target: p99 <= 50 ms): open loop at OPEN_LOOP_FRACTION (50 %) of the baseline's measured closed-loop
   throughput, the same rate for both, latency from each request's scheduled send time (no coordinated omission);
   met only if the service also answered >= 95 % of the scheduled rate.
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

from bench import Connection, closed_loop, key, median_run, open_loop, ratio, serve
from bench import bench_registry as registry_bench
from shared.activity_types import ACTIVITY_TYPES
from shared.crypto import FieldCipher
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
        # what autovacuum does soon after a bulk load (the tally triggers leave dead row versions)
        await conn.execute("VACUUM ANALYZE casework.activity")
        await conn.execute("VACUUM ANALYZE casework.activity_tally")
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

    conn = Connection.to(base, headers)
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


# --- registry roster: 20 000 supervisors, the filters of issue 14 ----------------------------------------------

SUPERVISORS = 20_000
ROSTER_COLUMNS = ("id, name, gender, district, employer, specialties, status, phone_masked, term_start, term_end, "
                  "certificate_no, initial_passed_on, initial_training_due, eligible")  # as bench_registry's baseline
ROSTER_SORTS = {"name": "name", "term_end": "coalesce(term_end, DATE '2999-12-31')"}


def roster_baseline_app() -> FastAPI:
    """The bare roster endpoint: one asyncpg pool, the page query with only the filters given, rows as JSON."""
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

    @app.get("/supervisors")
    async def supervisors(limit: int = Query(50, le=200), status: str | None = None, district: str | None = None,
                          specialty: str | None = None, term_ends_from: date | None = None,
                          term_ends_to: date | None = None, sort: str = "name") -> dict:
        where, args = ["TRUE"], []
        for condition, value in (("status = ${}", status), ("district = ${}", district),
                                 ("specialties @> ARRAY[${}::text]", specialty), ("term_end >= ${}", term_ends_from),
                                 ("term_end <= ${}", term_ends_to)):
            if value is not None:
                args.append(value)
                where.append(condition.format(len(args)))
        key = ROSTER_SORTS[sort]
        sql = (f"SELECT {ROSTER_COLUMNS} FROM registry.supervisor WHERE {' AND '.join(where)} "
               f"ORDER BY {key}, id LIMIT ${len(args) + 1}")
        async with app.state.pool.acquire() as conn:
            rows = await conn.fetch(sql, *args, limit + 1)
        return {"items": [dict(r) for r in rows[:limit]], "limit": limit}

    return app


def roster_paths(n: int) -> list[str]:
    """The roster list by the filters of issue 14, cycling: status + district, specialty, term end (one quarter,
    by term end), all four."""
    out = []
    for i in range(n):
        district = registry_bench.DISTRICTS[i % 7]
        specialty = registry_bench.SPECIALTIES[i % len(registry_bench.SPECIALTIES)]
        quarter = date(2026 + i % 5, 1 + 3 * (i // 5 % 4), 1)
        ends = f"term_ends_from={quarter.isoformat()}&term_ends_to={(quarter + timedelta(days=90)).isoformat()}"
        out.append([f"/supervisors?status=active&district={district}&limit=50",
                    f"/supervisors?specialty={specialty}&limit=50",
                    f"/supervisors?sort=term_end&{ends}&limit=50",
                    f"/supervisors?status=active&district={district}&specialty={specialty}&{ends}&limit=50"][i % 4])
    return [quote(p, safe="/?&=") for p in out]


# --- one case: capacity (closed loop), then latency at half the baseline's capacity (open loop) -------------------

async def measure(name: str, baseline_url: str, service_url: str, auth: dict[str, str], todo: list[str], *,
                  paced_todo, quick: bool) -> dict:
    """Rows and notes of one work list against its baseline (`paced_todo(n)`: the n paths of an open-loop round)."""
    concurrency, time_limit, rounds = (50, 30.0, 2) if quick else (50, 60.0, 2)
    open_seconds, open_rounds = (4.0, 3) if quick else (8.0, 3)
    service_runs, baseline_runs, service_open, baseline_open = [], [], [], []
    for _ in range(rounds):
        baseline_runs.append(await closed_loop(baseline_url, {}, todo, concurrency=concurrency,
                                               time_limit=time_limit, ok=ok))
        service_runs.append(await closed_loop(service_url, auth, todo, concurrency=concurrency,
                                              time_limit=time_limit, ok=ok))
    rate = OPEN_LOOP_FRACTION * median_run(baseline_runs)["rps"]
    paced = paced_todo(int(rate * open_seconds))
    for _ in range(open_rounds):
        for url, headers, runs in ((baseline_url, {}, baseline_open), (service_url, auth, service_open)):
            runs.append(await open_loop(url, headers, paced, rate=rate, ok=ok, connections=OPEN_LOOP_CONNECTIONS,
                                        drain_s=OPEN_LOOP_DRAIN_S))
    service, baseline = median_run(service_runs), median_run(baseline_runs)
    service_paced, baseline_paced = median_run(service_open, "p99_ms"), median_run(baseline_open, "p99_ms")
    kept_up = service_paced["rps"] >= 0.95 * rate and not service_paced["unanswered"]
    label = f"open loop, {rate:.0f} req/s"
    return {
        "rows": [
            {"metric": f"{name} p99, {label}", "value": service_paced.get("p99_ms"), "unit": "ms",
             "baseline": baseline_paced.get("p99_ms"),
             "ratio": ratio(service_paced.get("p99_ms"), baseline_paced.get("p99_ms")),
             "target": f"<= {TARGET_P99_MS:.0f} ms",
             "ok": kept_up and (service_paced.get("p99_ms") or 1e9) <= TARGET_P99_MS},
            {"metric": f"{name} p50, {label}", "value": service_paced.get("p50_ms"), "unit": "ms",
             "baseline": baseline_paced.get("p50_ms"),
             "ratio": ratio(service_paced.get("p50_ms"), baseline_paced.get("p50_ms"))},
            {"metric": f"{name} answered, {label}", "value": service_paced["rps"], "unit": "req/s",
             "baseline": baseline_paced["rps"]},
            {"metric": f"{name} throughput, closed loop, {concurrency} clients", "value": service["rps"],
             "unit": "req/s", "baseline": baseline["rps"], "ratio": ratio(service["rps"], baseline["rps"])},
            {"metric": f"{name} errors", "value": sum(r["errors"] for r in service_runs + service_open),
             "unit": "", "baseline": sum(r["errors"] for r in baseline_runs + baseline_open)},
        ],
        "note": (f"{name}: open loop at {rate:.0f} req/s = {OPEN_LOOP_FRACTION:.0%} of the baseline's median "
                 f"closed-loop throughput (req/s per round: service {[r['rps'] for r in service_runs]}, baseline "
                 f"{[r['rps'] for r in baseline_runs]}), {open_seconds:.0f} s per round, {open_rounds} alternating "
                 f"rounds, median-p99 round shown (p99 ms per round: service "
                 f"{[r.get('p99_ms') for r in service_open]}, baseline {[r.get('p99_ms') for r in baseline_open]}); "
                 "met only if the service answered >= 95% of the rate."),
        "runs": {"service": service_runs, "baseline": baseline_runs, "service_open_loop": service_open,
                 "baseline_open_loop": baseline_open, "open_loop_rate": rate},
    }


async def main(args: argparse.Namespace) -> dict:
    quick = bool(getattr(args, "quick", False))
    requests = 1_500 if quick else 4_000
    load_before = os.getloadavg()[0]
    private_key, public_key = generate_dev_keypair()
    enc_key, hash_key = key(), key()
    rng = random.Random(11)
    data = rows(ACTIVITIES, rng)
    case_refs = [data[i][1] for i in range(0, ACTIVITIES, 997)]
    auth = {"Authorization": "Bearer " + mint(private_key, subject="bench", roles=["bureau_admin"])}
    with tempfile.TemporaryDirectory(prefix="bench-worklists-", ignore_cleanup_errors=True) as tmp:
        postgres = infra.start_postgres(Path(tmp) / "pg", cleanup="delete")
        try:
            await asyncio.to_thread(upgrade, service_migrations("casework"), postgres.url)
            await asyncio.to_thread(upgrade, service_migrations("registry"), postgres.url)
            dsn = postgres.url.replace("postgresql+asyncpg://", "postgresql://")
            load_s = await load(dsn, data)
            cipher = FieldCipher.from_settings(enc_key, hash_key)
            roster_load_s = await registry_bench.load(dsn, await asyncio.to_thread(
                registry_bench.rows, SUPERVISORS, cipher, random.Random(7)))
            env = {"DATABASE_URL": postgres.url, "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{infra.free_port()}",
                   "KAFKA_IDEMPOTENT_PRODUCER": "false", "FIELD_ENCRYPTION_KEY": enc_key, "FIELD_HASH_KEY": hash_key,
                   "JWT_VERIFY_KEY": public_key, "LOG_LEVEL": "WARNING", "ENVIRONMENT": "test",
                   "OUTBOX_POLL_SECONDS": "30", "DATABASE_POOL_SIZE": str(POOL), "RECEIPT_CHECK_SECONDS": "3600"}
            async with (
                serve("bench.bench_worklists:baseline_app", {"BENCH_BASELINE_DSN": dsn},
                      Path(tmp) / "baseline.log") as baseline_url,
                serve("services.casework.app:create_app", env, Path(tmp) / "casework.log") as casework_url,
            ):
                pages = await page_paths(casework_url, auth, 20)
                filtered = filter_paths(60, case_refs)
                # the baseline reads the same pages by the same filters (its cursor is ignored: page 1 each time,
                # the cheapest keyset page) — casework pays the cursor's check and the seek after the key
                casework = await measure("casework activities", baseline_url, casework_url, auth,
                                         mixed(pages, filtered, requests),
                                         paced_todo=lambda n: mixed(pages, filtered, n), quick=quick)
            async with (
                serve("bench.bench_worklists:roster_baseline_app", {"BENCH_BASELINE_DSN": dsn},
                      Path(tmp) / "roster-baseline.log") as baseline_url,
                serve("services.registry.app:create_app", env, Path(tmp) / "registry.log") as registry_url,
            ):
                roster = await measure("registry roster", baseline_url, registry_url, auth, roster_paths(requests),
                                       paced_todo=roster_paths, quick=quick)
            for name, result in (("casework", casework), ("registry", roster)):
                if result["rows"][-1]["value"]:
                    print((Path(tmp) / f"{name}.log").read_text()[-3000:], file=sys.stderr)
        finally:
            postgres.stop()
    return {
        "rows": casework["rows"] + roster["rows"],
        "notes": [
            f"{ACTIVITIES} activities (7 districts, 2 years, mixed states and types) bulk-loaded with COPY in "
            f"{load_s:.1f} s; requests alternate the bureau's pages 1-20 (keyset cursors casework issued) with "
            "filtered lists (district + open + one month, one type, one case number); baseline = bare FastAPI + "
            "asyncpg, same query and filters, no auth, no count, no cursor.",
            f"{SUPERVISORS} supervisors (bench_registry's rows) loaded with COPY in {roster_load_s:.1f} s; requests "
            "cycle status + district, specialty, term end in one quarter (sorted by term end), all four; baseline "
            "= bare FastAPI + asyncpg, the same filters and order, no auth, no count, no cursor.",
            casework["note"], roster["note"],
            f"Load average (1 min) before/after: {load_before:.2f} / {os.getloadavg()[0]:.2f} (2-core machine: "
            "client, servers and PostgreSQL share it).",
        ],
        "casework": casework["runs"], "registry": roster["runs"],
    }

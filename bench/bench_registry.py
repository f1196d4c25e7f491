"""Roster list/search over 20 000 supervisors: the registry app beside a bare FastAPI + asyncpg endpoint.

Both servers run as separate uvicorn processes (one worker each) on 127.0.0.1 against the same
embedded PostgreSQL table, and are loaded in turn from this process. The load generator is a minimal
asyncio HTTP/1.1 keep-alive client: httpx.AsyncClient used more CPU than the server it measured on
this 2-core machine. Two request kinds alternate:

- page:   GET /supervisors?limit=50&offset=k*50       (k cycles over the first 20 pages)
- search: GET /supervisors?district=D&name=S&limit=50 (district and surname prefix cycle)

The registry answers with its full stack (JWT verification, authorization, middleware, metrics,
the page plus its total count); the baseline runs the same page query through a bare asyncpg pool
and returns the rows (no auth, no count).

Three measurements, each alternating the two servers:

1. Throughput (target: the registry >= 60 % of the baseline's requests/s). Closed loop: 50 clients,
   each sending its next request as soon as its last one is answered, i.e. the servers at saturation.
   The latencies of this run are reported for information only: at saturation they are queueing,
   50 clients / throughput by Little's law (~40 ms at 1 200 req/s), for the bare baseline as well.
2. Latency at a stated load (target: registry p99 <= 50 ms). Open loop: requests are sent on a fixed
   schedule at OPEN_LOOP_FRACTION (50 %) of the baseline's measured closed-loop throughput, the same
   rate for both servers. Each latency runs from the request's scheduled send time to the end of its
   answer, so a stall delays no later request from being counted (no coordinated omission, as wrk2
   does it). The target is met only if the registry also answered >= 95 % of the scheduled rate.
   Note the same rate is a larger share of the registry's own capacity than of the baseline's.
3. One client at a time: the service time without any queueing (information).
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
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import quote

import asyncpg
from fastapi import FastAPI, Query
from pydantic_settings import BaseSettings, SettingsConfigDict

from bench import closed_loop, key, median_run, open_loop, ratio, serve
from services.registry import rules
from shared.crypto import FieldCipher, mask_id_number, mask_phone
from shared.db.migrations import service_migrations, upgrade
from shared.devstack import infra
from shared.tokens import generate_dev_keypair, mint

TARGET_RATIO = 0.60
TARGET_P99_MS = 50.0
POOL = 40  # database connections per server (both servers run at once; PostgreSQL allows 100)
OPEN_LOOP_FRACTION = 0.5  # the paced run's rate, as a fraction of the baseline's measured maximum throughput
OPEN_LOOP_CONNECTIONS = 50  # keep-alive connections of the paced run (requests in flight at most)
OPEN_LOOP_DRAIN_S = 10.0  # after the last scheduled send, answers still missing then count as errors
DISTRICTS = ["环翠区", "文登区", "荣成市", "乳山市", "高区", "经区", "临港区"]
SPECIALTIES = ["法律", "会计审计", "医学", "建筑工程", "教育", "环境资源", "金融", "信息技术", "其他"]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏"
GIVEN = "建国志强秀英丽华明辉海燕晓东文静国庆淑珍卫东玉兰振华红梅立新春生桂芳永刚晓明雪梅德胜美玲宏伟"


# --- the baseline: a bare FastAPI + asyncpg endpoint (served by uvicorn --factory) ---------------

class BaselineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BENCH_BASELINE_")
    dsn: str


BASELINE_SQL = """SELECT id, name, gender, district, employer, specialties, status, phone_masked,
       term_start, term_end, certificate_no, initial_passed_on, initial_training_due, eligible
FROM registry.supervisor WHERE ($1::text IS NULL OR district = $1) AND ($2::text IS NULL OR name LIKE $2 || '%')
ORDER BY name, id LIMIT $3 OFFSET $4"""


def baseline_app() -> FastAPI:
    """The bare endpoint: one asyncpg pool, one query, rows as JSON."""
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
    async def supervisors(limit: int = Query(50, le=200), offset: int = 0, district: str | None = None,
                          name: str | None = None) -> dict:
        async with app.state.pool.acquire() as conn:
            rows = await conn.fetch(BASELINE_SQL, district, name, limit, offset)
        return {"items": [dict(r) for r in rows], "limit": limit, "offset": offset}

    return app


# --- data --------------------------------------------------------------------------------------

def rows(n: int, cipher: FieldCipher, rng: random.Random) -> list[tuple]:
    """n supervisors with valid encrypted personal data, terms, training state and eligibility."""
    out = []
    today = date.today()
    for i in range(n):
        born = date(1960, 1, 1) + timedelta(days=rng.randint(0, 365 * 35))
        first17 = f"37{i // 1000:04d}{born:%Y%m%d}{i % 1000:03d}"  # unique per row
        id_number = first17 + rules.id_check_digit(first17)
        phone = f"13{rng.randint(5, 9)}{rng.randint(0, 99_999_999):08d}"
        start = date(2021, 1, 1) + timedelta(days=rng.randint(0, 4 * 365))
        passed = rng.random() < 0.9
        status = "active"
        eligible, reasons = rules.eligibility(status=status, initial_passed=passed, term_end_on=rules.term_end(start),
                                              excluded=False, today=today)
        out.append((
            uuid.uuid4(), rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, rng.choice((1, 2)))), rules.gender_of(
                id_number), cipher.encrypt(id_number, context="registry.supervisor.id_number"),
            cipher.blind_index(id_number, context="registry.supervisor.id_number"),
            mask_id_number(id_number), cipher.encrypt(phone, context="registry.supervisor.phone"),
            cipher.blind_index(phone, context="registry.supervisor.phone"), mask_phone(phone),
            rng.choice(DISTRICTS), "某单位", "某推荐单位", rng.sample(SPECIALTIES, rng.choice((1, 2))), status,
            f"威司任〔{start.year}〕{i}号", start, start, rules.term_end(start), f"威监证〔{start.year}〕{i:05d}",
            f"WH-GZ-{start.year}-{i:05d}", rules.initial_training_due(start), start + timedelta(days=30) if passed
            else None, eligible, reasons, "bench",
        ))
    return out


COLUMNS = ["id", "name", "gender", "id_number_encrypted", "id_number_hash", "id_number_masked",
           "phone_encrypted", "phone_hash", "phone_masked", "district", "employer", "recommending_body", "specialties",
           "status", "decision_no", "decision_date", "term_start", "term_end", "certificate_no", "work_card_no",
           "initial_training_due", "initial_passed_on", "eligible", "eligibility_reasons", "created_by"]


async def load(dsn: str, data: list[tuple]) -> float:
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table("supervisor", schema_name="registry", records=data, columns=COLUMNS)
        # what autovacuum does soon after a bulk load (the tally triggers leave dead row versions)
        await conn.execute("VACUUM ANALYZE registry.supervisor")
        await conn.execute("VACUUM ANALYZE registry.supervisor_tally")
    finally:
        await conn.close()
    return time.perf_counter() - started


# --- servers and load --------------------------------------------------------------------------

def paths(n: int) -> list[str]:
    out = []
    for i in range(n):
        if i % 2 == 0:
            out.append(f"/supervisors?limit=50&offset={(i // 2 % 20) * 50}")
        else:
            out.append(f"/supervisors?limit=50&district={DISTRICTS[i % 7]}&name={SURNAMES[i % len(SURNAMES)]}")
    return out


def registry_ok(status: int, body: bytes) -> bool:
    return status == 200 and b'"items":[{' in body


async def run_load(base: str, headers: dict[str, str], n: int, concurrency: int, time_limit: float) -> dict:
    """n requests from `concurrency` keep-alive connections (`bench.closed_loop`)."""
    return await closed_loop(base, headers, [quote(p, safe="/?&=") for p in paths(n)], concurrency=concurrency,
                             time_limit=time_limit, ok=registry_ok)


async def run_open_loop(base: str, headers: dict[str, str], rate: float, duration: float) -> dict:
    """Requests on a fixed schedule for `duration` s (`bench.open_loop`: latency from the scheduled send time)."""
    return await open_loop(base, headers, [quote(p, safe="/?&=") for p in paths(int(rate * duration))], rate=rate,
                           ok=registry_ok, connections=OPEN_LOOP_CONNECTIONS, drain_s=OPEN_LOOP_DRAIN_S)


async def main(args: argparse.Namespace) -> dict:
    quick = bool(getattr(args, "quick", False))
    supervisors, requests, concurrency, time_limit, rounds = (
        (20_000, 2_000, 50, 60.0, 2) if quick else (20_000, 6_000, 50, 120.0, 3))
    single = 300 if quick else 1_000
    open_seconds, open_rounds = (4.0, 3) if quick else (10.0, 3)  # 3 rounds: a median that one stall cannot move
    baseline_runs: list[dict] = []
    registry_runs: list[dict] = []
    baseline_open: list[dict] = []
    registry_open: list[dict] = []
    load_before = os.getloadavg()[0]
    private_key, public_key = generate_dev_keypair()
    enc_key, hash_key = key(), key()
    cipher = FieldCipher.from_settings(enc_key, hash_key)
    with tempfile.TemporaryDirectory(prefix="bench-registry-", ignore_cleanup_errors=True) as tmp:
        postgres = infra.start_postgres(Path(tmp) / "pg", cleanup="delete")
        try:
            await asyncio.to_thread(upgrade, service_migrations("registry"), postgres.url)
            dsn = postgres.url.replace("postgresql+asyncpg://", "postgresql://")
            load_s = await load(dsn, await asyncio.to_thread(rows, supervisors, cipher, random.Random(7)))
            registry_env = {
                "DATABASE_URL": postgres.url, "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{infra.free_port()}",
                "KAFKA_IDEMPOTENT_PRODUCER": "false", "FIELD_ENCRYPTION_KEY": enc_key, "FIELD_HASH_KEY": hash_key,
                "JWT_VERIFY_KEY": public_key, "LOG_LEVEL": "WARNING", "ENVIRONMENT": "test",
                "OUTBOX_POLL_SECONDS": "30", "DATABASE_POOL_SIZE": str(POOL),
            }
            token = mint(private_key, subject="bench", roles=["bureau_admin"])
            auth = {"Authorization": f"Bearer {token}"}
            async with (
                serve("bench.bench_registry:baseline_app", {"BENCH_BASELINE_DSN": dsn},
                      Path(tmp) / "baseline.log") as baseline_url,
                serve("services.registry.app:create_app", registry_env, Path(tmp) / "registry.log") as registry_url,
            ):
                # 1. saturation (closed loop): alternate the two servers so both see the same background load
                for _ in range(rounds):
                    baseline_runs.append(await run_load(baseline_url, {}, requests, concurrency, time_limit))
                    registry_runs.append(await run_load(registry_url, auth, requests, concurrency, time_limit))
                # 2. latency at a stated load (open loop): both servers at the same fixed rate, a fraction of
                #    the baseline's measured maximum
                rate = OPEN_LOOP_FRACTION * median_run(baseline_runs)["rps"]
                for _ in range(open_rounds):
                    baseline_open.append(await run_open_loop(baseline_url, {}, rate, open_seconds))
                    registry_open.append(await run_open_loop(registry_url, auth, rate, open_seconds))
                # 3. service latency without queueing: one client at a time
                baseline_single = await run_load(baseline_url, {}, single, 1, time_limit)
                registry_single = await run_load(registry_url, auth, single, 1, time_limit)
            if any(r["errors"] for r in registry_runs + registry_open):
                print((Path(tmp) / "registry.log").read_text()[-3000:], file=sys.stderr)
        finally:
            postgres.stop()
    registry, baseline = median_run(registry_runs), median_run(baseline_runs)
    registry_paced, baseline_paced = median_run(registry_open, "p99_ms"), median_run(baseline_open, "p99_ms")
    throughput_ratio = ratio(registry["rps"], baseline["rps"])
    paced = f"open loop, {rate:.0f} req/s"
    kept_up = registry_paced["rps"] >= 0.95 * rate and not registry_paced["unanswered"]
    return {
        "rows": [
            {"metric": "registry list/search throughput", "value": registry["rps"], "unit": "req/s",
             "baseline": baseline["rps"], "ratio": throughput_ratio, "target": f">= {TARGET_RATIO:.0%} of baseline",
             "ok": throughput_ratio is not None and throughput_ratio >= TARGET_RATIO},
            {"metric": f"registry p99, {paced}", "value": registry_paced.get("p99_ms"), "unit": "ms",
             "baseline": baseline_paced.get("p99_ms"),
             "ratio": ratio(registry_paced.get("p99_ms"), baseline_paced.get("p99_ms")),
             "target": f"<= {TARGET_P99_MS:.0f} ms",
             "ok": kept_up and (registry_paced.get("p99_ms") or 1e9) <= TARGET_P99_MS},
            {"metric": f"registry p50, {paced}", "value": registry_paced.get("p50_ms"), "unit": "ms",
             "baseline": baseline_paced.get("p50_ms"),
             "ratio": ratio(registry_paced.get("p50_ms"), baseline_paced.get("p50_ms"))},
            {"metric": f"registry answered, {paced}", "value": registry_paced["rps"], "unit": "req/s",
             "baseline": baseline_paced["rps"]},
            {"metric": f"registry p50, closed loop, {concurrency} clients", "value": registry.get("p50_ms"),
             "unit": "ms", "baseline": baseline.get("p50_ms"),
             "ratio": ratio(registry.get("p50_ms"), baseline.get("p50_ms"))},
            {"metric": f"registry p99, closed loop, {concurrency} clients", "value": registry.get("p99_ms"),
             "unit": "ms", "baseline": baseline.get("p99_ms"),
             "ratio": ratio(registry.get("p99_ms"), baseline.get("p99_ms"))},
            {"metric": "registry p50, 1 client", "value": registry_single.get("p50_ms"), "unit": "ms",
             "baseline": baseline_single.get("p50_ms"),
             "ratio": ratio(registry_single.get("p50_ms"), baseline_single.get("p50_ms"))},
            {"metric": "registry p99, 1 client", "value": registry_single.get("p99_ms"), "unit": "ms",
             "baseline": baseline_single.get("p99_ms"),
             "ratio": ratio(registry_single.get("p99_ms"), baseline_single.get("p99_ms"))},
            {"metric": "errors (registry / baseline)", "value": sum(r["errors"] for r in registry_runs + registry_open),
             "unit": "", "baseline": sum(r["errors"] for r in baseline_runs + baseline_open)},
        ],
        "notes": [
            f"{supervisors} supervisors bulk-loaded with COPY in {load_s:.1f} s; page/search alternating, 50 rows a "
            f"page; baseline = bare FastAPI + asyncpg, same query, no auth and no total count; one uvicorn process "
            f"per server, loaded in turn from this process over loopback (minimal asyncio keep-alive client).",
            f"throughput: closed loop, {concurrency} keep-alive clients each sending its next request when the "
            f"last one is answered, {requests} requests per server and round; {rounds} alternating rounds, median "
            f"round shown (req/s per round: registry {[r['rps'] for r in registry_runs]}, baseline "
            f"{[r['rps'] for r in baseline_runs]}). Its latencies are queueing at saturation (Little's law: "
            f"{concurrency} clients / throughput), shown for information only.",
            f"p99 target: open loop at {rate:.0f} req/s = {OPEN_LOOP_FRACTION:.0%} of the baseline's median "
            f"closed-loop throughput, the same rate for both servers: request i is sent at start + i/rate for "
            f"{open_seconds:.0f} s whatever the earlier answers do (at most {OPEN_LOOP_CONNECTIONS} in flight), "
            f"latency from the scheduled send time (no coordinated omission); {open_rounds} alternating rounds, the "
            f"round with the median p99 shown (p99 ms per round: registry "
            f"{[r.get('p99_ms') for r in registry_open]}, baseline {[r.get('p99_ms') for r in baseline_open]}; "
            f"the client's own lag behind the schedule, p99: {registry_paced['send_lag_p99_ms']} ms). "
            f"The same rate is a larger share of the registry's own capacity ({ratio(rate, registry['rps'])} of "
            f"it). Met only if the registry also answered >= 95% of the scheduled rate.",
            f"1 client: one request at a time (service time without queueing), {single} requests per server. "
            f"Load average (1 min) before/after: {load_before:.2f} / {os.getloadavg()[0]:.2f}; other work on "
            "this 2-core machine (client, servers and PostgreSQL share it) moves every number.",
        ],
        "registry": registry_runs, "baseline": baseline_runs, "supervisors": supervisors,
        "registry_open_loop": registry_open, "baseline_open_loop": baseline_open, "open_loop_rate": rate,
        "registry_single_client": registry_single, "baseline_single_client": baseline_single,
    }

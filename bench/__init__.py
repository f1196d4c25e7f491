"""Benchmarks (`make bench` = `python -m bench`): each measures its own baseline in the same run.

Every `bench/bench_<name>.py` module defines `async def main(args) -> dict`; `python -m bench`
finds it by name, runs it, prints its rows and writes `bench/results/<name>.json`.
Benchmarks are never timed assertions in the test suite: they report numbers, ratios to their
baseline and pass/fail against their targets as text.

A benchmark's result dict has `rows` (what the table shows), each a dict with
`metric`, `value`, `unit` and optionally `baseline`, `ratio`, `target`, `ok`; anything else in the
dict is written to the JSON file only.
"""

import asyncio
import contextlib
import math
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: Iterable[float], p: float) -> float:
    """The p-th percentile (0..100) with linear interpolation between closest ranks.

    The same definition as numpy's default ("linear") and `statistics.quantiles(method="inclusive")`.
    """
    data: Sequence[float] = sorted(values)
    if not data:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} outside 0..100")
    rank = (len(data) - 1) * p / 100
    lo = math.floor(rank)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (rank - lo)


def summarize_ms(seconds: Iterable[float]) -> dict[str, float]:
    """n, p50, p90, p95, p99, max and mean of durations given in seconds, reported in milliseconds."""
    ms = [s * 1000 for s in seconds]
    if not ms:
        return {"n": 0}
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 3),
        "p90_ms": round(percentile(ms, 90), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(max(ms), 3),
        "mean_ms": round(sum(ms) / len(ms), 3),
    }


def ratio(value: float | None, baseline: float | None) -> float | None:
    """value / baseline, or None when either is missing or the baseline is zero."""
    if value is None or not baseline:
        return None
    return round(value / baseline, 2)



def event_keys(*services: str) -> tuple[dict[str, str], dict[str, str]]:
    """Event signing keys for a benchmark's services: (EVENT_SIGNING_KEY of each, EVENT_VERIFY_KEYS
    for all). Every relay signs and every consumer verifies, as in production (shared/events/signing.py)."""
    from shared.events.signing import generate_keypair

    pairs = {name: generate_keypair() for name in services}
    private = {name: key for name, (key, _) in pairs.items()}
    return private, {name: public for name, (_, public) in pairs.items()}


@contextlib.contextmanager
def servers(name: str) -> Iterator[tuple[str, str]]:
    """(database URL, bootstrap servers): BENCH_DATABASE_URL / BENCH_KAFKA_BOOTSTRAP_SERVERS if set,
    else an embedded PostgreSQL and broker of this run's own, stopped on exit."""
    from shared.devstack import infra

    with contextlib.ExitStack() as stack:
        url = os.environ.get("BENCH_DATABASE_URL")
        bootstrap = os.environ.get("BENCH_KAFKA_BOOTSTRAP_SERVERS")
        if not (url and bootstrap):
            tmp = Path(stack.enter_context(
                tempfile.TemporaryDirectory(prefix=f"bench-{name}-", ignore_cleanup_errors=True)))
            if not url:
                postgres = infra.start_postgres(tmp / "pg", cleanup="delete")
                stack.callback(postgres.stop)
                url = postgres.url
            if not bootstrap:
                # started from the main thread: the broker dies with the thread that spawned it
                broker = infra.start_broker(infra.free_port(), log_path=tmp / "broker.log")
                stack.callback(broker.stop)
                bootstrap = broker.bootstrap
        yield url, bootstrap


@contextlib.asynccontextmanager
async def serve(target: str, env: dict[str, str], log: Path) -> AsyncIterator[str]:
    """`uvicorn --factory target` on a free loopback port in its own process, as production runs a
    service (its main thread; OpenSSL hashing, for one, runs ~1.5x slower in a secondary thread);
    yields the base URL once /healthz answers."""
    import httpx

    from shared.devstack import infra

    port = infra.free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uvicorn", "--factory", target, "--host", "127.0.0.1", "--port", str(port),
        "--no-access-log", "--log-level", "warning", cwd=str(ROOT), env={**os.environ, **env},
        stdout=asyncio.subprocess.DEVNULL, stderr=log.open("wb"))
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=2) as client:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/healthz")).status_code == 200:
                        break
                if time.monotonic() > deadline or process.returncode is not None:
                    raise RuntimeError(f"{target} did not start (see {log})")
                await asyncio.sleep(0.2)
        yield base
    finally:
        process.terminate()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(process.wait(), 10)
        if process.returncode is None:
            process.kill()

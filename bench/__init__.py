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
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
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


# --- HTTP load: the minimal keep-alive client, closed loop (capacity) and open loop (latency at a rate) ---------

def key() -> str:
    """A fresh 32-byte key, base64url (FIELD_ENCRYPTION_KEY / FIELD_HASH_KEY of a benchmark's services)."""
    import base64
    import secrets

    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


class Connection:
    """A minimal HTTP/1.1 keep-alive client for GETs on loopback (httpx costs more CPU than the servers)."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    @classmethod
    def to(cls, base: str, headers: dict[str, str]) -> "Connection":
        host, port = base.removeprefix("http://").split(":")
        return cls(host, int(port), headers)

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        request = f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.extra}\r\n"
        self.writer.write(request.encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await self.reader.readexactly(length)
        if b"connection: close" in head.lower():
            await self.close()
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None


CLIENT_ERRORS = (OSError, asyncio.IncompleteReadError, ValueError)


def median_run(runs: list[dict], key: str = "rps") -> dict:
    """The round with the median `key` (throughput by default; its latencies come with it)."""
    return sorted(runs, key=lambda r: r[key])[len(runs) // 2]


async def closed_loop(base: str, headers: dict[str, str], todo: Sequence[str], *, concurrency: int,
                      time_limit: float, ok: Callable[[int, bytes], bool], warm_up: int = 100) -> dict:
    """`todo` (paths, already quoted) from `concurrency` keep-alive connections, each sending its next request as
    soon as its last one is answered (the server at saturation); latency per request, throughput over the run.
    `ok(status, body)` says whether an answer counts as right; a wrong one or a failed request is an error."""
    latencies: list[float] = []
    errors = 0
    connections = [Connection.to(base, headers) for _ in range(concurrency)]
    for path in todo[:warm_up]:  # warm-up (pools, caches, prepared statements)
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
            except CLIENT_ERRORS:
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


async def open_loop(base: str, headers: dict[str, str], todo: Sequence[str], *, rate: float,
                    ok: Callable[[int, bytes], bool],
                    connections: int = 50, drain_s: float = 10.0) -> dict:
    """`todo` on a fixed schedule (request i due at start + i/rate), whatever the answers do.

    The dispatcher never waits for an answer, so a slow answer does not delay the requests behind it (no
    coordinated omission, as wrk2 does it), and each latency is measured from the request's *scheduled* time to
    the end of its answer: time spent waiting for a free connection (at most `connections` in flight) or behind
    a late dispatcher counts against the server. Answers still missing `drain_s` after the last send are errors.
    """
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        conn = Connection.to(base, headers)
        await conn.get(todo[0])  # connect and warm up before the clock starts
        idle.put_nowait(conn)
    latencies: list[float] = []
    send_lag: list[float] = []
    errors = 0

    async def one(path: str, due: float) -> None:
        nonlocal errors
        conn = await idle.get()
        try:
            status, body = await conn.get(path)
        except CLIENT_ERRORS:
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
    _, pending = await asyncio.wait(tasks, timeout=drain_s)
    elapsed = time.perf_counter() - start
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)  # their connections go back to `idle`, closed below
    while not idle.empty():
        await idle.get_nowait().close()
    return {**summarize_ms(latencies), "rate": round(rate, 1), "rps": round(len(latencies) / elapsed, 1),
            "errors": errors + len(pending), "unanswered": len(pending),
            "send_lag_p99_ms": round(percentile(send_lag, 99) * 1000, 3)}

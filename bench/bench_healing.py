"""Healing after a broker restart (issue 16): recovery time, events lost, duplicates, beside the broker's own start.

Reuses the fault rig of tests/integration/platform/test_healing.py (tests/support/faults.py; importing
`tests.support` from a benchmark is deliberate: the benchmark measures exactly what the test checks):

- `BrokerProcess`: the dev broker (tansu, memory only: it keeps nothing across restarts) on a fixed
  free port of its own, SIGKILLed and started again on the same port;
- `two_services`: a producing app (`registry`, `POST /writes` stages one `EligibilityChanged`) and a
  consuming app (`appraisal`, counts applications per subject) in this process, with their lifespans
  (outbox relay, inbox consumer with its watchdog, gap repair wired to the producer's feed) and the
  FAST_HEALING settings; each in a schema of its own on the run's PostgreSQL (`bench.servers`: only
  its database is used, the broker is the rig's);
- `Writers`: 4 concurrent writers through the producer's HTTP API all along; `EffectReader`.

Before any kill: the normal commit -> effect delivery time, one probe write at a time (201 received ->
its effect row visible, polled every PROBE_POLL_S), first with no other load, then under the writers'.

Then RESTARTS cycles (quick: 3), each: ~FLOW_S of flow, SIGKILL the broker, wait 2-5 s (seeded RNG),
start a new broker on the same port at t0, and measure from t0, concurrently:
- baseline: the bare broker process answering a metadata request (a fresh AIOKafkaAdminClient's
  `list_topics` succeeding, retried every few ms until it does);
- recovery: every write accepted (201) before the kill has its effect (`reader.wait_for`, which polls
  every 0.1 s; RECOVERY_TIMEOUT_S at most); 0 if they all had it before the new broker started (gap
  repair reads the producer's feed, not the broker, so it can heal a restart during the outage).
Ratio = recovery / broker start, at the same percentile (p50, p99 over the restarts). Between cycles
the consumer's /readyz is awaited back at 200, as the test does.

Afterwards the writers stop; every accepted write must have its effect exactly once (lost = accepted
without an effect, duplicates = an effect count > 1; a write whose answer never came is `uncertain`
and may appear at most once). Beside them: events applied through gap repair, consumer rebuilds and
broker restarts the consumer detected. The services' logs go to <results-dir>/healing.log.
"""

import argparse
import asyncio
import base64
import contextlib
import logging
import os
import random
import secrets
import sys
import time
import uuid
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import select

from bench import ratio, servers, summarize_ms

RESTARTS, RESTARTS_QUICK = 10, 3
PROBES, PROBES_QUICK = 50, 20  # under the writers' load
IDLE_PROBES, IDLE_PROBES_QUICK = 20, 10  # before the writers start
WRITERS = 4
FLOW_S = 3.0  # flow before each kill
DOWN_S = (2.0, 5.0)  # the broker stays dead this long (uniform, seeded)
SEED = 16
RECOVERY_TIMEOUT_S = 90.0
FINAL_TIMEOUT_S = 90.0
READY_TIMEOUT_S = 90.0
MIN_WRITES = 1000
PROBE_POLL_S = 0.002
METADATA_RETRY_S = 0.005
RESULTS_DIR = Path(__file__).resolve().parent / "results"  # as bench/__main__.py


def make_settings_env(database_url: str, bootstrap: str) -> dict[str, str]:
    """As tests/conftest.py's `settings_env` fixture (logs at WARNING, see quiet_logs)."""
    from tests.support.signing import signing_env

    key = lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()  # noqa: E731
    return {
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_IDEMPOTENT_PRODUCER": "false",
        "KAFKA_FETCH_MAX_WAIT_MS": "10",  # tansu holds every fetch for the full wait
        "FIELD_ENCRYPTION_KEY": key(),
        "FIELD_HASH_KEY": key(),
        "LOG_JSON": "false",
        "LOG_LEVEL": "WARNING",
        **signing_env("registry"),
    }


class LevelCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.counts: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[record.levelname] = self.counts.get(record.levelname, 0) + 1


@contextlib.contextmanager
def quiet_logs(path: Path):
    """The apps' logging (create_service_app routes the root logger to stderr) goes to `path`
    instead, WARNING and up (aiokafka too); the runner's handlers come back afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    counter = LevelCounter()
    path.parent.mkdir(parents=True, exist_ok=True)
    file_handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def redirect() -> None:
        root.handlers[:] = [file_handler, counter]
        root.setLevel(logging.WARNING)
        logging.getLogger("aiokafka").setLevel(logging.WARNING)

    try:
        yield redirect, counter
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        file_handler.close()


async def metadata_ok(bootstrap: str, t0: float, timeout: float = 30.0) -> float | None:
    """Seconds from t0 until a fresh admin client's list_topics succeeds (None after `timeout`)."""
    while time.monotonic() - t0 < timeout:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
        try:
            await admin.start()
            await admin.list_topics()
            return time.monotonic() - t0
        except Exception:
            await asyncio.sleep(METADATA_RETRY_S)
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
    return None


async def delivery_probes(rig: dict, n: int, headers: dict[str, str],
                          timeout: float = 30.0) -> tuple[list[float], list[str]]:
    """n writes one at a time (beside the writers, if any): 201 received -> effect row visible, in seconds."""
    effect = rig["effect"]
    latencies, subjects = [], []
    engine = rig["reader"].engine
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for _ in range(n):
            subject = str(uuid.uuid4())
            response = await rig["pclient"].post("/writes", json={"subject": subject}, headers=headers)
            if response.status_code != 201:
                continue
            committed = time.monotonic()
            subjects.append(subject)
            query = select(effect.c.applied).where(effect.c.subject == subject)
            while time.monotonic() - committed < timeout:
                if (await conn.execute(query)).first() is not None:
                    latencies.append(time.monotonic() - committed)
                    break
                await asyncio.sleep(PROBE_POLL_S)
            await asyncio.sleep(0.05)
    return latencies, subjects


async def effects_after(reader, subjects: list[str], t0: float, *, already: bool) -> float | None:
    """Seconds from t0 until every subject has its effect (0 if they all had it before t0; None on timeout)."""
    if already:
        return 0.0
    if await reader.wait_for(subjects, timeout=RECOVERY_TIMEOUT_S) is None:
        return None
    return time.monotonic() - t0


def ms(seconds: float | None) -> float | None:
    return round(seconds * 1000, 1) if seconds is not None else None


async def main(args: argparse.Namespace) -> dict:
    from tests.support.apps import bearer
    from tests.support.eventing import wait_until
    from tests.support.faults import BrokerProcess, Readiness, Writers, poll_readiness, two_services

    quick = getattr(args, "quick", False)
    restarts = RESTARTS_QUICK if quick else RESTARTS
    n_probes = PROBES_QUICK if quick else PROBES
    n_idle = IDLE_PROBES_QUICK if quick else IDLE_PROBES
    results_dir = Path(getattr(args, "results_dir", RESULTS_DIR))
    log_path = results_dir / "healing.log"
    rng = random.Random(SEED)
    load_before = os.getloadavg()[0]
    wall0 = time.perf_counter()
    cycles: list[dict] = []
    probe_subjects: list[str] = []

    with servers("healing") as (database_url, _unused_bootstrap), quiet_logs(log_path) as (redirect, levels):
        broker = BrokerProcess()
        broker.start()
        settings_env = make_settings_env(database_url, broker.bootstrap)
        poller = None
        try:
            async with two_services(settings_env, database_url, broker) as rig:
                redirect()
                reader = rig["reader"]
                readiness = Readiness()
                poller = asyncio.create_task(poll_readiness(rig["cclient"].get, readiness))
                writers = Writers(rig["pclient"].post)
                headers = bearer("bureau_admin", subject="probe")
                consumer = rig["consumer"].state.consumer
                repairer = rig["consumer"].state.repairer
                try:
                    # the consumer joined and reading: one write through, then probes with no other load
                    _, warm_subjects = await delivery_probes(rig, 1, headers, timeout=60)
                    idle_latencies, idle_subjects = await delivery_probes(rig, n_idle, headers)
                    probe_subjects = warm_subjects + idle_subjects
                    writers.start(n=WRITERS)

                    async def flowing() -> bool:
                        return len(await reader.counts()) >= 100
                    await wait_until(flowing, timeout=60)
                    latencies, load_subjects = await delivery_probes(rig, n_probes, headers)
                    probe_subjects += load_subjects
                    idle, delivery = summarize_ms(idle_latencies), summarize_ms(latencies)

                    for i in range(restarts):
                        await asyncio.sleep(FLOW_S)
                        repaired0, rebuilds0 = repairer.repaired_total, consumer.rebuilds_total
                        restarts0 = consumer.broker_restarts_total
                        broker.kill()
                        killed_at = time.monotonic()
                        pending = writers.before(killed_at)
                        down = rng.uniform(*DOWN_S)
                        await asyncio.sleep(down)
                        # healed while the broker was down (gap repair reads the producer's feed, not the broker)?
                        before_start = set(pending) <= set(await reader.counts())
                        t0 = time.monotonic()
                        broker.start()  # blocks until the port listens (tansu starts in a few ms)
                        listening = time.monotonic() - t0
                        start_s, recovery = await asyncio.gather(
                            metadata_ok(broker.bootstrap, t0),
                            effects_after(reader, pending, t0, already=before_start))

                        async def ready_again(t0: float = t0) -> bool:
                            return readiness.first_ready_after(t0) is not None
                        with contextlib.suppress(Exception):
                            await wait_until(ready_again, timeout=READY_TIMEOUT_S)
                        ready_at = readiness.first_ready_after(t0)
                        cycles.append({
                            "restart": i + 1, "down_s": round(down, 2), "pending_writes": len(pending),
                            "listening_ms": ms(listening), "broker_start_ms": ms(start_s),
                            "recovery_ms": ms(recovery), "ratio": ratio(recovery, start_s),
                            "ready_again_ms": ms(ready_at - t0) if ready_at is not None else None,
                            "healed_before_start": before_start,
                            "repaired": repairer.repaired_total - repaired0,
                            "rebuilds": consumer.rebuilds_total - rebuilds0,
                            "broker_restarts_seen": consumer.broker_restarts_total - restarts0,
                        })
                        print(f"   restart {i + 1}/{restarts}: down {down:.1f} s, broker start "
                              f"{ms(start_s)} ms, recovery {ms(recovery)} ms ({len(pending)} writes)",
                              file=sys.stderr, flush=True)

                    await asyncio.sleep(FLOW_S)
                finally:
                    await writers.stop()
                accepted = set(writers.accepted) | set(probe_subjects)
                final = await reader.wait_for(list(accepted), timeout=FINAL_TIMEOUT_S)
                await asyncio.sleep(2)  # duplicates, if any, would arrive now
                counts = await reader.counts()
                healing = {
                    "repaired_total": repairer.repaired_total,
                    "repair_passes_total": repairer.passes_total,
                    "repair_failures_total": repairer.failures_total,
                    "rebuilds_total": consumer.rebuilds_total,
                    "broker_restarts_total": consumer.broker_restarts_total,
                }
                uncertain = set(writers.uncertain)
                refused = writers.refused
        finally:
            if poller:
                poller.cancel()
            broker.stop()

    lost = accepted - set(counts)
    duplicated = {s for s, c in counts.items() if c > 1}
    unknown = set(counts) - accepted - uncertain
    uncertain_applied = len(uncertain & set(counts))

    recoveries = [c["recovery_ms"] / 1000 for c in cycles if c["recovery_ms"] is not None]
    starts = [c["broker_start_ms"] / 1000 for c in cycles if c["broker_start_ms"] is not None]
    rec, base = summarize_ms(recoveries), summarize_ms(starts)
    all_healed = len(recoveries) == len(cycles) == restarts
    early = sum(1 for c in cycles if c["healed_before_start"])
    enough = len(accepted) >= MIN_WRITES

    def recovery_row(p: str) -> dict:
        r = ratio(rec.get(f"{p}_ms"), base.get(f"{p}_ms"))
        return {"metric": f"recovery after broker restart {p}", "value": rec.get(f"{p}_ms"), "unit": "ms",
                "baseline": base.get(f"{p}_ms"), "ratio": r,
                "target": f"healed in all {restarts} (<= {RECOVERY_TIMEOUT_S:g} s)", "ok": all_healed}

    rows = [
        {"metric": "commit -> effect, idle p50 / p99",
         "value": f"{idle.get('p50_ms', 0):,.1f} / {idle.get('p99_ms', 0):,.1f}", "unit": "ms"},
        {"metric": "commit -> effect, 4 writers p50 / p99",
         "value": f"{delivery.get('p50_ms', 0):,.1f} / {delivery.get('p99_ms', 0):,.1f}", "unit": "ms"},
        {"metric": "broker start -> metadata p50", "value": base.get("p50_ms"), "unit": "ms"},
        {"metric": "broker start -> metadata p99", "value": base.get("p99_ms"), "unit": "ms"},
        recovery_row("p50"),
        recovery_row("p99"),
        {"metric": "events lost", "value": len(lost), "unit": "events", "baseline": len(accepted),
         "ratio": ratio(len(lost), len(accepted)), "target": f"0 of >= {MIN_WRITES:,} accepted",
         "ok": not lost and enough and final is not None},
        {"metric": "duplicates", "value": len(duplicated), "unit": "events", "baseline": len(counts),
         "ratio": ratio(len(duplicated), len(counts)), "target": "0", "ok": not duplicated},
        {"metric": "effects never written", "value": len(unknown), "unit": "events", "baseline": len(counts),
         "ratio": ratio(len(unknown), len(counts)), "target": "0", "ok": not unknown},
        {"metric": "  uncertain writes (applied)", "value": f"{len(uncertain)} ({uncertain_applied})",
         "unit": "writes"},
        {"metric": "  events through gap repair", "value": healing["repaired_total"], "unit": "events"},
        {"metric": "  restarts healed before the broker was back", "value": f"{early} of {len(cycles)}",
         "unit": ""},
        {"metric": "  consumer rebuilds / broker restarts seen",
         "value": f"{healing['rebuilds_total']} / {healing['broker_restarts_total']}", "unit": ""},
    ]
    notes = [
        f"{restarts} broker restarts (SIGKILL, down {DOWN_S[0]:g}-{DOWN_S[1]:g} s, seed {SEED}, "
        f"~{FLOW_S:g} s of flow before each kill); {WRITERS} writers through the producer's HTTP API "
        f"all along: {len(accepted):,} writes accepted ({len(probe_subjects)} of them delivery probes), "
        f"{refused} refused or failed, {len(uncertain)} without an answer.",
        "baseline = new broker process started -> a fresh AIOKafkaAdminClient's list_topics succeeds; "
        "recovery = the same start -> every write accepted before the kill has its effect (polled every "
        "0.1 s); ratio = recovery / baseline at the same percentile. The dev broker comes back empty, "
        "so the consumer must notice the lost log, rebuild, re-join its group and repair from the feed.",
        f"commit -> effect (context, no target): probe writes one at a time, 201 received -> effect row "
        f"visible (polled every {PROBE_POLL_S * 1000:g} ms): {idle.get('n', 0)} before the writers start, "
        f"{delivery.get('n', 0)} under the {WRITERS} writers' load (the writers, both apps and this poll "
        "share one event loop), all before the first kill.",
        "gap repair reads the producer's GET /events/feed, not the broker: it runs every "
        "event_repair_seconds (10 s in FAST_HEALING) and right after the consumer notices the broker back, "
        "so a restart may be healed before the new broker is up (recovery 0, counted above).",
        "per restart (down s, start ms, recovery ms): "
        + ", ".join(f"({c['down_s']}, {c['broker_start_ms']}, {c['recovery_ms']})" for c in cycles),
        f"services' log: {log_path} ({', '.join(f'{k} {v}' for k, v in sorted(levels.counts.items())) or 'empty'}).",
        f"1-min load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after ({os.cpu_count()} CPUs); "
        f"{time.perf_counter() - wall0:.0f} s.",
    ]
    if not all_healed:
        notes.append(f"INCOMPLETE: {restarts - len(recoveries)} restart(s) not healed within "
                     f"{RECOVERY_TIMEOUT_S:g} s.")
    if final is None:
        notes.append(f"INCOMPLETE: not every accepted write had its effect {FINAL_TIMEOUT_S:g} s after the "
                     "writers stopped.")
    return {
        "name": "healing",
        "rows": rows,
        "notes": notes,
        "restarts": restarts,
        "cycles": cycles,
        "recovery": rec,
        "broker_start": base,
        "delivery_idle": idle,
        "delivery_under_load": delivery,
        "ratios": {"p50": ratio(rec.get("p50_ms"), base.get("p50_ms")),
                   "p99": ratio(rec.get("p99_ms"), base.get("p99_ms"))},
        "writes": {"accepted": len(accepted), "probes": len(probe_subjects), "uncertain": len(uncertain),
                   "uncertain_applied": uncertain_applied, "refused": refused, "effects": len(counts),
                   "lost": len(lost), "duplicated": len(duplicated), "never_written": len(unknown)},
        "healing": healing,
        "log_levels": levels.counts,
        "load_average": [load_before, os.getloadavg()[0]],
        "cpu_count": os.cpu_count(),
    }

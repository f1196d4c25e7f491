"""Ledger figures (R28.1) and grade proposal (R31.1, R33.1) for 20 000 supervisors × 30 ledger entries.

Setup: an embedded PostgreSQL, the appraisal migrations, and COPY-loaded data for one year: N supervisors
(projection) and 30 ledger entries each (activities with adopted/not, trainings with hours, conduct records
and reminders with R32.1 grounds, other activities, late change reports), streamed into COPY from a generator.

- appraisal: `ledger.stream_figures()` — the SQL aggregation behind the ledger and the proposals, streamed
             from a server-side cursor — then, per person, `rules.propose_grade` (R33.1) and
             `rules.excellent_eligible` (R31.1), the ranked candidates kept in a heap bounded by the R30.1
             cap (floor(15 % × N)). Nothing holds all people at once.
- baseline:  the same aggregation SQL through raw asyncpg `fetch` (all rows in memory, no proposal):
             what the database alone costs.

Wall time is the best of R runs without tracing; peak memory is measured in a separate traced run
(tracemalloc: Python allocations only, PostgreSQL's own memory is not counted). Target: ≤ 10 s, memory
bounded: ≤ 16 MiB whatever N (a cursor batch of 1 000 people plus the heap of floor(15 % × N) candidates);
the baseline's peak shows what holding every person's figures costs instead.
"""

import argparse
import asyncio
import heapq
import json
import tempfile
import time
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import asyncpg
from sqlalchemy.dialects import postgresql

from bench import ratio
from services.appraisal import ledger, rules
from services.appraisal.consumers import HANDLERS
from shared.db import Database
from shared.db.migrations import service_migrations, upgrade
from shared.devstack import infra
from shared.events.contracts import FeedbackSigned, TrainingRecorded

TARGET_SECONDS = 10.0
MEMORY_BOUND_MIB = 16.0  # one cursor batch + the candidate heap; all figures in memory grow with N instead
YEAR = 2026
PER_PERSON = 30
DISTRICTS = ["环翠区", "文登区", "荣成市", "乳山市", "高区", "经区", "临港区"]
COLUMNS = ["supervisor_id", "year", "kind", "subkind", "occurred_on", "ref_id", "adopted", "hours", "attended",
           "ground", "details", "source_key", "created_at"]


def entries_of(i: int, sid: uuid.UUID, now: datetime) -> Iterator[tuple]:
    """30 ledger entries of person i: activity counts and training vary, so grades and candidates vary."""
    activities = 4 + i % 17  # 4..20
    trainings = 3 + i % 4
    reminders = 1 if i % 23 == 0 else 0
    rest = PER_PERSON - activities - trainings - reminders
    day = lambda j: date(YEAR, 1 + j % 12, 1 + j % 28)  # noqa: E731
    for j in range(activities):
        adopted = None if j % 5 == 4 else (i + j) % 3 == 0
        yield (sid, YEAR, "activity", "public_hearing", day(j), uuid.uuid4(), adopted, None, None, None,
               '{"district": "环翠区"}', f"form:{i}:{j}", now)
    for j in range(trainings):
        attended = (i + j) % 7 != 0
        kind = "annual" if j == 0 and i % 11 else "makeup"
        yield (sid, YEAR, "training", kind, day(j + 3), uuid.uuid4(), None, float(2 + j % 4), attended, None,
               '{"format": "lecture"}', f"training:{i}:{j}", now)
    for _ in range(reminders):
        yield (sid, YEAR, "conduct", "reminder", day(i), None, None, None, None, 1 + i % 5, '{"text": "提醒"}',
               f"conduct:{i}:r", now)
    kinds = [("conduct", "law_abiding"), ("conduct", "ethics"), ("other", "other_activity")]
    for j in range(rest):
        kind, subkind = ("late_change_report", "late_change_report") if j == 0 and i % 29 == 0 else kinds[j % 3]
        yield (sid, YEAR, kind, subkind, day(j + 7), None, None, None, None, None, '{"text": "记录"}',
               f"x:{i}:{j}", now)


async def load(dsn: str, n: int) -> tuple[float, int]:
    """COPY n supervisors and n × 30 ledger entries (generated lazily, never all in memory)."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    people = [uuid.uuid4() for _ in range(n)]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table("supervisor", schema_name="appraisal", columns=[
            "id", "name", "district", "employer", "recommending_body", "term_start", "term_end", "status",
            "updated_at"], records=[(p, f"监督员{i}", DISTRICTS[i % len(DISTRICTS)], "单位", "社区",
                                     date(2025, 1, 1), date(2029, 12, 31), "active", now)
                                    for i, p in enumerate(people)])
        await conn.copy_records_to_table(
            "ledger_entry", schema_name="appraisal", columns=COLUMNS,
            records=(row for i, p in enumerate(people) for row in entries_of(i, p, now)))
        await conn.execute("ANALYZE appraisal.ledger_entry; ANALYZE appraisal.supervisor")
        count = await conn.fetchval("SELECT count(*) FROM appraisal.ledger_entry")
    finally:
        await conn.close()
    return time.perf_counter() - started, count


async def appraise(db: Database, thresholds: rules.Thresholds, appraised: int) -> dict:
    """Figures streamed from PostgreSQL → proposed grade per person, top candidates in a bounded heap."""
    allowed = rules.excellent_allowed(appraised)
    grades: Counter[str] = Counter()
    top: list[tuple[float, str]] = []
    eligible = 0
    async with db.transaction() as session:
        async for supervisor_id, figures in ledger.stream_figures(session, YEAR, batch=1000):
            grades[rules.propose_grade(figures, thresholds)] += 1
            if rules.excellent_eligible(figures, thresholds):
                eligible += 1
                item = (rules.candidate_score(figures, thresholds), str(supervisor_id))
                if len(top) < allowed:
                    heapq.heappush(top, item)
                elif allowed:
                    heapq.heappushpop(top, item)
    return {"grades": dict(grades), "eligible": eligible, "candidates": len(top), "allowed": allowed}


async def apply_events(db: Database, count: int, people: int = 500) -> float:
    """Apply `count` FeedbackSigned / TrainingRecorded events through the consumer handlers, 100 per transaction.

    This is the live ledger build path (without the broker and inbox claim); a later year keeps the timed
    figures untouched. Returns events per second.
    """
    ids = [uuid.uuid4() for _ in range(people)]
    events = []
    for k in range(count):
        sid = ids[k % people]
        if k % 6 == 5:
            events.append(TrainingRecorded(supervisor_id=sid, session_id=uuid.uuid4(), kind="annual", format="lecture",
                                           date=date(YEAR + 1, 3, 1), hours=4.0, attended=True, exam_passed=None))
        else:
            events.append(FeedbackSigned(form_id=uuid.uuid4(), activity_id=uuid.uuid4(), request_id=uuid.uuid4(),
                                         supervisor_id=sid, activity_type="public_hearing",
                                         activity_date=date(YEAR + 1, 1 + k % 12, 1 + k % 28), district="环翠区",
                                         adopted=k % 3 == 0, signed_at=datetime.now(UTC), signature_hash="0" * 64))
    started = time.perf_counter()
    for i in range(0, count, 100):
        async with db.transaction() as session:
            for event in events[i:i + 100]:
                await HANDLERS[type(event)](session, event, None)  # type: ignore[arg-type]
    return count / (time.perf_counter() - started)


async def measure(fn: Callable[[], Awaitable[object]], repeats: int) -> tuple[float, float, object]:
    """(best wall seconds over `repeats` untraced runs, peak MiB of one traced run, last result)."""
    times = []
    result = None
    for _ in range(repeats):
        started = time.perf_counter()
        result = await fn()
        times.append(time.perf_counter() - started)
    tracemalloc.start()
    try:
        await fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return min(times), peak / 1024 / 1024, result


async def main(args: argparse.Namespace) -> dict:
    quick = bool(getattr(args, "quick", False))
    n, repeats = (2_000, 2) if quick else (20_000, 3)
    thresholds = rules.Thresholds()
    sql = str(ledger.figures_query(YEAR).compile(dialect=postgresql.dialect(),
                                                 compile_kwargs={"literal_binds": True}))
    with tempfile.TemporaryDirectory(prefix="bench-appraisal-", ignore_cleanup_errors=True) as tmp:
        postgres = infra.start_postgres(Path(tmp) / "pg", cleanup="delete")
        try:
            await asyncio.to_thread(upgrade, service_migrations("appraisal"), postgres.url)
            dsn = postgres.url.replace("postgresql+asyncpg://", "postgresql://")
            load_s, entries = await load(dsn, n)
            db = Database(postgres.url, pool_size=2)
            raw = await asyncpg.connect(dsn)
            try:
                async def appraisal() -> dict:
                    return await appraise(db, thresholds, n)

                async def baseline() -> int:
                    return len(await raw.fetch(sql))

                await appraisal()  # warm-up: connection, statement cache, imports
                await baseline()
                app_s, app_mib, outcome = await measure(appraisal, repeats)
                base_s, base_mib, rows = await measure(baseline, repeats)
                events_per_s = await apply_events(db, 1_000 if quick else 6_000)
            finally:
                await raw.close()
                await db.dispose()
        finally:
            postgres.stop()
    assert rows == n, f"aggregation returned {rows} people, expected {n}"
    return {
        "rows": [
            {"metric": f"ledger figures + grade proposal, {n:,} people × {PER_PERSON} entries",
             "value": round(app_s, 2), "unit": "s", "baseline": round(base_s, 2), "ratio": ratio(app_s, base_s),
             "target": f"<= {TARGET_SECONDS:.0f} s", "ok": app_s <= TARGET_SECONDS},
            {"metric": "peak Python memory (tracemalloc)", "value": round(app_mib, 1), "unit": "MiB",
             "baseline": round(base_mib, 1), "ratio": ratio(app_mib, base_mib),
             "target": f"<= {MEMORY_BOUND_MIB:.0f} MiB whatever N (streamed)", "ok": app_mib <= MEMORY_BOUND_MIB},
            {"metric": "bulk load (COPY) of the ledger", "value": round(load_s, 1), "unit": "s"},
            {"metric": "live ledger build: events through the handlers (100/txn)", "value": round(events_per_s),
             "unit": "events/s"},
        ],
        "notes": [f"proposals: {json.dumps(outcome['grades'])}; excellent eligible {outcome['eligible']:,}, "
                  f"kept {outcome['candidates']:,} = floor(15 % × {n:,})",
                  "baseline = the same aggregation SQL via raw asyncpg fetch (all rows in memory, no proposal)"],
        "supervisors": n, "entries": entries, "repeats": repeats, "load_seconds": round(load_s, 2),
        "appraisal_seconds": app_s, "handler_events_per_second": events_per_s, "baseline_seconds": base_s,
        "outcome": outcome,
        "statistic": "min wall time of untraced runs; peak of one traced run",
    }

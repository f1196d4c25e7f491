"""Monthly disbursement table (R42.1) for 10 000 lines: build from PostgreSQL + xlsx export, beside openpyxl alone.

Setup: an embedded PostgreSQL, the finance migrations, and COPY-loaded data for one month: N supervisors
(name, district, masked bank account), one approved subsidy line each, and an approved travel claim for
every fifth — so the table has N rows (the worst case for the export: one row per line).

- finance:  `disbursement.export_xlsx()` — the endpoint's path: one aggregate query streamed from a
            server-side cursor into an openpyxl write-only sheet (money cells numeric Decimal with a number
            format, running totals for the totals row).
- baseline: the same N table rows and N activity lines (the 履职明细 sheet, issue 18), already in memory,
            appended to an openpyxl write-only workbook and saved — the least any xlsx export of it costs.

Wall time is the best of R runs without tracing; peak memory is measured in a separate traced run
(tracemalloc: Python allocations only, PostgreSQL's own memory is not counted). Target: ≤ 2× baseline.
"""

import argparse
import asyncio
import io
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path

import asyncpg
from openpyxl import Workbook

from bench import ratio
from services.finance import disbursement
from services.finance.rules import mask_account
from shared.db import Database
from shared.db.migrations import service_migrations, upgrade
from shared.devstack import infra

TARGET_RATIO = 2.0
YEAR, MONTH = 2026, 11
DISTRICTS = ["环翠区", "文登区", "荣成市", "乳山市", "高区", "经区", "临港区"]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏"
GIVEN = "建国志强秀英丽华明辉海燕晓东文静国庆淑珍卫东玉兰振华红梅立新春生桂芳永刚晓明雪梅德胜美玲宏伟"


async def load(dsn: str, n: int) -> float:
    """COPY n supervisors, n approved lines and n/5 approved travel claims into the month."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    conn = await asyncpg.connect(dsn)
    try:
        rate_id = await conn.fetchval("SELECT id FROM finance.rate WHERE activity_type = 'public_hearing' "
                                      "ORDER BY effective_from DESC LIMIT 1")
        people = [uuid.uuid4() for _ in range(n)]
        await conn.copy_records_to_table("supervisor", schema_name="finance", columns=[
            "id", "name", "district", "bank_name", "bank_account_masked", "updated_at"], records=[
            (p, SURNAMES[i % len(SURNAMES)] + GIVEN[(i * 7) % len(GIVEN)] + GIVEN[(i * 13) % len(GIVEN)],
             DISTRICTS[i % len(DISTRICTS)], "中国工商银行威海分行", mask_account(f"622202{i:013d}"), now)
            for i, p in enumerate(people)])
        await conn.copy_records_to_table("subsidy_line", schema_name="finance", columns=[
            "id", "supervisor_id", "activity_id", "form_id", "activity_type", "type_known", "activity_date",
            "district", "rate_id", "amount_fen", "status", "checked_by", "approved_by", "created_at"], records=[
            (uuid.uuid4(), p, uuid.uuid4(), uuid.uuid4(), "public_hearing", True, date(YEAR, MONTH, 1 + i % 28),
             DISTRICTS[i % len(DISTRICTS)], rate_id, 40_000 if i % 3 else 15_000, "approved", "a", "b", now)
            for i, p in enumerate(people)])
        await conn.copy_records_to_table("travel_claim", schema_name="finance", columns=[
            "id", "supervisor_id", "purpose_kind", "purpose_ref", "travel_date", "total_fen", "status",
            "created_by", "created_at"], records=[
            (uuid.uuid4(), p, "activity", "bench", date(YEAR, MONTH, 15), 8_850 + i, "approved", "c", now)
            for i, p in enumerate(people) if i % 5 == 0])
        await conn.execute("ANALYZE finance.subsidy_line; ANALYZE finance.travel_claim; ANALYZE finance.supervisor")
    finally:
        await conn.close()
    return time.perf_counter() - started


def baseline_xlsx(rows: list[tuple], details: list[tuple] = ()) -> bytes:
    """openpyxl directly: the same rows (and activity lines, the second sheet) appended to write-only sheets."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("baseline")
    for row in rows:
        ws.append(row)
    extra = wb.create_sheet("detail")
    for row in details:
        extra.append(row)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


async def measure(fn: Callable[[], Awaitable[object]], repeats: int) -> tuple[float, float]:
    """(best wall seconds over `repeats` untraced runs, peak MiB of one traced run)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - started)
    tracemalloc.start()
    try:
        await fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return min(times), peak / 1024 / 1024


async def main(args: argparse.Namespace) -> dict:
    quick = bool(getattr(args, "quick", False))
    n, repeats = (2_000, 2) if quick else (10_000, 5)
    with tempfile.TemporaryDirectory(prefix="bench-finance-", ignore_cleanup_errors=True) as tmp:
        postgres = infra.start_postgres(Path(tmp) / "pg", cleanup="delete")
        try:
            await asyncio.to_thread(upgrade, service_migrations("finance"), postgres.url)
            load_s = await load(postgres.url.replace("postgresql+asyncpg://", "postgresql://"), n)
            db = Database(postgres.url, pool_size=2)
            try:
                async def finance() -> bytes:
                    async with db.transaction() as session:
                        return await disbursement.export_xlsx(session, YEAR, MONTH)

                async with db.transaction() as session:
                    table = await disbursement.build(session, YEAR, MONTH)
                    details = [(i, x.name, x.district, x.activity_date, x.activity_type,
                                disbursement._money(x.amount_fen), x.status) for i, x in enumerate(
                        [x async for x in disbursement.iter_details(session, YEAR, MONTH)], start=1)]
                rows = list(disbursement.sheet_rows(table))

                async def baseline() -> bytes:
                    return baseline_xlsx(rows, details)

                await finance()  # warm-up: connection, statement cache, imports
                await baseline()
                finance_s, finance_mib = await measure(finance, repeats)
                baseline_s, baseline_mib = await measure(baseline, repeats)
                size = len(await finance())
            finally:
                await db.dispose()
        finally:
            postgres.stop()
    time_ratio, memory_ratio = ratio(finance_s, baseline_s), ratio(finance_mib, baseline_mib)
    return {
        "rows": [
            {"metric": f"monthly table, {len(table.rows):,} rows: build + xlsx", "value": round(finance_s * 1000, 1),
             "unit": "ms", "baseline": round(baseline_s * 1000, 1), "ratio": time_ratio,
             "target": f"<= {TARGET_RATIO:.0f}x openpyxl alone", "ok": time_ratio is not None and time_ratio <= 2},
            {"metric": "peak Python memory (tracemalloc)", "value": round(finance_mib, 1), "unit": "MiB",
             "baseline": round(baseline_mib, 1), "ratio": memory_ratio,
             "target": f"<= {TARGET_RATIO:.0f}x openpyxl alone",
             "ok": memory_ratio is not None and memory_ratio <= TARGET_RATIO},
            {"metric": "xlsx size", "value": round(size / 1024, 1), "unit": "KiB"},
        ],
        "lines": n, "table_rows": len(table.rows), "travel_claims": n // 5, "load_seconds": round(load_s, 2),
        "repeats": repeats, "statistic": "min wall time of untraced runs; peak of one traced run",
        "total_fen": table.total_fen, "finance_seconds": finance_s, "baseline_seconds": baseline_s,
    }

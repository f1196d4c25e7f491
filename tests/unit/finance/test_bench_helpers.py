"""The finance benchmark's baseline writes what it claims (no timing here: see bench/)."""

import io

from openpyxl import load_workbook

from bench.bench_finance import baseline_xlsx


def test_baseline_xlsx_writes_the_rows() -> None:
    rows = [("序号", "姓名"), (1, "王小红"), (2, "李建国")]
    sheet = load_workbook(io.BytesIO(baseline_xlsx(rows))).active
    assert list(sheet.iter_rows(values_only=True)) == rows


def test_bench_documents_baseline_holds_both_sheets_and_runs_differ() -> None:
    """bench_documents: the bare xlsx writes the same rows and activity lines; each run's data differs (typst
    memoizes layout, so a repeat of the same data would time the cache)."""
    from bench import bench_documents as b

    table, details = b.table(20, 0)
    book = load_workbook(io.BytesIO(b.bare_xlsx(table, details)))
    assert [len(list(ws.iter_rows())) for ws in book.worksheets] == [len(list(b.d.sheet_rows(table))), 20]
    again, _ = b.table(20, 1)
    assert [r.name for r in table.rows] != [r.name for r in again.rows]
    assert b.form(1)["participants"][0]["opinion"] != b.form(2)["participants"][0]["opinion"]

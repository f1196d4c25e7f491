"""The finance benchmark's baseline writes what it claims (no timing here: see bench/)."""

import io

from openpyxl import load_workbook

from bench.bench_finance import baseline_xlsx


def test_baseline_xlsx_writes_the_rows() -> None:
    rows = [("序号", "姓名"), (1, "王小红"), (2, "李建国")]
    sheet = load_workbook(io.BytesIO(baseline_xlsx(rows))).active
    assert list(sheet.iter_rows(values_only=True)) == rows

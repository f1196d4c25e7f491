"""The disbursement table's layout and exports without a database (R42.1)."""

import io
import uuid
from decimal import Decimal

from openpyxl import load_workbook

from services.finance import disbursement as d


def table(rows: int = 3) -> d.Table:
    return d.Table(2026, 11, True, [
        d.Row(i + 1, uuid.uuid4(), f"张{i}", "环翠区", 2, 55_000 + i, 1_234 * i, 55_000 + i + 1_234 * i, "某银行",
              "****1234", "")
        for i in range(rows)
    ])


def test_r42_1_xlsx_official_layout_and_numeric_totals() -> None:
    t = table()
    ws = load_workbook(io.BytesIO(d.to_xlsx(t))).active
    values = list(ws.iter_rows(values_only=True))
    assert values[0][0] == "《威海市人民监督员履职补助发放表》"
    assert "2026年11月" in values[1][0]
    assert values[2] == d.HEADERS
    data = values[3:3 + len(t.rows)]
    assert all(isinstance(r[4], int | float) for r in data)
    totals = values[3 + len(t.rows)]
    assert totals[0] == "合计"
    assert round(Decimal(str(totals[6])) * 100) == t.total_fen == 3 * 55_000 + 3 + 3 * 1_234
    # every row keeps its own amounts (the writer reuses formatted cells between rows)
    assert [round(Decimal(str(r[4])) * 100) for r in data] == [55_000, 55_001, 55_002]
    assert [round(Decimal(str(r[6])) * 100) for r in data] == [r.total_fen for r in t.rows]
    assert round(sum(Decimal(str(r[4])) for r in data) * 100) == t.total_subsidy_fen
    assert any(v and "制表人" in str(v) for v in values[-1])


def test_r42_1_table_as_dict_totals() -> None:
    data = table(2).as_dict()
    assert data["total_fen"] == 2 * 55_000 + 1 + 1_234 and len(data["rows"]) == 2 and data["rows"][0]["seq"] == 1


def test_r42_1_xlsx_shows_what_the_table_is_and_the_payment_state() -> None:
    t = table(2)
    t.rows[0] = d.Row(1, uuid.uuid4(), "张0", "环翠区", 1, 40_000, 0, 40_000, "某银行", "****1234", "", 40_000,
                      "已支付（流水号：ICBC-1）")
    draft = list(load_workbook(io.BytesIO(d.to_xlsx(t))).active.iter_rows(values_only=True))
    assert "草稿" in draft[1][4] and draft[2][10] == "支付状态" and draft[3][10].startswith("已支付")
    t.status, t.batch_no, t.version = "issued", "202611-001", 2
    issued = list(load_workbook(io.BytesIO(d.to_xlsx(t))).active.iter_rows(values_only=True))
    assert issued[1][4] == "批次号：202611-001　第2版　已签发"

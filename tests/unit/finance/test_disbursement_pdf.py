"""R42.1: the printed 《威海市人民监督员履职补助发放表》 (typst, shared/documents): landscape, the header row on every
page, long bank names and remarks wrapped inside their cells, totals in figures and 大写, batch number, signature
lines, page numbers, fonts embedded, golden page 1."""

import dataclasses
import io
import uuid
from datetime import datetime

import pdfplumber

from services.finance import disbursement as d
from shared import clock
from shared.documents.words import amount_in_words
from tests.support import pdf as read

BANK_CHARS = "甲乙丙丁戊己庚辛壬癸"  # printed nowhere else on the table
LONG_BANK = "".join(BANK_CHARS[i % 10] for i in range(60))
LONG_REMARK = "含未知活动类型（按“其他”标准）；银行账号无法解密；名册信息未同步；另需核对本月差旅费报销单据是否齐全"


def _table(rows: int, *, status: str = "issued") -> d.Table:
    out = []
    for i in range(rows):
        bank = LONG_BANK if i == 1 else "中国工商银行股份有限公司威海分行"
        out.append(d.Row(i + 1, uuid.UUID(int=i + 1), f"王建国{i}", "环翠区", 2, 40_000 + i, 1_234 * (i % 3),
                         40_000 + i + 1_234 * (i % 3), bank, f"6222********{i:04d}", LONG_REMARK if i == 2 else "",
                         0, "未支付"))
    issued = datetime(2026, 12, 8, 10, 0, tzinfo=clock.SHANGHAI) if status != "draft" else None
    return d.Table(2026, 11, True, out, status=status, batch_no="202611-001" if issued else None,
                   version=1 if issued else None, issued_at=issued)


def _pdf(table: d.Table) -> bytes:
    return d.to_pdf(table, unit="威海市司法局")


def test_r42_1_table_pdf_prints_every_field_totals_in_capital_numerals_and_signature_lines() -> None:
    table = _table(5)
    document = _pdf(table)
    text = read.text(document)
    for field in ("《威海市人民监督员履职补助发放表》", "发放单位：威海市司法局", "发放月份：2026年11月", "范围：全市",
                  "批次号：202611-001", "第1版", "单位：元", "制表日期：2026年12月8日", *d.HEADERS, "合计",
                  f"合计金额（大写）：{amount_in_words(table.total_fen)}", "制表人：", "审核人：", "负责人：",
                  "第 1 页", "共 1 页"):
        assert "".join(field.split()) in "".join(text.split()), field  # a narrow header cell wraps its words
    for row in table.rows:
        assert row.name in text and d.yuan(row.total_fen) in text and row.bank_account in text
    assert d.yuan(table.total_fen) in text and "草稿" not in text
    fonts = read.fonts(document)
    assert fonts and all(fonts.values()), fonts
    with pdfplumber.open(io.BytesIO(document)) as doc:
        assert doc.pages[0].width > doc.pages[0].height  # landscape


def test_r42_1_long_bank_name_and_remark_wrap_without_overlapping_their_neighbours() -> None:
    with pdfplumber.open(io.BytesIO(_pdf(_table(5)))) as doc:
        chars = doc.pages[0].chars
    bank = [c for c in chars if c["text"] in BANK_CHARS]
    others = [c for c in chars if c["text"] not in BANK_CHARS and c["text"].strip()]
    assert "".join(c["text"] for c in bank) == LONG_BANK  # all 60 characters printed
    assert len({round(c["top"]) for c in bank}) >= 3  # wrapped onto several lines of its cell
    for a in bank:
        for b in others:
            overlap = min(a["x1"], b["x1"]) - max(a["x0"], b["x0"]) > 0.5 and \
                min(a["bottom"], b["bottom"]) - max(a["top"], b["top"]) > 0.5
            assert not overlap, (a["text"], b["text"], a["x0"], b["x0"], a["top"], b["top"])
    text = read.text(_pdf(_table(5)))
    assert LONG_REMARK.replace("“", "").replace("”", "")[:10] in text.replace("“", "").replace("”", "")


def test_r42_1_header_row_repeats_at_the_top_of_every_page_with_page_numbers() -> None:
    document = _pdf(_table(120))
    pages = read.page_texts(document)
    assert len(pages) >= 4
    for number, page in enumerate(pages, start=1):
        assert "开户银行" in page and "银行账号" in page and "支付状态" in page, number
        assert f"第 {number} 页" in page and f"共 {len(pages)} 页" in page
    assert "合计金额（大写）" in pages[-1] and "制表人：" in pages[-1]


def test_r42_1_draft_says_so_and_issued_table_matches_the_golden_page() -> None:
    assert "草稿（未签发，不作发放依据）" in read.text(_pdf(_table(3, status="draft")))
    document = _pdf(_table(12))
    assert document == _pdf(_table(12))
    read.assert_golden(document, "disbursement_table")


def test_r42_1_rows_of_known_height_print_exactly_as_typst_measures_them() -> None:
    """The table gives typst the height of each row whose wrapping is certain (disbursement.layout, fit.lines) and
    leaves the others auto: over names, bank names, accounts, remarks and states of every length, across pages,
    every character is in the same place on the same page as when typst measures every row itself."""
    import random

    from shared.documents.engine import render_pdf

    pick = random.Random(18)
    hanzi = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏甲乙丙丁"
    extras = ["（", "）", "“", "”", "、", "·", " ", "3", "A", "〓", "\U00098f3a"]

    def words(low: int, high: int, *, mixed: bool = False) -> str:
        out = "".join(pick.choice(hanzi) for _ in range(pick.randint(low, high)))
        if mixed and out and pick.random() < 0.1:
            at = pick.randrange(len(out))
            out = out[:at] + pick.choice(extras) + out[at:]
        return out

    rows = []
    for i in range(160):
        subsidy, travel = pick.randint(0, 9_999_999), pick.choice([0, pick.randint(0, 999_999)])
        account = pick.choice(["6222********0001", "6222021234567890123", "", "6" * 24])
        rows.append(d.Row(i + 1, uuid.UUID(int=i + 1), words(2, 7, mixed=True), words(2, 6), pick.randint(1, 30),
                          subsidy, travel, subsidy + travel, words(0, 60, mixed=True), account,
                          pick.choice(["", "", "", LONG_REMARK, words(1, 40, mixed=True)]), 0,
                          pick.choice(["未支付", "已支付", "未支付", "已支付", "部分支付（已付12.30元）"])))
    issued = datetime(2026, 12, 8, 10, 0, tzinfo=clock.SHANGHAI)
    table = d.Table(2026, 11, True, rows, status="issued", batch_no="202611-001", version=1, issued_at=issued)
    data = d.pdf_document(table, unit="威海市司法局", dated=issued.date())
    layout = d.layout(data["rows"])
    known = sum(1 for lines in layout["lines"] if lines)
    assert 0.3 * len(rows) < known < len(rows)  # some rows of each kind
    assert {1, 2, 3} <= set(layout["lines"])
    fast = d.render(data, dated=issued.date())
    measured = render_pdf(d.TEMPLATE, {**data, "layout": {**layout, "lines": [0] * len(rows)}}, dated=issued.date())

    def placed(document: bytes) -> list[list[tuple]]:
        with pdfplumber.open(io.BytesIO(document)) as doc:
            return [[(c["text"], round(c["x0"], 2), round(c["top"], 2)) for c in page.chars] for page in doc.pages]

    ours, typsts = placed(fast), placed(measured)
    assert len(ours) == len(typsts) >= 8
    for number, (page, expected) in enumerate(zip(ours, typsts, strict=True), start=1):
        assert page == expected, number


def test_r42_1_a_row_taller_than_a_few_lines_stays_auto_and_breaks_across_pages() -> None:
    """A row of fixed height cannot break across pages: a 2 000-ideograph remark leaves its row to typst, which
    continues it on the next pages (nothing cut off)."""
    table = _table(3)
    remark = "".join(BANK_CHARS[i % 10] for i in range(2_000))
    table.rows[1] = dataclasses.replace(table.rows[1], remark=remark)
    data = d.pdf_document(table, unit="威海市司法局", dated=table.issued_at.date())
    assert d.layout(data["rows"])["lines"] == [1, 0, 0]  # row 3: the long remark of _table
    document = d.to_pdf(table, unit="威海市司法局")
    assert read.page_count(document) >= 3
    assert "".join(read.text(document).split()).count("甲乙丙丁戊己庚辛壬癸") >= 150

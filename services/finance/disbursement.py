"""R42.1: the monthly 《威海市人民监督员履职补助发放表》 — build, xlsx, PDF — and its reconciliation.

Which lines count in a month: subsidy lines in state approved or paid whose *activity date* falls in
the month, and travel claims approved or paid whose travel date falls in the month. Drafts and checked
items are not yet payable and never appear; a line approved late shows in its activity's month.
"""

import io
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import and_, func, literal_column, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from services.finance.models import feedback_form, subsidy_line, supervisor, travel_claim
from services.finance.rules import month_bounds, yuan
from shared.crypto import DecryptionError, FieldCipher

TITLE = "威海市人民监督员履职补助发放表"
HEADERS = ("序号", "姓名", "所属区市", "履职次数", "履职补助（元）", "差旅费（元）", "合计（元）", "开户银行",
           "银行账号", "备注")
SIGNATURES = ("制表人：", "审核人：", "负责人：")
PAYABLE = ("approved", "paid")
BANK_CONTEXT = "finance.supervisor.bank_account"
STREAM_BATCH = 1000
PDF_ROWS_PER_TABLE = 30


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    supervisor_id: uuid.UUID
    name: str
    district: str
    activities: int
    subsidy_fen: int
    travel_fen: int
    total_fen: int
    bank_name: str
    bank_account: str
    remark: str


@dataclass
class Table:
    year: int
    month: int
    masked: bool
    rows: list[Row]

    @property
    def total_activities(self) -> int:
        return sum(r.activities for r in self.rows)

    @property
    def total_subsidy_fen(self) -> int:
        return sum(r.subsidy_fen for r in self.rows)

    @property
    def total_travel_fen(self) -> int:
        return sum(r.travel_fen for r in self.rows)

    @property
    def total_fen(self) -> int:
        return sum(r.total_fen for r in self.rows)

    def as_dict(self) -> dict:
        return {"year": self.year, "month": self.month, "masked": self.masked,
                "rows": [_row_dict(r) for r in self.rows],
                "total_activities": self.total_activities, "total_subsidy_fen": self.total_subsidy_fen,
                "total_travel_fen": self.total_travel_fen, "total_fen": self.total_fen}


def _row_dict(row: Row) -> dict:
    return {f: getattr(row, f) for f in Row.__slots__}


def _query(year: int, month: int, *, unmasked: bool):
    start, end = month_bounds(year, month)
    lines = (
        select(subsidy_line.c.supervisor_id.label("sid"), func.count().label("n"),
               func.sum(subsidy_line.c.amount_fen).label("subsidy"),
               func.bool_or(~subsidy_line.c.type_known).label("unknown_type"))
        .where(subsidy_line.c.status.in_(PAYABLE), subsidy_line.c.activity_date >= start,
               subsidy_line.c.activity_date < end)
        .group_by(subsidy_line.c.supervisor_id).cte("lines")
    )
    travel = (
        select(travel_claim.c.supervisor_id.label("sid"), func.sum(travel_claim.c.total_fen).label("travel"))
        .where(travel_claim.c.status.in_(PAYABLE), travel_claim.c.travel_date >= start,
               travel_claim.c.travel_date < end)
        .group_by(travel_claim.c.supervisor_id).cte("travel")
    )
    ids = union(select(lines.c.sid), select(travel.c.sid)).cte("ids")
    account = supervisor.c.bank_account_encrypted if unmasked else supervisor.c.bank_account_masked
    return (
        select(ids.c.sid, supervisor.c.name, supervisor.c.district, func.coalesce(lines.c.n, 0),
               func.coalesce(lines.c.subsidy, 0), func.coalesce(travel.c.travel, 0), supervisor.c.bank_name,
               account, func.coalesce(lines.c.unknown_type, literal_column("false")))
        .select_from(ids.outerjoin(lines, lines.c.sid == ids.c.sid).outerjoin(travel, travel.c.sid == ids.c.sid)
                     .outerjoin(supervisor, supervisor.c.id == ids.c.sid))
        .order_by(supervisor.c.district, supervisor.c.name, ids.c.sid)
    )


async def iter_rows(session: AsyncSession, year: int, month: int, *,
                    cipher: FieldCipher | None = None) -> AsyncIterator[Row]:
    """The table's rows, streamed from a server-side cursor (constant memory for any month size).

    One row per supervisor with payable items in the month; unmasked accounts only when `cipher` is given.
    """
    result = await session.stream(_query(year, month, unmasked=cipher is not None)
                                  .execution_options(yield_per=STREAM_BATCH))
    seq = 0
    async for sid, name, district, n, subsidy, travel_fen, bank_name, acct, unknown in result:
        seq += 1
        remarks = []
        if unknown:
            remarks.append("含未知活动类型（按“其他”标准）")
        if not acct:
            remarks.append("未登记银行账户")
        elif cipher:
            try:
                acct = cipher.decrypt(acct, context=BANK_CONTEXT)
            except DecryptionError:
                acct = ""
                remarks.append("银行账号无法解密")
        if not name:
            remarks.append("名册信息未同步")
        subsidy, travel_fen = int(subsidy), int(travel_fen)
        yield Row(seq, sid, name or "", district or "", int(n), subsidy, travel_fen, subsidy + travel_fen,
                  bank_name or "", acct or "", "；".join(remarks))


async def build(session: AsyncSession, year: int, month: int, *, cipher: FieldCipher | None = None) -> Table:
    """The whole table in memory (JSON answer, PDF); the xlsx export streams instead."""
    return Table(year, month, cipher is None, [row async for row in iter_rows(session, year, month, cipher=cipher)])


# --- xlsx ----------------------------------------------------------------------------------------

MONEY_FORMAT = "#,##0.00"


def _money(fen: int) -> Decimal:
    """Fen as an exact Decimal of yuan (a number cell, never a float computation)."""
    return Decimal(fen).scaleb(-2)


def title_rows(year: int, month: int) -> list[tuple]:
    return [(f"《{TITLE}》",), (f"发放月份：{year}年{month:02d}月", None, None, None, None, None, "单位：元"), HEADERS]


def data_row(r: Row) -> tuple:
    return (r.seq, r.name, r.district, r.activities, _money(r.subsidy_fen), _money(r.travel_fen),
            _money(r.total_fen), r.bank_name, r.bank_account, r.remark)


def closing_rows(activities: int, subsidy_fen: int, travel_fen: int, total_fen: int) -> list[tuple]:
    return [("合计", None, None, activities, _money(subsidy_fen), _money(travel_fen), _money(total_fen), None, None,
             None), (), (SIGNATURES[0], None, None, SIGNATURES[1], None, None, SIGNATURES[2])]


def sheet_rows(table: Table) -> Iterator[tuple]:
    """The rows of the official layout: title, month, header, data, totals, signatures."""
    yield from title_rows(table.year, table.month)
    for r in table.rows:
        yield data_row(r)
    yield from closing_rows(table.total_activities, table.total_subsidy_fen, table.total_travel_fen, table.total_fen)


class XlsxSheet:
    """The official layout written row by row (openpyxl write-only: rows go to a temp file, not memory)."""

    MONEY_COLUMNS = frozenset({4, 5, 6})
    WIDTHS = (6, 10, 10, 9, 14, 12, 14, 20, 24, 20)

    def __init__(self, year: int, month: int) -> None:
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell

        self.wb = Workbook(write_only=True)
        self.ws = self.wb.create_sheet(f"{year}-{month:02d}")
        for index, width in enumerate(self.WIDTHS):
            self.ws.column_dimensions[chr(ord("A") + index)].width = width
        self.activities = self.subsidy_fen = self.travel_fen = self.total_fen = 0
        self._money_cells = {}
        for column in sorted(self.MONEY_COLUMNS):
            cell = WriteOnlyCell(self.ws)
            cell.number_format = MONEY_FORMAT
            self._money_cells[column] = cell
        for row in title_rows(year, month):
            self.ws.append(row)

    def _append(self, values: tuple) -> None:
        # A write-only sheet serializes each row as it is appended, so one formatted cell per money
        # column can be reused for every row (creating and styling cells per row costs ~30 %).
        cells = list(values)
        for column, cell in self._money_cells.items():
            if column < len(cells) and isinstance(cells[column], Decimal):
                cell.value = cells[column]
                cells[column] = cell
        self.ws.append(cells)

    def add(self, row: Row) -> None:
        self.activities += row.activities
        self.subsidy_fen += row.subsidy_fen
        self.travel_fen += row.travel_fen
        self.total_fen += row.total_fen
        self._append(data_row(row))

    def finish(self) -> bytes:
        for row in closing_rows(self.activities, self.subsidy_fen, self.travel_fen, self.total_fen):
            self._append(row)
        buffer = io.BytesIO()
        self.wb.save(buffer)
        return buffer.getvalue()


def to_xlsx(table: Table) -> bytes:
    """A table already in memory as xlsx."""
    sheet = XlsxSheet(table.year, table.month)
    for row in table.rows:
        sheet.add(row)
    return sheet.finish()


async def export_xlsx(session: AsyncSession, year: int, month: int, *, cipher: FieldCipher | None = None) -> bytes:
    """The month's table as xlsx, streamed from the database into the sheet (R42.1)."""
    sheet = XlsxSheet(year, month)
    async for row in iter_rows(session, year, month, cipher=cipher):
        sheet.add(row)
    return sheet.finish()


# --- PDF -----------------------------------------------------------------------------------------


def to_pdf(table: Table) -> bytes:
    """The table as PDF with reportlab's CID font STSong-Light (not embedded: readers substitute)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, TableStyle
    from reportlab.platypus import Table as PdfTable

    font = "STSong-Light"
    if font not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(font))
    title = ParagraphStyle("title", fontName=font, fontSize=16, leading=22, alignment=1)
    plain = ParagraphStyle("plain", fontName=font, fontSize=10, leading=14)
    body: list[list] = [
        [str(r.seq), r.name, r.district, str(r.activities), yuan(r.subsidy_fen), yuan(r.travel_fen),
         yuan(r.total_fen), r.bank_name, r.bank_account, r.remark] for r in table.rows]
    body.append(["合计", "", "", str(table.total_activities), yuan(table.total_subsidy_fen),
                 yuan(table.total_travel_fen), yuan(table.total_fen), "", "", ""])
    widths = [12 * mm, 22 * mm, 20 * mm, 16 * mm, 24 * mm, 22 * mm, 24 * mm, 36 * mm, 42 * mm, 42 * mm]
    style = TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), font), ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.black), ("ALIGN", (3, 1), (6, -1), "RIGHT"),
        ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
    ])
    # One small table per chunk (each with the header): splitting one huge table is quadratic in reportlab.
    grids = []
    for start in range(0, len(body), PDF_ROWS_PER_TABLE):
        grid = PdfTable([list(HEADERS), *body[start:start + PDF_ROWS_PER_TABLE]], colWidths=widths)
        grid.setStyle(style)
        grids.append(grid)
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=landscape(A4), leftMargin=10 * mm, rightMargin=10 * mm,
                            topMargin=12 * mm, bottomMargin=12 * mm, title=TITLE)
    doc.build([
        Paragraph(f"《{TITLE}》", title),
        Paragraph(f"发放月份：{table.year}年{table.month:02d}月　　单位：元", plain), Spacer(1, 4 * mm),
        *grids, Spacer(1, 8 * mm), Paragraph("　　　　　　　　".join(SIGNATURES), plain),
    ])
    return buffer.getvalue()


# --- reconciliation ------------------------------------------------------------------------------


async def reconcile(session: AsyncSession, year: int, month: int) -> dict:
    """R42.1: every line of the month ties back to a received signed form, every form of the month has its line.

    orphan line = a line (any state) whose form_id names no received form of the same supervisor and activity;
    missing line = a received form of the month with no line for its (supervisor, activity).
    """
    start, end = month_bounds(year, month)
    form_in_month = and_(feedback_form.c.activity_date >= start, feedback_form.c.activity_date < end)
    line_in_month = and_(subsidy_line.c.activity_date >= start, subsidy_line.c.activity_date < end)
    missing = (await session.execute(
        select(feedback_form.c.form_id, feedback_form.c.supervisor_id, feedback_form.c.activity_id,
               feedback_form.c.activity_date)
        .select_from(feedback_form.outerjoin(subsidy_line, and_(
            subsidy_line.c.supervisor_id == feedback_form.c.supervisor_id,
            subsidy_line.c.activity_id == feedback_form.c.activity_id)))
        .where(form_in_month, subsidy_line.c.id.is_(None)).order_by(feedback_form.c.activity_date)
    )).all()
    orphans = (await session.execute(
        select(subsidy_line.c.id.label("line_id"), subsidy_line.c.supervisor_id, subsidy_line.c.activity_id,
               subsidy_line.c.form_id, subsidy_line.c.status)
        .select_from(subsidy_line.outerjoin(feedback_form, and_(
            feedback_form.c.form_id == subsidy_line.c.form_id,
            feedback_form.c.supervisor_id == subsidy_line.c.supervisor_id,
            feedback_form.c.activity_id == subsidy_line.c.activity_id)))
        .where(line_in_month, feedback_form.c.form_id.is_(None)).order_by(subsidy_line.c.activity_date)
    )).all()
    forms = await session.scalar(select(func.count()).select_from(feedback_form).where(form_in_month))
    lines = await session.scalar(select(func.count()).select_from(subsidy_line).where(line_in_month))
    return {"year": year, "month": month, "ok": not missing and not orphans, "forms_checked": forms or 0,
            "lines_checked": lines or 0, "missing_lines": [dict(m._mapping) for m in missing],
            "orphan_lines": [dict(o._mapping) for o in orphans]}

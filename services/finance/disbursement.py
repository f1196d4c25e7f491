"""R42.1: the monthly 《威海市人民监督员履职补助发放表》 — draft, issue (frozen), correct, xlsx — and reconciliation.

A month's table is a document of record. Until issued it is a draft: the approved items (subsidy lines
by activity date, travel claims by travel date) of the month and of earlier months that are in no issued
table yet. Issuing it (a batch number) freezes its rows and ties its items to it; an item approved later
goes to the next table; a correction is a new version of the same batch, the old version kept. Payment is
shown on the table (a live overlay of the items' paid state), never by changing the frozen amounts.
Scope: one district, or the whole city (`ALL_DISTRICTS`).
"""

import io
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from sqlalchemy import and_, case, distinct, func, literal, literal_column, or_, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from services.finance import rules
from services.finance.models import (
    ALL_DISTRICTS,
    disbursement_item,
    disbursement_row,
    disbursement_table,
    feedback_form,
    platform,
    subsidy_line,
    supervisor,
    travel_claim,
)
from services.finance.rules import month_bounds, payment_status, yuan
from shared import audit, clock
from shared.activity_types import label as activity_label
from shared.crypto import DecryptionError, FieldCipher
from shared.documents import fit
from shared.documents.engine import render_pdf
from shared.documents.words import amount_in_words, document_date

TITLE = "威海市人民监督员履职补助发放表"
HEADERS = ("序号", "姓名", "所属区市", "履职次数", "履职补助（元）", "差旅费（元）", "合计（元）", "开户银行",
           "银行账号", "备注", "支付状态")
SIGNATURES = ("制表人：", "审核人：", "负责人：")
PAYABLE = ("approved", "paid")
BANK_CONTEXT = "finance.supervisor.bank_account"
STREAM_BATCH = 1000


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
    paid_fen: int = 0
    payment: str = ""


@dataclass
class Table:
    year: int
    month: int
    masked: bool
    rows: list[Row]
    scope: str = ALL_DISTRICTS
    status: str = "draft"  # draft | issued | superseded
    table_id: uuid.UUID | None = None
    batch_no: str | None = None
    version: int | None = None
    issued_by: str | None = None
    issued_at: object = None
    correction_reason: str | None = None

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
        return {"year": self.year, "month": self.month, "masked": self.masked, "scope": self.scope,
                "status": self.status, "table_id": self.table_id, "batch_no": self.batch_no, "version": self.version,
                "issued_by": self.issued_by, "issued_at": self.issued_at,
                "correction_reason": self.correction_reason, "total_paid_fen": sum(r.paid_fen for r in self.rows),
                "rows": [_row_dict(r) for r in self.rows],
                "total_activities": self.total_activities, "total_subsidy_fen": self.total_subsidy_fen,
                "total_travel_fen": self.total_travel_fen, "total_fen": self.total_fen}


def _row_dict(row: Row) -> dict:
    return {f: getattr(row, f) for f in Row.__slots__}


def _query(year: int, month: int, *, scope: str, table_id: uuid.UUID | None):
    """Rows aggregated per supervisor from the items of `table_id` (issuing), else from the open items (draft):
    approved, in no issued table, dated up to the month's end, of the scope."""
    _, end = month_bounds(year, month)
    line_paid = case((subsidy_line.c.status == rules.PAID, subsidy_line.c.amount_fen), else_=0)
    claim_amount = func.coalesce(travel_claim.c.approved_fen, travel_claim.c.total_fen)
    claim_paid = case((travel_claim.c.status == rules.PAID, claim_amount), else_=0)
    if table_id is not None:
        line_where = [subsidy_line.c.table_id == table_id]
        claim_where = [travel_claim.c.table_id == table_id]
    else:
        line_where = [subsidy_line.c.table_id.is_(None), subsidy_line.c.status.in_(PAYABLE),
                      subsidy_line.c.activity_date < end]
        claim_where = [travel_claim.c.table_id.is_(None), travel_claim.c.status.in_(PAYABLE),
                       travel_claim.c.travel_date < end]
        if scope != ALL_DISTRICTS:
            line_where.append(subsidy_line.c.district == scope)
            claim_where.append(travel_claim.c.district == scope)
    lines = (
        select(subsidy_line.c.supervisor_id.label("sid"), func.count().label("n"),
               func.sum(subsidy_line.c.amount_fen).label("subsidy"),
               func.bool_or(~subsidy_line.c.type_known).label("unknown_type"), func.sum(line_paid).label("paid"))
        .where(*line_where).group_by(subsidy_line.c.supervisor_id).cte("lines")
    )
    travel = (
        select(travel_claim.c.supervisor_id.label("sid"), func.sum(claim_amount).label("travel"),
               func.sum(claim_paid).label("paid"))
        .where(*claim_where).group_by(travel_claim.c.supervisor_id).cte("travel")
    )
    ids = union(select(lines.c.sid), select(travel.c.sid)).cte("ids")
    return (
        select(ids.c.sid, supervisor.c.name, supervisor.c.district, func.coalesce(lines.c.n, 0),
               func.coalesce(lines.c.subsidy, 0), func.coalesce(travel.c.travel, 0), supervisor.c.bank_name,
               supervisor.c.bank_account_masked, supervisor.c.bank_account_encrypted,
               func.coalesce(lines.c.unknown_type, literal_column("false")),
               func.coalesce(lines.c.paid, 0) + func.coalesce(travel.c.paid, 0))
        .select_from(ids.outerjoin(lines, lines.c.sid == ids.c.sid).outerjoin(travel, travel.c.sid == ids.c.sid)
                     .outerjoin(supervisor, supervisor.c.id == ids.c.sid))
        .order_by(supervisor.c.district, supervisor.c.name, ids.c.sid)
    )


def _decrypt(cipher: FieldCipher, encrypted: str | None, remarks: list[str]) -> str:
    if not encrypted:
        return ""
    try:
        return cipher.decrypt(encrypted, context=BANK_CONTEXT)
    except DecryptionError:
        remarks.append("银行账号无法解密")
        return ""


def _payment(total_fen: int, paid_fen: int, references: list[str] | None) -> str:
    text = payment_status(total_fen, paid_fen)
    refs = sorted(r for r in references or () if r)
    return f"{text}（流水号：{'、'.join(refs)}）" if refs else text


async def _raw_rows(session: AsyncSession, year: int, month: int, *, scope: str, table_id: uuid.UUID | None):
    """(Row masked, encrypted account) of a draft (table_id None) or of the items tied to `table_id`."""
    result = await session.stream(_query(year, month, scope=scope, table_id=table_id)
                                  .execution_options(yield_per=STREAM_BATCH))
    seq = 0
    async for sid, name, district, n, subsidy, travel_fen, bank_name, masked, encrypted, unknown, paid in result:
        seq += 1
        remarks = []
        if unknown:
            remarks.append("含未知活动类型（按“其他”标准）")
        if not masked:
            remarks.append("未登记银行账户")
        if not name:
            remarks.append("名册信息未同步")
        subsidy, travel_fen, paid = int(subsidy), int(travel_fen), int(paid)
        yield Row(seq, sid, name or "", district or "", int(n), subsidy, travel_fen, subsidy + travel_fen,
                  bank_name or "", masked or "", "；".join(remarks), paid,
                  payment_status(subsidy + travel_fen, paid)), encrypted


async def _frozen_rows(session: AsyncSession, table_id: uuid.UUID, *, cipher: FieldCipher | None):
    """The stored rows of an issued table with the live payment state of its items."""
    refs = func.coalesce(subsidy_line.c.payment_reference, travel_claim.c.payment_reference)
    paid_status = or_(subsidy_line.c.status == rules.PAID, travel_claim.c.status == rules.PAID)
    overlay = (
        select(disbursement_item.c.supervisor_id.label("sid"),
               func.sum(case((paid_status, disbursement_item.c.amount_fen), else_=0)).label("paid"),
               func.array_agg(distinct(case((paid_status, refs)))).label("refs"))
        .select_from(disbursement_item
                     .outerjoin(subsidy_line, and_(disbursement_item.c.kind == "line",
                                                   subsidy_line.c.id == disbursement_item.c.item_id))
                     .outerjoin(travel_claim, and_(disbursement_item.c.kind == "claim",
                                                   travel_claim.c.id == disbursement_item.c.item_id)))
        .where(disbursement_item.c.table_id == table_id).group_by(disbursement_item.c.supervisor_id).cte("overlay")
    )
    result = await session.stream(
        select(disbursement_row, func.coalesce(overlay.c.paid, 0).label("paid"), overlay.c.refs)
        .select_from(disbursement_row.outerjoin(overlay, overlay.c.sid == disbursement_row.c.supervisor_id))
        .where(disbursement_row.c.table_id == table_id).order_by(disbursement_row.c.seq)
        .execution_options(yield_per=STREAM_BATCH))
    async for r in result:
        remarks = [r.remark] if r.remark else []
        account = _decrypt(cipher, r.bank_account_encrypted, remarks) if cipher else r.bank_account_masked
        yield Row(r.seq, r.supervisor_id, r.name, r.district, r.activities, r.subsidy_fen, r.travel_fen,
                  r.total_fen, r.bank_name, account, "；".join(remarks), int(r.paid),
                  _payment(r.total_fen, int(r.paid), r.refs))


async def iter_rows(session: AsyncSession, year: int, month: int, *, scope: str = ALL_DISTRICTS,
                    table=None, cipher: FieldCipher | None = None) -> AsyncIterator[Row]:
    """The table's rows, streamed from a server-side cursor (constant memory for any month size).

    `table`: an issued table's record (its frozen rows), else the draft of the month; unmasked accounts
    only when `cipher` is given.
    """
    if table is not None:
        async for row in _frozen_rows(session, table.id, cipher=cipher):
            yield row
        return
    async for row, encrypted in _raw_rows(session, year, month, scope=scope, table_id=None):
        if cipher and encrypted:
            remarks = [row.remark] if row.remark else []
            row = _with_account(row, _decrypt(cipher, encrypted, remarks), remarks)
        yield row


def _with_account(row: Row, account: str, remarks: list[str]) -> Row:
    return Row(row.seq, row.supervisor_id, row.name, row.district, row.activities, row.subsidy_fen, row.travel_fen,
               row.total_fen, row.bank_name, account, "；".join(remarks), row.paid_fen, row.payment)


async def find_table(session: AsyncSession, year: int, month: int, *, scope: str = ALL_DISTRICTS,
                     version: int | None = None, for_update: bool = False):
    """The issued (current) table of (month, scope), or the given version of it; None if none."""
    query = select(disbursement_table).where(disbursement_table.c.year == year, disbursement_table.c.month == month,
                                             disbursement_table.c.scope == scope)
    if version is None:
        query = query.where(disbursement_table.c.status == "issued")
    else:
        query = query.where(disbursement_table.c.version == version)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query.order_by(disbursement_table.c.issued_at.desc()).limit(1))).first()


def _table_of(year: int, month: int, scope: str, masked: bool, rows: list[Row], record) -> Table:
    if record is None:
        return Table(year, month, masked, rows, scope=scope)
    return Table(year, month, masked, rows, scope=scope, status=record.status, table_id=record.id,
                 batch_no=record.batch_no, version=record.version, issued_by=record.issued_by,
                 issued_at=record.issued_at, correction_reason=record.correction_reason)


async def build(session: AsyncSession, year: int, month: int, *, scope: str = ALL_DISTRICTS,
                version: int | None = None, cipher: FieldCipher | None = None) -> Table:
    """The month's table in memory (JSON answer, PDF): the issued one (or a version), else the draft."""
    record = await find_table(session, year, month, scope=scope, version=version)
    rows = [row async for row in iter_rows(session, year, month, scope=scope, table=record, cipher=cipher)]
    return _table_of(year, month, scope, cipher is None, rows, record)


async def versions(session: AsyncSession, year: int, month: int, *, scope: str) -> list:
    return (await session.execute(select(disbursement_table).where(
        disbursement_table.c.year == year, disbursement_table.c.month == month, disbursement_table.c.scope == scope)
        .order_by(disbursement_table.c.version))).all()


# --- issuing and correcting (R42.1) --------------------------------------------------------------


async def _lock(session: AsyncSession, scope: str) -> None:
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"finance.disbursement:{scope}"))))


async def _freeze(session: AsyncSession, table_id: uuid.UUID, year: int, month: int, scope: str) -> dict:
    """Store the rows and items of the items now tied to `table_id`; the totals it was issued with."""
    rows = []
    async for row, encrypted in _raw_rows(session, year, month, scope=scope, table_id=table_id):
        rows.append({"table_id": table_id, "seq": row.seq, "supervisor_id": row.supervisor_id, "name": row.name,
                     "district": row.district, "activities": row.activities, "subsidy_fen": row.subsidy_fen,
                     "travel_fen": row.travel_fen, "total_fen": row.total_fen, "bank_name": row.bank_name,
                     "bank_account_masked": row.bank_account, "bank_account_encrypted": encrypted,
                     "remark": row.remark})
    if rows:
        await session.execute(disbursement_row.insert(), rows)
    await session.execute(disbursement_item.insert().from_select(
        ["table_id", "kind", "item_id", "supervisor_id", "amount_fen"],
        select(literal(table_id), literal("line"), subsidy_line.c.id, subsidy_line.c.supervisor_id,
               subsidy_line.c.amount_fen).where(subsidy_line.c.table_id == table_id)))
    await session.execute(disbursement_item.insert().from_select(
        ["table_id", "kind", "item_id", "supervisor_id", "amount_fen"],
        select(literal(table_id), literal("claim"), travel_claim.c.id, travel_claim.c.supervisor_id,
               func.coalesce(travel_claim.c.approved_fen, travel_claim.c.total_fen))
        .where(travel_claim.c.table_id == table_id)))
    totals = {"row_count": len(rows), "total_activities": sum(r["activities"] for r in rows),
              "total_subsidy_fen": sum(r["subsidy_fen"] for r in rows),
              "total_travel_fen": sum(r["travel_fen"] for r in rows), "total_fen": sum(r["total_fen"] for r in rows)}
    await session.execute(disbursement_table.update().where(disbursement_table.c.id == table_id).values(**totals))
    return totals


async def issue(session: AsyncSession, *, actor: str, year: int, month: int, scope: str) -> uuid.UUID:
    """R42.1: issue the month's table: a batch number, its open items tied to it, its rows frozen."""
    await _lock(session, scope)
    last = (await session.execute(
        select(disbursement_table.c.year, disbursement_table.c.month).where(disbursement_table.c.scope == scope)
        .order_by(disbursement_table.c.year.desc(), disbursement_table.c.month.desc()).limit(1))).first()
    rules.check_issue_period(year, month, today=clock.today(), last_issued=tuple(last) if last else None)
    chains = await session.scalar(select(func.count(distinct(disbursement_table.c.batch_no))).where(
        disbursement_table.c.year == year, disbursement_table.c.month == month))
    table_id = uuid.uuid4()
    await session.execute(disbursement_table.insert().values(
        id=table_id, year=year, month=month, scope=scope, batch_no=rules.batch_number(year, month, (chains or 0) + 1),
        version=1, status="issued", issued_by=actor, issued_at=clock.now()))
    _, end = month_bounds(year, month)
    lines = [subsidy_line.c.table_id.is_(None), subsidy_line.c.status.in_(PAYABLE), subsidy_line.c.activity_date < end]
    claims = [travel_claim.c.table_id.is_(None), travel_claim.c.status.in_(PAYABLE), travel_claim.c.travel_date < end]
    if scope != ALL_DISTRICTS:
        lines.append(subsidy_line.c.district == scope)
        claims.append(travel_claim.c.district == scope)
    await session.execute(subsidy_line.update().where(*lines).values(table_id=table_id))
    await session.execute(travel_claim.update().where(*claims).values(table_id=table_id))
    totals = await _freeze(session, table_id, year, month, scope)
    await _audit(session, actor=actor, action="disbursement.issued", subject=f"disbursement:{table_id}",
                 period=f"{year}-{month:02d}", scope=scope, version=1, **totals)
    return table_id


async def correct(session: AsyncSession, *, actor: str, year: int, month: int, scope: str, reason: str,
                  exclude_lines: list[uuid.UUID], exclude_claims: list[uuid.UUID]) -> uuid.UUID:
    """R42.1: a correction is a new version of the batch (rows re-frozen, excluded unpaid items released to a
    later table); the old version is kept, marked superseded."""
    await _lock(session, scope)
    old = await find_table(session, year, month, scope=scope, for_update=True)
    if old is None:
        raise rules.RuleViolation(404, "not_found", "发放表不存在", f"{year}年{month}月（{scope}）尚未签发发放表。")
    for model, ids, what in ((subsidy_line, exclude_lines, "补助明细"), (travel_claim, exclude_claims, "差旅费报销单")):
        if not ids:
            continue
        found = (await session.execute(select(model.c.id, model.c.status).where(
            model.c.id.in_(ids), model.c.table_id == old.id).with_for_update())).all()
        if len(found) != len(set(ids)):
            raise rules.RuleViolation(422, "R42.1", "明细不在本发放表中", f"所列{what}不全在本发放表中。")
        if any(f.status == rules.PAID for f in found):
            raise rules.RuleViolation(409, "R42.1", "已支付的明细不能移出", f"所列{what}中有已支付的，不能移出发放表。")
    at = clock.now()
    await session.execute(disbursement_table.update().where(disbursement_table.c.id == old.id)
                          .values(status="superseded", superseded_at=at))
    table_id = uuid.uuid4()
    await session.execute(disbursement_table.insert().values(
        id=table_id, year=year, month=month, scope=scope, batch_no=old.batch_no, version=old.version + 1,
        status="issued", supersedes_id=old.id, correction_reason=reason, issued_by=actor, issued_at=at))
    for model, ids in ((subsidy_line, exclude_lines), (travel_claim, exclude_claims)):
        if ids:
            await session.execute(model.update().where(model.c.table_id == old.id, model.c.id.in_(ids))
                                  .values(table_id=None))
        await session.execute(model.update().where(model.c.table_id == old.id).values(table_id=table_id))
    totals = await _freeze(session, table_id, year, month, scope)
    await _audit(session, actor=actor, action="disbursement.corrected", subject=f"disbursement:{table_id}",
                 period=f"{year}-{month:02d}", scope=scope, version=old.version + 1, supersedes=str(old.id),
                 reason=reason, excluded_lines=len(exclude_lines), excluded_claims=len(exclude_claims), **totals)
    return table_id


async def _audit(session: AsyncSession, *, actor: str, action: str, subject: str, **details) -> None:
    await audit.append(session, platform.audit, actor=actor, action=action, subject=subject, details=details)


# --- xlsx ----------------------------------------------------------------------------------------

MONEY_FORMAT = "#,##0.00"


def _money(fen: int) -> Decimal:
    """Fen as an exact Decimal of yuan (a number cell, never a float computation)."""
    return Decimal(fen).scaleb(-2)


def issue_label(table: Table) -> str:
    """R42.1: what the table is: a draft, or an issued batch and version."""
    if table.status == "draft":
        return "草稿（未签发，不作发放依据）"
    state = "已被更正版本取代" if table.status == "superseded" else "已签发"
    return f"批次号：{table.batch_no}　第{table.version}版　{state}"


def title_rows(year: int, month: int, label: str = "", scope: str = ALL_DISTRICTS) -> list[tuple]:
    return [(f"《{TITLE}》",), (f"发放月份：{year}年{month:02d}月", None, f"范围：{scope}", None, label, None,
                                "单位：元"), HEADERS]


def data_row(r: Row) -> tuple:
    return (r.seq, r.name, r.district, r.activities, _money(r.subsidy_fen), _money(r.travel_fen),
            _money(r.total_fen), r.bank_name, r.bank_account, r.remark, r.payment)


def closing_rows(activities: int, subsidy_fen: int, travel_fen: int, total_fen: int) -> list[tuple]:
    return [("合计", None, None, activities, _money(subsidy_fen), _money(travel_fen), _money(total_fen), None, None,
             None), (), (SIGNATURES[0], None, None, SIGNATURES[1], None, None, SIGNATURES[2])]


def sheet_rows(table: Table) -> Iterator[tuple]:
    """The rows of the official layout: title, month, header, data, totals, signatures."""
    yield from title_rows(table.year, table.month, issue_label(table), table.scope)
    for r in table.rows:
        yield data_row(r)
    yield from closing_rows(table.total_activities, table.total_subsidy_fen, table.total_travel_fen, table.total_fen)


DETAIL_HEADERS = ("序号", "姓名", "所属区市", "活动日期", "活动类型", "履职补助（元）", "支付状态")
LINE_STATE_ZH = {rules.APPROVED: "未支付", rules.PAID: "已支付"}


@dataclass(frozen=True, slots=True)
class Detail:
    """One activity of the table (a subsidy line): who, when, which type, how much (R42.1 activity detail)."""
    name: str
    district: str
    activity_date: object
    activity_type: str
    amount_fen: int
    status: str


class XlsxSheet:
    """The official layout written row by row (openpyxl write-only: rows go to a temp file, not memory): a bordered
    table under a merged title, landscape A4 fitted to the page width, the header row repeated on every printed
    page; a second sheet lists each activity (履职明细)."""

    MONEY_COLUMNS = frozenset({4, 5, 6})
    WRAP_COLUMNS = frozenset({7, 9, 10})  # bank name, remark, payment state wrap in their cells
    WIDTHS = (6, 10, 10, 9, 14, 12, 14, 28, 24, 24, 24)
    DETAIL_WIDTHS = (8, 10, 10, 12, 18, 14, 10)

    def __init__(self, year: int, month: int, label: str = "", scope: str = ALL_DISTRICTS) -> None:
        from openpyxl import Workbook
        from openpyxl.styles import Alignment, Border, Font, PatternFill, Side

        self.wb = Workbook(write_only=True)
        self.ws = self.wb.create_sheet(f"{year}-{month:02d}")
        self.detail = self.wb.create_sheet("履职明细")
        thin = Side(style="thin", color="000000")
        self._border = Border(left=thin, right=thin, top=thin, bottom=thin)
        self._wrap = Alignment(wrap_text=True, vertical="center")
        self._center = Alignment(horizontal="center", vertical="center", wrap_text=True)
        self._head_fill = PatternFill("solid", fgColor="EDEDED")
        self._bold = Font(bold=True)
        for ws, widths, headers in ((self.ws, self.WIDTHS, HEADERS), (self.detail, self.DETAIL_WIDTHS, DETAIL_HEADERS)):
            for index, width in enumerate(widths):
                ws.column_dimensions[chr(ord("A") + index)].width = width
            last = chr(ord("A") + len(headers) - 1)
            ws.merged_cells.add(f"A1:{last}1")  # the title across the table
            ws.print_title_rows = "3:3"  # the header row on every printed page
            ws.page_setup.orientation = "landscape"
            ws.page_setup.paperSize = "9"  # A4
            ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
            ws.sheet_properties.pageSetUpPr.fitToPage = True
            ws.print_options.horizontalCentered = True
            ws.page_margins.left = ws.page_margins.right = 0.4
            ws.oddFooter.center.text = "第 &P 页 共 &N 页"
        self.activities = self.subsidy_fen = self.travel_fen = self.total_fen = 0
        self._cells = [self._cell(money=c in self.MONEY_COLUMNS, wrap=c in self.WRAP_COLUMNS)
                       for c in range(len(HEADERS))]
        self._detail_cells = [self._cell(money=c == 5, wrap=False) for c in range(len(DETAIL_HEADERS))]
        self._details = 0
        title, period, _ = title_rows(year, month, label, scope)
        for ws, headers, sub in ((self.ws, HEADERS, period), (self.detail, DETAIL_HEADERS, period[:5])):
            ws.append([self._styled(title[0], font=Font(bold=True, size=16), alignment=self._center)])
            ws.append(list(sub))
            ws.append([self._styled(h, font=self._bold, alignment=self._center, fill=self._head_fill,
                                    border=self._border) for h in headers])
        self._detail_open = True

    def _styled(self, value, **style):
        from openpyxl.cell import WriteOnlyCell

        cell = WriteOnlyCell(self.ws, value=value)
        for name, v in style.items():
            setattr(cell, name, v)
        return cell

    def _cell(self, *, money: bool, wrap: bool):
        from openpyxl.cell import WriteOnlyCell

        cell = WriteOnlyCell(self.ws)
        cell.border = self._border
        if money:
            cell.number_format = MONEY_FORMAT
        if wrap:
            cell.alignment = self._wrap
        return cell

    @staticmethod
    def _append_with(ws, cells: list, values: tuple) -> None:
        # A write-only sheet serializes each row as it is appended, so one styled cell per column is reused for
        # every row (creating and styling cells per row costs ~30 %).
        row = []
        for cell, value in zip(cells, values, strict=False):
            cell.value = value
            row.append(cell)
        ws.append(row)

    def _append(self, values: tuple) -> None:
        self._append_with(self.ws, self._cells, values)

    def add(self, row: Row) -> None:
        self.activities += row.activities
        self.subsidy_fen += row.subsidy_fen
        self.travel_fen += row.travel_fen
        self.total_fen += row.total_fen
        self._append(data_row(row))

    def add_detail(self, detail: Detail) -> None:
        self._details += 1
        self._append_with(self.detail, self._detail_cells, (
            self._details, detail.name, detail.district, detail.activity_date, activity_label(detail.activity_type),
            _money(detail.amount_fen), LINE_STATE_ZH.get(detail.status, detail.status)))

    def finish(self) -> bytes:
        totals, blank, signatures = closing_rows(self.activities, self.subsidy_fen, self.travel_fen, self.total_fen)
        self._append(totals)
        self.ws.append([f"合计金额（大写）：{amount_in_words(self.total_fen)}"])
        self.ws.append(list(blank))
        self.ws.append(list(signatures))
        buffer = io.BytesIO()
        self.wb.save(buffer)
        return buffer.getvalue()


def to_xlsx(table: Table, details: list[Detail] | None = None) -> bytes:
    """A table already in memory as xlsx."""
    sheet = XlsxSheet(table.year, table.month, issue_label(table), table.scope)
    for row in table.rows:
        sheet.add(row)
    for detail in details or ():
        sheet.add_detail(detail)
    return sheet.finish()


def _details_query(year: int, month: int, *, scope: str, table_id: uuid.UUID | None):
    _, end = month_bounds(year, month)
    if table_id is not None:
        where = [subsidy_line.c.table_id == table_id]
    else:
        where = [subsidy_line.c.table_id.is_(None), subsidy_line.c.status.in_(PAYABLE),
                 subsidy_line.c.activity_date < end]
        if scope != ALL_DISTRICTS:
            where.append(subsidy_line.c.district == scope)
    return (select(supervisor.c.name, supervisor.c.district, subsidy_line.c.activity_date,
                   subsidy_line.c.activity_type, subsidy_line.c.amount_fen, subsidy_line.c.status)
            .select_from(subsidy_line.outerjoin(supervisor, supervisor.c.id == subsidy_line.c.supervisor_id))
            .where(*where).order_by(supervisor.c.district, supervisor.c.name, subsidy_line.c.supervisor_id,
                                    subsidy_line.c.activity_date, subsidy_line.c.id))


async def iter_details(session: AsyncSession, year: int, month: int, *, scope: str = ALL_DISTRICTS,
                       table=None) -> AsyncIterator[Detail]:
    """R42.1: the activities (subsidy lines) of the table (issued: those tied to it; draft: the open ones)."""
    result = await session.stream(_details_query(year, month, scope=scope, table_id=table.id if table else None)
                                  .execution_options(yield_per=STREAM_BATCH))
    async for name, district, day, kind, amount, status in result:
        yield Detail(name or "", district or "", day, kind, int(amount), status)


async def export_xlsx(session: AsyncSession, year: int, month: int, *, scope: str = ALL_DISTRICTS,
                      version: int | None = None, cipher: FieldCipher | None = None) -> bytes:
    """The month's table as xlsx (the issued one, a version, or the draft), streamed into the sheet (R42.1)."""
    record = await find_table(session, year, month, scope=scope, version=version)
    sheet = XlsxSheet(year, month, issue_label(_table_of(year, month, scope, True, [], record)), scope)
    async for row in iter_rows(session, year, month, scope=scope, table=record, cipher=cipher):
        sheet.add(row)
    async for detail in iter_details(session, year, month, scope=scope, table=record):
        sheet.add_detail(detail)
    return sheet.finish()


# --- PDF -----------------------------------------------------------------------------------------


TEMPLATE = Path(__file__).with_name("disbursement_table.typ")
KIND = "disbursement_table"
# The printed table's geometry (disbursement_table.typ reads it from the data's "layout"): landscape A4 less two
# 12 mm margins = 273 mm; 序号 holds five digits (10 000 lines; 2 mm from 支付状态, which wraps anyway).
COLUMNS_MM = (11, 15, 15, 10, 20, 18, 21, 55, 44, 36, 28)
FONT_PT, INSET_PT, LEADING_EM = 9, (3, 3.5), 0.6
FIXED_LINES_AT_MOST = 6  # a row of fixed height cannot break across pages: a taller one stays auto (typst splits it)


def pdf_document(table: Table, *, unit: str, dated: date) -> dict:
    """R42.1: the table's words for the template: figures in yuan with two decimals, the total also in capital
    numerals, what the table is (draft / batch and version), the issuing unit and the date."""
    return {
        "title": TITLE, "unit": unit, "month": f"{table.year}年{table.month}月", "scope": table.scope,
        "label": issue_label(table), "draft": table.status == "draft", "dated": document_date(dated),
        "correction": table.correction_reason, "headers": list(HEADERS),
        "rows": [[str(r.seq), r.name, r.district, str(r.activities), yuan(r.subsidy_fen), yuan(r.travel_fen),
                  yuan(r.total_fen), r.bank_name, r.bank_account, r.remark, r.payment] for r in table.rows],
        "total": {"activities": str(table.total_activities), "subsidy": yuan(table.total_subsidy_fen),
                  "travel": yuan(table.total_travel_fen), "total": yuan(table.total_fen),
                  "words": amount_in_words(table.total_fen)},
    }


def document_day(table: Table) -> date:
    """The table's date: the day it was issued (a version: the day of that version); a draft: today."""
    return clock.local_date(table.issued_at) if table.issued_at else clock.today()


def layout(rows: list[list[str]]) -> dict:
    """How the template sets the rows: column widths, and per row its number of lines when certain (fit.lines;
    0: typst measures the row). A row given its height is laid out once instead of twice: the 10 000-line table
    renders ≈ 1.5× faster (bench/bench_documents.py), every character in the same place."""
    inner = [mm * 72 / 25.4 - 2 * INSET_PT[0] for mm in COLUMNS_MM]
    counts = []
    for row in rows:
        needed = [fit.lines(cell, width, FONT_PT) for cell, width in zip(row, inner, strict=True)]
        counts.append(0 if None in needed or max(needed) > FIXED_LINES_AT_MOST else max(needed))
    return {"columns": list(COLUMNS_MM), "size": FONT_PT, "inset": list(INSET_PT), "leading": LEADING_EM,
            "cap": fit.cap_height(), "lines": counts}


def render(data: dict, *, dated: date) -> bytes:
    """The PDF of `pdf_document`'s data; the layout is derived here, not part of the data (an archived table's
    data hash stays what it was)."""
    return render_pdf(TEMPLATE, {**data, "layout": layout(data["rows"])}, dated=dated)


def to_pdf(table: Table, *, unit: str) -> bytes:
    """R42.1: the table as PDF (landscape A4, header repeated on every page, page numbers, fonts embedded)."""
    day = document_day(table)
    return render(pdf_document(table, unit=unit, dated=day), dated=day)


# --- reconciliation ------------------------------------------------------------------------------


async def reconcile(session: AsyncSession, year: int, month: int, *, scope: str = ALL_DISTRICTS) -> dict:
    """R42.1: every line of the month ties back to a received signed form, every form of the month has its line.

    orphan line = a line (any state) whose form_id names no received form of the same supervisor and activity;
    missing line = a received form of the month with no line for its (supervisor, activity).
    Forms are keyed by (form_id, supervisor_id): one form has one signed record per signer.
    """
    start, end = month_bounds(year, month)
    form_in_month = and_(feedback_form.c.activity_date >= start, feedback_form.c.activity_date < end)
    line_in_month = and_(subsidy_line.c.activity_date >= start, subsidy_line.c.activity_date < end)
    if scope != ALL_DISTRICTS:
        form_in_month = and_(form_in_month, feedback_form.c.district == scope)
        line_in_month = and_(line_in_month, subsidy_line.c.district == scope)
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
    return {"year": year, "month": month, "scope": scope, "ok": not missing and not orphans,
            "forms_checked": forms or 0, "lines_checked": lines or 0,
            "missing_lines": [dict(m._mapping) for m in missing],
            "orphan_lines": [dict(o._mapping) for o in orphans]}

"""Finance work lists (subsidy lines, travel claims: keyset paging), their deadlines (GET /deadlines) and the
statistics of what was paid. Reads only; the caller owns the transaction; grouping and sums are done in SQL.
"""

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import and_, extract, false, func, literal, or_, select, tuple_, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from services.finance import rules
from services.finance import service as svc
from services.finance.config import FinanceSettings
from services.finance.models import subsidy_line, supervisor, travel_claim
from shared.activity_types import label
from shared.deadlines import Compute, Deadline, DeadlineQuery

L = subsidy_line.c
C = travel_claim.c
FIN_ROLES = ["finance", "bureau_admin"]
CLAIM_DISTRICT = func.coalesce(C.district, supervisor.c.district)  # as the budget counts a claim (R41.1)
LINE_SORTS = {"activity_date": (L.activity_date, False), "-activity_date": (L.activity_date, True)}
CLAIM_SORTS = {"created_at": (C.created_at, False), "-created_at": (C.created_at, True),
               "travel_date": (C.travel_date, False), "-travel_date": (C.travel_date, True)}


def _actionable(status, checked_by, actor: str | None):
    """R42.1/R43.1 (four eyes): items the actor may take the next step of: check a draft, approve what another
    user checked, issue or pay an approved one."""
    if actor is None:
        return false()
    return or_(status == rules.DRAFT, and_(status == rules.CHECKED, checked_by.is_distinct_from(actor)),
               status == rules.APPROVED)


def _after(column, id_column, descending: bool, after: list | None) -> list:
    if after is None:
        return []
    key = tuple_(column, id_column)
    return [key < tuple(after) if descending else key > tuple(after)]


def _order(column, id_column, descending: bool) -> tuple:
    return (column.desc(), id_column.desc()) if descending else (column, id_column)


def _decorate(view: dict, row, *, actor: str | None) -> dict:
    step = rules.waiting_for(row.status, in_issued_table=row.table_id is not None)
    return {**view, "supervisor_name": row.supervisor_name, "waiting_for": step,
            "may_act": rules.may_act(step, actor=actor or "", checked_by=row.checked_by, can_act=actor is not None)}


async def list_lines(session: AsyncSession, *, statuses: list[str], supervisor_id: uuid.UUID | None,
                     district: str | None, since: date | None, until: date | None, actionable: bool | None,
                     actor: str | None, sort: str, limit: int,
                     after: list | None) -> tuple[list[dict], int, list | None]:
    """R42.1: (page, total, sort key of the last row when more follow) of subsidy lines by state, activity date,
    district and supervisor; `actor` is the finance user the four-eyes flags are computed for (None: a reader)."""
    where: list[Any] = []
    if statuses:
        where.append(L.status.in_(statuses))
    if supervisor_id is not None:
        where.append(L.supervisor_id == supervisor_id)
    if district is not None:
        where.append(L.district == district)
    if since is not None:
        where.append(L.activity_date >= since)
    if until is not None:
        where.append(L.activity_date <= until)
    if actionable is not None:
        mine = _actionable(L.status, L.checked_by, actor)
        where.append(mine if actionable else ~mine)
    total = await session.scalar(select(func.count()).select_from(subsidy_line).where(*where))
    column, descending = LINE_SORTS[sort]
    rows = (await session.execute(
        select(subsidy_line, supervisor.c.name.label("supervisor_name"))
        .select_from(subsidy_line.outerjoin(supervisor, supervisor.c.id == L.supervisor_id))
        .where(*where, *_after(column, L.id, descending, after))
        .order_by(*_order(column, L.id, descending)).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = [_decorate(svc.line_view(r), r, actor=actor) for r in rows]
    return items, total or 0, [rows[-1].activity_date, rows[-1].id] if more else None


async def list_claims(session: AsyncSession, settings: FinanceSettings, *, statuses: list[str],
                      supervisor_id: uuid.UUID | None, district: str | None, purpose_kind: str | None,
                      since: date | None, until: date | None, actionable: bool | None, actor: str | None, sort: str,
                      limit: int, after: list | None) -> tuple[list[dict], int, list | None]:
    """R43.1: (page, total, next key) of travel claims by state, travel date, district, supervisor and purpose."""
    joined = travel_claim.outerjoin(supervisor, supervisor.c.id == C.supervisor_id)
    where: list[Any] = []
    if statuses:
        where.append(C.status.in_(statuses))
    if supervisor_id is not None:
        where.append(C.supervisor_id == supervisor_id)
    if district is not None:
        where.append(CLAIM_DISTRICT == district)
    if purpose_kind is not None:
        where.append(C.purpose_kind == purpose_kind)
    if since is not None:
        where.append(C.travel_date >= since)
    if until is not None:
        where.append(C.travel_date <= until)
    if actionable is not None:
        mine = _actionable(C.status, C.checked_by, actor)
        where.append(mine if actionable else ~mine)
    total = await session.scalar(select(func.count()).select_from(joined).where(*where))
    column, descending = CLAIM_SORTS[sort]
    rows = (await session.execute(
        select(travel_claim, supervisor.c.name.label("supervisor_name")).select_from(joined)
        .where(*where, *_after(column, C.id, descending, after))
        .order_by(*_order(column, C.id, descending)).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    views = await svc.claim_views(session, settings, rows)
    items = [_decorate({k: v for k, v in view.items() if k != "supervisor_name"}, row, actor=actor)
             for view, row in zip(views, rows, strict=True)]
    last = rows[-1] if more else None
    return items, total or 0, None if last is None else [getattr(last, column.name), last.id]


# --- GET /deadlines ------------------------------------------------------------------------------

LINE_STEPS = {rules.DRAFT: ("lines_to_check", "待审核"),
              rules.CHECKED: ("lines_to_approve", "待批准（须由审核人以外的财务人员批准）")}


def deadline_compute(settings: FinanceSettings) -> Compute:
    """Finance's open deadlines: lines to check and approve and the month's table to issue (R42.1), travel claims
    to check and approve (R43.1), each due by its month's table (`DISBURSEMENT_DUE_DAY` of the next month)."""

    def due(year: int, month: int) -> date:
        return rules.table_due_on(year, month, settings.disbursement_due_day)

    async def compute(session: AsyncSession, query: DeadlineQuery) -> Sequence[Deadline]:
        items = [*await _line_deadlines(session, query, due), *await _claim_deadlines(session, query, due)]
        return [i for i in items if i.due_on <= query.horizon]

    return compute


def _month_label(year: int, month: int, district: str | None) -> str:
    return f"{year}年{month}月{district or '（未标明区市）'}"


async def _line_deadlines(session: AsyncSession, query: DeadlineQuery, due) -> list[Deadline]:
    """R42.1: per district and activity month, the lines still to check / approve, and the approved items in no
    issued table (lines and claims together: the table to issue)."""
    year, month = extract("year", L.activity_date), extract("month", L.activity_date)
    open_lines = (select(L.status, L.district, year.label("y"), month.label("m"), func.count().label("n"),
                         func.sum(L.amount_fen).label("fen"))
                  .where(or_(L.status.in_(list(LINE_STEPS)), and_(L.status == rules.APPROVED, L.table_id.is_(None))))
                  .group_by(L.status, L.district, year, month))
    cyear, cmonth = extract("year", C.travel_date), extract("month", C.travel_date)
    unissued_claims = (select(literal(rules.APPROVED).label("status"), CLAIM_DISTRICT.label("district"),
                              cyear.label("y"), cmonth.label("m"), func.count().label("n"),
                              func.sum(func.coalesce(C.approved_fen, C.total_fen)).label("fen"))
                       .select_from(travel_claim.outerjoin(supervisor, supervisor.c.id == C.supervisor_id))
                       .where(C.status == rules.APPROVED, C.table_id.is_(None))
                       .group_by(CLAIM_DISTRICT, cyear, cmonth))
    if query.district is not None:
        open_lines = open_lines.where(or_(L.district.is_(None), L.district == query.district))
        unissued_claims = unissued_claims.where(or_(CLAIM_DISTRICT.is_(None), CLAIM_DISTRICT == query.district))
    tables: dict[tuple[int, int, str | None], list[int]] = {}
    items = []
    for r in (await session.execute(union_all(open_lines, unissued_claims))).all():
        y, m = int(r.y), int(r.m)
        if r.status == rules.APPROVED:
            counts = tables.setdefault((y, m, r.district), [0, 0])
            counts[0] += r.n
            counts[1] += int(r.fen)
            continue
        kind, what = LINE_STEPS[r.status]
        items.append(Deadline(
            rule="R42.1", kind=kind,
            title=f"{_month_label(y, m, r.district)}履职补助明细 {r.n} 条{what}（合计 {rules.yuan(int(r.fen))} 元）",
            subject_type="subsidy_lines", subject_id=f"{y}-{m:02d}/{r.district or ''}/{r.status}",
            district=r.district, roles=FIN_ROLES, due_on=due(y, m)))
    for (y, m, district), (n, fen) in tables.items():
        items.append(Deadline(
            rule="R42.1", kind="table_due",
            title=f"{_month_label(y, m, district)}已批准未列入发放表的 {n} 项（合计 {rules.yuan(fen)} 元）"
                  "待制作并签发《威海市人民监督员履职补助发放表》",
            subject_type="disbursement", subject_id=f"{y}-{m:02d}/{district or ''}", district=district,
            roles=FIN_ROLES, due_on=due(y, m)))
    return items


async def _claim_deadlines(session: AsyncSession, query: DeadlineQuery, due) -> list[Deadline]:
    """R43.1: each claim still to check (receipts on every item) or approve (by another finance user)."""
    stmt = (select(C.id, C.status, C.travel_date, C.purpose_kind, C.total_fen, CLAIM_DISTRICT.label("district"),
                   supervisor.c.name)
            .select_from(travel_claim.outerjoin(supervisor, supervisor.c.id == C.supervisor_id))
            .where(C.status.in_([rules.DRAFT, rules.CHECKED])))
    if query.district is not None:
        stmt = stmt.where(or_(CLAIM_DISTRICT.is_(None), CLAIM_DISTRICT == query.district))
    items = []
    for r in (await session.execute(stmt)).all():
        checking = r.status == rules.DRAFT
        items.append(Deadline(
            rule="R43.1", kind="claim_to_check" if checking else "claim_to_approve",
            title=f"{r.name or '人民监督员'} {r.travel_date.isoformat()} 差旅费报销 {rules.yuan(r.total_fen)} 元"
                  + ("待审核（须每项附票据）" if checking else "待批准（须由审核人以外的财务人员批准）"),
            subject_type="travel_claim", subject_id=str(r.id), district=r.district, roles=FIN_ROLES,
            due_on=due(r.travel_date.year, r.travel_date.month)))
    return items


# --- statistics: what was paid, per month and year, by district and kind -------------------------

TRAVEL = "travel"


def _money(count: int, fen: int) -> dict:
    return {"count": count, "amount_fen": fen, "amount_yuan": rules.yuan(fen)}


async def paid_statistics(session: AsyncSession, *, year: int, month: int | None, district: str | None) -> dict:
    """R42.1/R43.1: paid subsidy lines (kind = activity type) and travel claims (kind `travel`), by the day they
    were paid, per month, district and kind — one GROUPING SETS query."""
    start, end = rules.month_bounds(year, month) if month else (date(year, 1, 1), date(year + 1, 1, 1))
    lines = select(L.paid_on.label("paid_on"), L.district.label("district"), L.activity_type.label("kind"),
                   L.amount_fen.label("fen")).where(L.status == rules.PAID, L.paid_on >= start, L.paid_on < end)
    claims = (select(C.paid_on.label("paid_on"), CLAIM_DISTRICT.label("district"), literal(TRAVEL).label("kind"),
                     func.coalesce(C.approved_fen, C.total_fen).label("fen"))
              .select_from(travel_claim.outerjoin(supervisor, supervisor.c.id == C.supervisor_id))
              .where(C.status == rules.PAID, C.paid_on >= start, C.paid_on < end))
    if district is not None:
        lines, claims = lines.where(L.district == district), claims.where(CLAIM_DISTRICT == district)
    paid = union_all(lines, claims).subquery()
    paid_month = extract("month", paid.c.paid_on)
    rows = (await session.execute(
        select(func.grouping(paid_month, paid.c.district, paid.c.kind).label("set"), paid_month.label("month"),
               paid.c.district, paid.c.kind, func.count().label("n"), func.sum(paid.c.fen).label("fen"))
        .group_by(func.grouping_sets(paid_month, paid.c.district, paid.c.kind)))).all()
    months = dict.fromkeys([month] if month else range(1, 13), (0, 0))
    by_district, by_kind = {}, {}
    for r in rows:
        figures = (int(r.n), int(r.fen or 0))
        if r.set == 0b011:  # grouped by month
            months[int(r.month)] = figures
        elif r.set == 0b101:  # by district
            by_district[r.district] = figures
        elif r.set == 0b110:  # by kind
            by_kind[r.kind] = figures
    count, fen = sum(n for n, _ in months.values()), sum(f for _, f in months.values())
    travel = by_kind.get(TRAVEL, (0, 0))
    return {
        "year": year, "month": month, "district": district, "total": _money(count, fen),
        "subsidy": _money(count - travel[0], fen - travel[1]), "travel": _money(*travel),
        "by_month": [{"month": m, **_money(*f)} for m, f in months.items()],
        "by_district": [{"district": d, **_money(*f)}
                        for d, f in sorted(by_district.items(), key=lambda kv: kv[0] or "")],
        "by_kind": [{"kind": k, "label": "差旅费" if k == TRAVEL else label(k), **_money(*f)}
                    for k, f in sorted(by_kind.items())],
    }

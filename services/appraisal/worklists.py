"""The appraisal work list (rounds and their pending step), its deadlines (GET /deadlines) and result statistics.

Reads only; the caller owns the transaction. Who acts next and by when are pure rules (`rules.pending_step`,
R29.1/R34.1/R35.1); the queries here load the rows they need, filtered and grouped in SQL.
"""

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_, exists, extract, func, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.appraisal import rules
from services.appraisal.config import AppraisalSettings
from services.appraisal.models import appraisal_round, participant, round_step, supervisor
from services.appraisal.service import period_label
from shared.deadlines import Compute, Deadline, DeadlineQuery

R = appraisal_round.c
P = participant.c
SINCE = func.coalesce(round_step.c.at, R.created_at)  # when the round entered its current state
SORTS = {"created_at": (R.created_at, False), "-created_at": (R.created_at, True),
         "since": (SINCE, False), "-since": (SINCE, True)}
OVERDUE_LOOKBACK_DAYS = 366  # deadlines missed longer ago than this are not listed any more


def pending_view(step: rules.PendingStep | None) -> dict | None:
    if step is None:
        return None
    return {"action": step.action, "label": step.label, "roles": list(step.roles), "not_before": step.not_before}


async def list_rounds(session: AsyncSession, *, year: int | None, kinds: list[str], states: list[str],
                      district: str | None, role: str | None, sort: str, limit: int,
                      after: list | None) -> tuple[list[dict], int, list | None]:
    """(page, total, sort key of the last row when more follow): rounds with the step they wait for (R34.1)."""
    where: list[Any] = []
    if year is not None:
        where.append(or_(and_(R.kind == "annual", R.year == year),
                         and_(R.kind == "term", R.term_start <= date(year, 12, 31), R.term_end >= date(year, 1, 1))))
    if kinds:
        where.append(R.kind.in_(kinds))
    if states:
        where.append(R.state.in_(states))
    if role is not None:
        where.append(R.state.in_(rules.states_awaiting(role)))
        if role == rules.BUREAU:  # a finalized round waits for the bureau only until (6) is done
            where.append(or_(R.state != "finalized", R.entered_done_at.is_(None), R.reported_done_at.is_(None)))
    if district is not None:
        where.append(exists().where(P.round_id == R.id, P.district == district))
    joined = appraisal_round.outerjoin(round_step, and_(round_step.c.round_id == R.id, round_step.c.state == R.state))
    total = await session.scalar(select(func.count()).select_from(appraisal_round).where(*where))
    column, descending = SORTS[sort]
    page_where = list(where)
    if after is not None:
        key = tuple_(column, R.id)
        page_where.append(key < tuple(after) if descending else key > tuple(after))
    appraised = select(func.count()).where(P.round_id == R.id).scalar_subquery()
    in_district = (select(func.count()).where(P.round_id == R.id, P.district == district).scalar_subquery()
                   if district is not None else literal(None))
    rows = (await session.execute(
        select(R.id, R.kind, R.year, R.term_start, R.term_end, R.state, R.notice_start, R.notice_end,
               R.finalized_on, R.entered_by, R.entered_done_at, R.reported_by, R.reported_done_at, R.created_by,
               R.created_at, SINCE.label("since"), round_step.c.actor.label("since_by"),
               appraised.label("appraised"), in_district.label("appraised_in_district"))
        .select_from(joined).where(*page_where)
        .order_by(column.desc() if descending else column, R.id.desc() if descending else R.id)
        .limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = [{
        "id": r.id, "kind": r.kind, "year": r.year, "term_start": r.term_start, "term_end": r.term_end,
        "period": period_label(r), "state": r.state, "state_label": rules.STATE_ZH[r.state],
        "since": r.since, "since_by": r.since_by,
        "pending": pending_view(rules.pending_step(r.state, notice_end=r.notice_end,
                                                   entered_done=r.entered_done_at is not None,
                                                   reported_done=r.reported_done_at is not None)),
        "notice_start": r.notice_start, "notice_end": r.notice_end, "finalized_on": r.finalized_on,
        "entered_by": r.entered_by, "reported_by": r.reported_by, "appraised": r.appraised,
        "appraised_in_district": r.appraised_in_district, "created_by": r.created_by, "created_at": r.created_at,
    } for r in rows]
    last = rows[-1] if more else None
    next_key = None if last is None else [last.created_at if column is R.created_at else last.since, last.id]
    return items, total or 0, next_key


# --- GET /deadlines ------------------------------------------------------------------------------


def deadline_compute(settings: AppraisalSettings) -> Compute:
    """The appraisal service's open deadlines (R29.1, R34.1(5), R34.1(6), R35.1) for `deadlines_router`."""

    async def compute(session: AsyncSession, query: DeadlineQuery) -> Sequence[Deadline]:
        return [*await _annual_rounds_due(session, settings, query), *await _term_rounds_due(session, query),
                *await _round_deadlines(session, query), *await _defence_windows(session, query)]

    return compute


async def _annual_rounds_due(session: AsyncSession, settings: AppraisalSettings,
                             query: DeadlineQuery) -> list[Deadline]:
    """R29.1: the annual round of a year whose appraisal is due (from its year end) that nobody opened yet."""
    opens = settings.annual_round_opens()
    years = {rules.appraisal_year(query.today, opens), rules.appraisal_year(query.horizon, opens)}
    years = {y for y in years if y >= 2024 and query.horizon >= date(y, *opens)}
    if not years:
        return []
    opened = set(await session.scalars(select(R.year).where(R.kind == "annual", R.year.in_(years))))
    return [Deadline(
        rule="R29.1", kind="annual_round_due", title=f"{year}年度考核应于年末或者翌年年初进行，尚未启动",
        subject_type="year", subject_id=str(year), roles=[rules.BUREAU],
        due_on=rules.annual_round_due_by(year, settings.annual_round_due_by()))
        for year in sorted(years - opened)]


async def _term_rounds_due(session: AsyncSession, query: DeadlineQuery) -> list[Deadline]:
    """R29.1: serving supervisors whose term ends by the horizon with no term round of that term (per district)."""
    s = supervisor.c
    round_of_term = exists().where(R.kind == "term", R.term_start == s.term_start, R.term_end == s.term_end)
    stmt = (select(s.term_start, s.term_end, s.district, func.count().label("people"))
            .where(s.status == "active", s.term_start.is_not(None), s.term_end <= query.horizon,
                   s.term_end >= query.today - timedelta(days=OVERDUE_LOOKBACK_DAYS), ~round_of_term)
            .group_by(s.term_start, s.term_end, s.district))
    if query.district is not None:
        stmt = stmt.where(s.district == query.district)
    return [Deadline(
        rule="R29.1", kind="term_round_due",
        title=f"{r.district or '未知区市'} {r.people} 名人民监督员的任期（{r.term_start.isoformat()}至"
              f"{r.term_end.isoformat()}）届满前应进行任期考核",
        subject_type="term", subject_id=f"{r.term_start.isoformat()}/{r.term_end.isoformat()}/{r.district or ''}",
        district=r.district, roles=[rules.BUREAU], due_on=r.term_end)
        for r in (await session.execute(stmt)).all()]


async def _round_deadlines(session: AsyncSession, query: DeadlineQuery) -> list[Deadline]:
    """R34.1(5): a round whose public notice is over waits to be finalized; R34.1(6): entry (5 wd), report (10 wd)."""
    oldest = query.today - timedelta(days=OVERDUE_LOOKBACK_DAYS)
    rows = (await session.execute(select(appraisal_round).where(or_(
        and_(R.state == "public_notice", R.notice_end.is_not(None), R.notice_end >= oldest),
        and_(R.state == "finalized", R.entered_done_at.is_(None), R.entered_by >= oldest),
        and_(R.state == "finalized", R.reported_done_at.is_(None), R.reported_by >= oldest))))).all()
    items = []
    for r in rows:
        label = period_label(r)
        if r.state == "public_notice":
            items.append(Deadline(
                rule="R34.1", kind="finalize_after_notice", title=f"{label}考核优秀名单公示期至"
                f"{r.notice_end.isoformat()}届满，期满后应确定考核结果", subject_type="round", subject_id=str(r.id),
                roles=[rules.BUREAU], due_on=rules.finalize_not_before(r.notice_end)))
            continue
        if r.entered_done_at is None:
            items.append(Deadline(
                rule="R34.1", kind="results_entry_due", title=f"{label}考核结果应在确定后 5 个工作日内录入系统",
                subject_type="round", subject_id=str(r.id), roles=[rules.BUREAU], due_on=r.entered_by))
        if r.reported_done_at is None:
            items.append(Deadline(
                rule="R34.1", kind="results_report_due", title=f"{label}考核结果应在确定后 10 个工作日内上报省司法厅",
                subject_type="round", subject_id=str(r.id), roles=[rules.BUREAU], due_on=r.reported_by))
    return items


async def _defence_windows(session: AsyncSession, query: DeadlineQuery) -> list[Deadline]:
    """R35.1: open statement/defence windows (告知书 sent, no final statement, last day not over): the supervisor
    may state and defend until then; the bureau decides only after."""
    stmt = (select(P.round_id, P.supervisor_id, P.district, P.defence_window_end, supervisor.c.name,
                   R.kind, R.year, R.term_start, R.term_end)
            .select_from(participant.join(appraisal_round, R.id == P.round_id)
                         .outerjoin(supervisor, supervisor.c.id == P.supervisor_id))
            .where(P.defence_sent_on.is_not(None), P.defence_window_end.is_not(None), ~P.statement_final,
                   P.defence_window_end >= query.today, P.defence_window_end <= query.horizon))
    if query.district is not None:
        stmt = stmt.where(P.district == query.district)
    return [Deadline(
        rule="R35.1", kind="defence_window_ends",
        title=f"{period_label(r)}考核拟定不合格告知书的陈述申辩期至{r.defence_window_end.isoformat()}届满",
        subject_type="participant", subject_id=f"{r.round_id}/{r.supervisor_id}", district=r.district,
        roles=[rules.SUPERVISOR, rules.BUREAU], due_on=r.defence_window_end)
        for r in (await session.execute(stmt)).all()]


# --- statistics: results per year by grade and district ------------------------------------------


async def result_statistics(session: AsyncSession, *, year: int | None, kind: str,
                            district: str | None) -> dict:
    """R30.1/R37.1: finalized results (current version) per year, grade and district, counted in SQL."""
    period_year = R.year if kind == "annual" else extract("year", R.term_end)
    stmt = (select(period_year.label("year"), P.district, P.final_grade, func.count().label("people"))
            .select_from(participant.join(appraisal_round, R.id == P.round_id))
            .where(R.kind == kind, R.state == "finalized", P.final_grade.is_not(None))
            .group_by(period_year, P.district, P.final_grade)
            .order_by(period_year, P.district, P.final_grade))
    if year is not None:
        stmt = stmt.where(period_year == year)
    if district is not None:
        stmt = stmt.where(P.district == district)
    rows = (await session.execute(stmt)).all()
    by_grade = dict.fromkeys(rules.GRADES, 0)
    by_year: dict[int, dict[str, int]] = {}
    by_district: dict[str | None, dict[str, int]] = {}
    for r in rows:
        by_grade[r.final_grade] += r.people
        by_year.setdefault(int(r.year), dict.fromkeys(rules.GRADES, 0))[r.final_grade] += r.people
        by_district.setdefault(r.district, dict.fromkeys(rules.GRADES, 0))[r.final_grade] += r.people
    return {
        "year": year, "kind": kind, "district": district, "total": sum(by_grade.values()),
        "by_grade": [{"grade": g, "label": rules.GRADE_ZH[g], "count": by_grade[g]} for g in rules.GRADES],
        "by_year": [{"year": y, "total": sum(c.values()), "grades": c} for y, c in sorted(by_year.items())],
        "by_district": [{"district": d, "total": sum(c.values()), "grades": c}
                        for d, c in sorted(by_district.items(), key=lambda kv: kv[0] or "")],
        "rows": [{"year": int(r.year), "district": r.district, "grade": r.final_grade, "count": r.people}
                 for r in rows],
    }

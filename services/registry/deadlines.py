"""The registry's deadlines for `GET /deadlines` (shared/deadlines.py): what the bureau must act on, by rule.

Rules of RULES.md that give the registry a date:
- R4.1  a term ends (5 years, `term_end` is its last day): the bureau prepares the end or a new selection;
- R22.1 initial training and its exam within two months of the appointment decision (`initial_training_due`);
- R21.1 term training once per term: due by the term's last day for those who have not attended it;
- R23.1 one centralized training each year of the term: due by 31 December (or the term's earlier end).
R6.1 (a change reported within a month) binds the supervisor, and the registry learns of a change only when it is
reported; R8.1/R9.1 (dismissal, notices) and R22.2 (make-up) set no date: their open cases are the lists
`GET /change-reports?status=pending`, `GET /dismissals?status=pending`, `GET /training/makeup-needed`.
"""

from collections.abc import Sequence
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.models import supervisor
from services.registry.rules import Status
from services.registry.training import service as training
from shared.auth import Role
from shared.deadlines import Deadline, DeadlineQuery

BUREAU = [Role.BUREAU_ADMIN.value]
BUREAU_AND_DISTRICT = [Role.BUREAU_ADMIN.value, Role.DISTRICT_BUREAU.value]
# the registry's to-do items name supervisors: staff and the platform read them, not the procuratorate or finance
READERS = (Role.BUREAU_ADMIN, Role.DISTRICT_BUREAU, Role.AUDITOR, Role.SERVICE)


def _zh(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


async def compute(session: AsyncSession, query: DeadlineQuery) -> Sequence[Deadline]:
    """Every open registry item due on or before `query.horizon` (overdue ones included)."""
    c = supervisor.c
    scope = [c.status == Status.ACTIVE]
    if query.district is not None:
        scope.append(c.district == query.district)
    items: list[Deadline] = []

    def item(rule: str, kind: str, title: str, row, due_on: date, roles: list[str]) -> Deadline:
        return Deadline(rule=rule, kind=kind, title=title, subject_type="supervisor", subject_id=str(row.id),
                        district=row.district, roles=roles, due_on=due_on)

    columns = (c.id, c.name, c.district)
    # R4.1: the term's last day
    for row in (await session.execute(select(*columns, c.term_end).where(*scope, c.term_end <= query.horizon))):
        items.append(item("R4.1", "term_end", f"{row.name}的任期于{_zh(row.term_end)}届满", row, row.term_end,
                          BUREAU_AND_DISTRICT))
    # R22.1: initial training and exam within two months of the decision
    for row in (await session.execute(select(*columns, c.initial_training_due).where(
            *scope, c.initial_passed_on.is_(None), c.initial_training_due <= query.horizon))):
        items.append(item("R22.1", "initial_training_due",
                          f"{row.name}应于{_zh(row.initial_training_due)}前完成初任培训并通过考试", row,
                          row.initial_training_due, BUREAU))
    # R21.1: term training once per term, by the term's last day
    for row in (await session.execute(select(*columns, c.term_end).where(
            *scope, *training.term_training_pending_conditions(), c.term_end <= query.horizon))):
        items.append(item("R21.1", "term_training_due",
                          f"{row.name}本届任期尚未参加任期培训（{_zh(row.term_end)}届满）", row, row.term_end, BUREAU))
    # R23.1: a centralized training this year, by 31 December or the term's earlier end
    year = query.today.year
    due = func.least(c.term_end, date(year, 12, 31))
    for row in (await session.execute(select(*columns, due.label("due_on")).where(
            *scope, *training.annual_absentee_conditions(year), due <= query.horizon))):
        items.append(item("R23.1", "annual_training_due", f"{row.name}{year}年度尚未参加集中培训", row, row.due_on,
                          BUREAU))
    return items

"""Training use cases (R21.1–R24.1): sessions, attendance and exams, the lists of who is due."""

import uuid
from datetime import date
from typing import Any

from sqlalchemy import and_, exists, func, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry import rules
from services.registry.models import supervisor, training_record, training_session
from services.registry.roster.service import get, page_of, problem, sync_eligibility
from services.registry.rules import RuleViolation, Status
from services.registry.schemas import TrainingResult, TrainingSessionCreate
from shared.errors import Conflict, NotFound, Unprocessable
from shared.events.contracts import TrainingRecorded
from shared.events.outbox import Outbox


async def create_session(session: AsyncSession, *, data: TrainingSessionCreate, actor: str,
                         session_id: uuid.UUID | None = None) -> RowMapping:
    session_id = session_id or uuid.uuid4()
    await session.execute(insert(training_session).values(
        id=session_id, kind=data.kind, format=data.format, title=data.title, held_on=data.held_on,
        hours=data.hours, created_by=actor))
    return await get_session_row(session, session_id)


async def get_session_row(session: AsyncSession, session_id: uuid.UUID) -> RowMapping:
    row = (await session.execute(select(training_session).where(training_session.c.id == session_id))
           ).mappings().first()
    if row is None:
        raise NotFound("培训班次", session_id)
    return row


async def session_records(session: AsyncSession, session_id: uuid.UUID, *, district: str | None,
                          ) -> list[RowMapping]:
    """Who was recorded on a session, by name (a district bureau: its district's people only, R2.1)."""
    stmt = (select(training_record.c.supervisor_id, supervisor.c.name, supervisor.c.district,
                   training_record.c.attended, training_record.c.exam_passed, training_record.c.recorded_by)
            .join(supervisor, supervisor.c.id == training_record.c.supervisor_id)
            .where(training_record.c.session_id == session_id).order_by(supervisor.c.name, supervisor.c.id))
    if district:
        stmt = stmt.where(supervisor.c.district == district)
    return list((await session.execute(stmt)).mappings().all())


async def attempts_of(session: AsyncSession, supervisor_id: uuid.UUID) -> list[rules.Attempt]:
    rows = (await session.execute(
        select(training_session.c.kind, training_record.c.attended, training_record.c.exam_passed)
        .join(training_session, training_session.c.id == training_record.c.session_id)
        .where(training_record.c.supervisor_id == supervisor_id))).all()
    return [rules.Attempt(k, a, p) for k, a, p in rows]


async def term_sessions_attended(session: AsyncSession, row: RowMapping) -> int:
    """R21.1: term-training sessions the supervisor attended within the current term."""
    if row["term_start"] is None:
        return 0
    return int(await session.scalar(
        select(func.count()).select_from(training_record)
        .join(training_session, training_session.c.id == training_record.c.session_id)
        .where(training_record.c.supervisor_id == row["id"], training_record.c.attended.is_(True),
               training_session.c.kind == rules.TrainingKind.TERM,
               training_session.c.held_on.between(row["term_start"], row["term_end"]))) or 0)


async def record_results(session: AsyncSession, *, outbox: Outbox, session_id: uuid.UUID,
                         results: list[TrainingResult], actor: str) -> int:
    """Attendance and exam per supervisor → `TrainingRecorded`; a passed initial/make-up exam can make eligible."""
    course = await get_session_row(session, session_id)
    for result in results:
        row = await get(session, result.supervisor_id, for_update=True)
        try:
            rules.check_transition("记录培训", row["status"], {Status.ACTIVE})
            rules.check_attempt_kind(course["kind"], await attempts_of(session, result.supervisor_id))
            if result.attended:
                rules.check_term_training(
                    course["kind"], course["held_on"], term_start=row["term_start"], term_end=row["term_end"],
                    attended_term_sessions=await term_sessions_attended(session, row))
        except RuleViolation as v:
            raise problem(v) from v
        if not result.attended and result.exam_passed:
            raise Unprocessable("invalid_training_result", "培训结果矛盾", "未参加培训的人员不能记为考试通过。")
        if await session.scalar(select(exists().where(training_record.c.session_id == session_id,
                                                      training_record.c.supervisor_id == result.supervisor_id))):
            raise Conflict("duplicate_training_record", "培训记录已存在", "该人员在本班次的培训结果已记录。")
        await session.execute(insert(training_record).values(
            session_id=session_id, supervisor_id=result.supervisor_id, attended=result.attended,
            exam_passed=result.exam_passed, recorded_by=actor))
        await outbox.add(session, TrainingRecorded(
            supervisor_id=result.supervisor_id, session_id=session_id, kind=course["kind"], format=course["format"],
            date=course["held_on"], hours=float(course["hours"]), attended=result.attended,
            exam_passed=result.exam_passed, centralized=rules.counts_as_centralized(course["kind"], course["format"])))
        if rules.passes_initial(course["kind"], result.attended, result.exam_passed) and not row["initial_passed_on"]:
            await session.execute(update(supervisor).where(supervisor.c.id == result.supervisor_id).values(
                initial_passed_on=course["held_on"], updated_at=func.now()))
            await sync_eligibility(session, outbox=outbox, supervisor_id=result.supervisor_id)
    return len(results)


async def training_of(session: AsyncSession, supervisor_id: uuid.UUID) -> list[RowMapping]:
    return list((await session.execute(
        select(training_record.c.session_id, training_record.c.supervisor_id, training_session.c.kind,
               training_session.c.format, training_session.c.held_on, training_session.c.hours,
               training_record.c.attended, training_record.c.exam_passed)
        .join(training_session, training_session.c.id == training_record.c.session_id)
        .where(training_record.c.supervisor_id == supervisor_id).order_by(training_session.c.held_on)
    )).mappings().all())


DUE_COLUMNS = (supervisor.c.id, supervisor.c.name, supervisor.c.district, supervisor.c.decision_date,
               supervisor.c.initial_training_due)


def overdue_conditions(on: date) -> list[Any]:
    """R22.1: active appointees without a passed initial/make-up exam whose two months have run out."""
    c = supervisor.c
    return [c.status == Status.ACTIVE, c.initial_passed_on.is_(None), c.initial_training_due < on]


def makeup_conditions() -> list[Any]:
    """R22.2: active, not yet passed, and an initial/make-up attempt missed or failed."""
    c = supervisor.c
    failed = exists().where(
        training_record.c.supervisor_id == c.id, training_session.c.id == training_record.c.session_id,
        training_session.c.kind.in_(["initial", "makeup"]),
        or_(training_record.c.attended.is_(False), training_record.c.exam_passed.is_(False)))
    return [c.status == Status.ACTIVE, c.initial_passed_on.is_(None), failed]


def annual_absentee_conditions(year: int) -> list[Any]:
    """R23.1: active supervisors serving in `year` who attended no centralized training that year (a session of
    the annual or term kind, not online: `rules.counts_as_centralized`)."""
    c = supervisor.c
    attended = exists().where(
        training_record.c.supervisor_id == c.id, training_session.c.id == training_record.c.session_id,
        training_record.c.attended.is_(True),
        training_session.c.kind.in_(sorted(rules.CENTRALIZED_KINDS)),
        training_session.c.format.in_(sorted(rules.CENTRALIZED_FORMATS)),
        and_(training_session.c.held_on >= date(year, 1, 1), training_session.c.held_on <= date(year, 12, 31)))
    return [c.status == Status.ACTIVE, c.term_start <= date(year, 12, 31), c.term_end >= date(year, 1, 1), ~attended]


def term_training_pending_conditions() -> list[Any]:
    """R21.1: active supervisors who have not yet attended the term training of their current term."""
    c = supervisor.c
    attended = exists().where(
        training_record.c.supervisor_id == c.id, training_session.c.id == training_record.c.session_id,
        training_record.c.attended.is_(True), training_session.c.kind == rules.TrainingKind.TERM,
        training_session.c.held_on >= c.term_start, training_session.c.held_on <= c.term_end)
    return [c.status == Status.ACTIVE, ~attended]



async def sessions(session: AsyncSession, *, year: int | None, limit: int, offset: int,
                   ) -> tuple[list[RowMapping], int]:
    c = training_session.c
    where: list[Any] = []
    if year:
        where += [c.held_on >= date(year, 1, 1), c.held_on <= date(year, 12, 31)]
    return await page_of(session, training_session, where, (c.held_on.desc(), c.id), limit=limit, offset=offset)

"""Appointment use cases: R4.1 (term, term end job), R5.1 (numbers), N-TERM, N-BAN, N-EXCL at appointment."""

import hashlib
import uuid
from datetime import date

from fastapi import FastAPI
from sqlalchemy import exists, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry import rules
from services.registry.config import RegistrySettings
from services.registry.models import appointment, ban, number_counter, platform, supervisor
from services.registry.roster.service import compute_eligibility, get, problem, sync_eligibility, today
from services.registry.rules import RuleViolation, Status
from services.registry.schemas import AppointmentCreate
from shared import audit
from shared.errors import Conflict
from shared.events.contracts import SupervisorAppointed
from shared.events.outbox import Outbox

TERM_END_JOB_ACTOR = "registry:term-end-job"
# pg_try_advisory_xact_lock key of the term-end job (one replica at a time)
TERM_END_LOCK = int.from_bytes(hashlib.sha256(b"registry.term-end-job").digest()[:8], "big", signed=True)


async def next_number(session: AsyncSession, kind: str, year: int) -> int:
    """Per-year counter: the upsert locks the row until commit, so numbers are never handed out twice."""
    stmt = pg_insert(number_counter).values(kind=kind, year=year, last=1)
    stmt = stmt.on_conflict_do_update(index_elements=["kind", "year"], set_={"last": number_counter.c.last + 1})
    return int(await session.scalar(stmt.returning(number_counter.c.last)))


async def issue_number(session: AsyncSession, settings: RegistrySettings, kind: str, year: int) -> str:
    column = appointment.c.certificate_no if kind == "certificate" else appointment.c.work_card_no
    prefix = settings.certificate_prefix if kind == "certificate" else settings.work_card_prefix
    while True:  # skip numbers an official already typed by hand
        number = rules.format_number(prefix, year, await next_number(session, kind, year), style=kind)
        if not await session.scalar(select(exists().where(column == number))):
            return number


async def appoint(session: AsyncSession, *, outbox: Outbox, settings: RegistrySettings,
                  supervisor_id: uuid.UUID, data: AppointmentCreate, actor: str, on: date | None = None,
                  ) -> RowMapping:
    """R4.1: decision no./date, 5-year term; R5.1 certificate and work card; refuses N-BAN and N-TERM."""
    on = on or today()
    row = await get(session, supervisor_id, for_update=True)
    start = data.term_start or data.decision_date
    end = rules.term_end(start)
    level = data.level or settings.procuratorate_level
    try:
        # N-BAN: only the permanent grounds ban (the `ban` table, by the person's id hash); resigned or
        # dismissed on grounds 2-3 may be appointed again by a later selection
        rules.check_not_banned(bool(await session.scalar(
            select(exists().where(ban.c.person_hash == row["id_number_hash"])))))
        rules.check_not_excluded(row["excluded_ground"])
        rules.check_transition("任命", row["status"], rules.APPOINTABLE)
        history = await terms_of(session, row["id_number_hash"])
        rules.check_one_level(history, level, start, end)
        rules.check_new_term_start(history, start)
        rules.check_term_limit(history, start, gap_days=settings.n_term_gap_days)
    except RuleViolation as v:
        raise problem(v) from v
    for given, column, code, what in (
        (data.certificate_no, appointment.c.certificate_no, "duplicate_certificate_no", "证书编号"),
        (data.work_card_no, appointment.c.work_card_no, "duplicate_work_card_no", "工作证编号"),
    ):
        if given and await session.scalar(select(exists().where(column == given))):
            raise Conflict(code, f"{what}已被使用", f"依据规则 R5.1，{what}“{given}”已发放给他人，不能重复。")
    year = data.decision_date.year
    cert = data.certificate_no or await issue_number(session, settings, "certificate", year)
    card = data.work_card_no or await issue_number(session, settings, "work_card", year)
    await session.execute(insert(appointment).values(
        id=uuid.uuid4(), supervisor_id=supervisor_id, person_hash=row["id_number_hash"],
        decision_no=data.decision_no, decision_date=data.decision_date, term_start=start, term_end=end,
        certificate_no=cert, work_card_no=card, appointed_by=actor, level=level,
    ))
    due = None if row["initial_passed_on"] else rules.initial_training_due(data.decision_date)
    await session.execute(update(supervisor).where(supervisor.c.id == supervisor_id).values(
        status=Status.ACTIVE, decision_no=data.decision_no, decision_date=data.decision_date, term_start=start,
        term_end=end, certificate_no=cert, work_card_no=card, initial_training_due=due, updated_at=func.now(),
    ))
    fresh = await get(session, supervisor_id)
    eligible, _ = compute_eligibility(fresh, on)
    await outbox.add(session, SupervisorAppointed(
        supervisor_id=supervisor_id, name=fresh["name"], gender=fresh["gender"], district=fresh["district"],
        specialties=list(fresh["specialties"]), employer=fresh["employer"],
        recommending_body=fresh["recommending_body"], term_start=start, term_end=end, certificate_no=cert,
        work_card_no=card, eligible=eligible,
    ))
    await sync_eligibility(session, outbox=outbox, supervisor_id=supervisor_id, on=on)
    await audit.append(session, platform.audit, actor=actor, action="supervisor.appoint",
                       subject=f"supervisor:{supervisor_id}",
                       details={"decision_no": data.decision_no, "certificate_no": cert, "work_card_no": card})
    return await get(session, supervisor_id)


async def terms_of(session: AsyncSession, person_hash: str) -> list[rules.Term]:
    """N-TERM / N-BAN: the person's terms (by id hash), each with its effective end (an early end counts)."""
    a = appointment.c
    rows = (await session.execute(select(a.term_start, func.coalesce(a.ended_on, a.term_end), a.level)
                                  .where(a.person_hash == person_hash))).all()
    return [rules.Term(start, end, level) for start, end, level in rows]


async def end_current_term(session: AsyncSession, *, supervisor_id: uuid.UUID, on: date, reason: str,
                           term_start: date | None = None) -> None:
    """Record how the supervisor's open term ended (early: resigned/dismissed on `on`; at its end: term_ended)."""
    a = appointment.c
    where = [a.supervisor_id == supervisor_id, a.ended_on.is_(None)]
    if term_start is not None:
        where.append(a.term_start == term_start)
    await session.execute(update(appointment).where(*where).values(
        ended_on=func.least(a.term_end, on), end_reason=reason))


async def appointments_of(session: AsyncSession, supervisor_id: uuid.UUID) -> list[RowMapping]:
    return list((await session.execute(select(appointment).where(appointment.c.supervisor_id == supervisor_id)
                                       .order_by(appointment.c.term_start))).mappings().all())



async def end_terms(session: AsyncSession, *, outbox: Outbox, actor: str, on: date | None = None) -> int:
    """Active supervisors whose term ended before `on` become `term_ended` (R4.1) and leave the pool (R22.3)."""
    on = on or today()
    ended = (await session.execute(
        update(supervisor).where(supervisor.c.status == Status.ACTIVE, supervisor.c.term_end < on)
        .values(status=Status.TERM_ENDED, updated_at=func.now()).returning(supervisor.c.id))).scalars().all()
    for supervisor_id in ended:
        await end_current_term(session, supervisor_id=supervisor_id, on=on, reason="term_ended")
        await sync_eligibility(session, outbox=outbox, supervisor_id=supervisor_id, on=on)
    if ended:
        await audit.append(session, platform.audit, actor=actor, action="supervisor.end_terms",
                           subject="supervisors", details={"count": len(ended), "on": on.isoformat()})
    return len(ended)


async def term_end_job(app: FastAPI) -> int:
    """R4.1: the service ends expired terms by itself (PeriodicJob), publishing EligibilityChanged(term_ended).

    Safe with several replicas: the run takes a transaction advisory lock (a replica that does not get it skips
    this round), and it is idempotent per row (only `active` rows past their end change, once).
    """
    async with app.state.db.transaction() as session:
        if not await session.scalar(select(func.pg_try_advisory_xact_lock(TERM_END_LOCK))):
            return 0
        return await end_terms(session, outbox=app.state.outbox, actor=TERM_END_JOB_ACTOR)

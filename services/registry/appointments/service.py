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
from shared.events.contracts import SupervisorAppointed
from shared.events.outbox import Outbox

TERM_END_JOB_ACTOR = "registry:term-end-job"
# pg_try_advisory_xact_lock key of the term-end job (one replica at a time)
TERM_END_LOCK = int.from_bytes(hashlib.sha256(b"registry.term-end-job").digest()[:8], "big", signed=True)


NUMBER_COLUMNS = {"certificate": appointment.c.certificate_no, "work_card": appointment.c.work_card_no}


async def issue_numbers(session: AsyncSession, settings: RegistrySettings, kind: str, year: int, count: int, *,
                        taken: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """R5.1: `count` new numbers of a kind and year from the per-year counter, skipping those already issued
    (typed by hand) and those in `taken` (typed in the same import). The counter's upsert locks its row until
    commit, so a number is never handed out twice."""
    column = NUMBER_COLUMNS[kind]
    prefix = settings.certificate_prefix if kind == "certificate" else settings.work_card_prefix
    out: list[str] = []
    while len(out) < count:
        need = count - len(out)
        stmt = pg_insert(number_counter).values(kind=kind, year=year, last=need)
        stmt = stmt.on_conflict_do_update(index_elements=["kind", "year"],
                                          set_={"last": number_counter.c.last + stmt.excluded.last})
        last = int(await session.scalar(stmt.returning(number_counter.c.last)))
        numbers = [rules.format_number(prefix, year, seq, style=kind) for seq in range(last - need + 1, last + 1)]
        used = set((await session.scalars(select(column).where(column.in_(numbers)))).all())
        out += [n for n in numbers if n not in used and n not in taken]
    return out


async def numbers_used(session: AsyncSession, kind: str, numbers: list[str]) -> set[str]:
    """R5.1: which of these numbers typed by hand are already issued."""
    if not numbers:
        return set()
    column = NUMBER_COLUMNS[kind]
    return set((await session.scalars(select(column).where(column.in_(numbers)))).all())


def appointed_state(record: RowMapping | dict, data: AppointmentCreate, *, start: date, end: date, cert: str,
                    card: str) -> dict:
    """The person's row after an appointment: active, the decision, the term (R4.1), the numbers (R5.1), the
    initial training due within two months of the decision unless already passed (R22.1)."""
    due = None if record["initial_passed_on"] else rules.initial_training_due(data.decision_date)
    return {"status": Status.ACTIVE, "decision_no": data.decision_no, "decision_date": data.decision_date,
            "term_start": start, "term_end": end, "certificate_no": cert, "work_card_no": card,
            "initial_training_due": due}


def appointment_row(record: RowMapping | dict, data: AppointmentCreate, *, start: date, end: date, level: str,
                    cert: str, card: str, actor: str) -> dict:
    """The `appointment` row of one term (N-TERM: keyed to the person's id hash too)."""
    return {"id": uuid.uuid4(), "supervisor_id": record["id"], "person_hash": record["id_number_hash"],
            "decision_no": data.decision_no, "decision_date": data.decision_date, "term_start": start,
            "term_end": end, "certificate_no": cert, "work_card_no": card, "appointed_by": actor, "level": level}


def appointed_event(record: RowMapping | dict, *, eligible: bool) -> SupervisorAppointed:
    """R4.1, R5.1: `SupervisorAppointed` of a record in its appointed state."""
    return SupervisorAppointed(
        supervisor_id=record["id"], name=record["name"], gender=record["gender"], district=record["district"],
        specialties=list(record["specialties"]), employer=record["employer"],
        recommending_body=record["recommending_body"], term_start=record["term_start"],
        term_end=record["term_end"], certificate_no=record["certificate_no"], work_card_no=record["work_card_no"],
        eligible=eligible)


def appoint_entry(supervisor_id: uuid.UUID, data: AppointmentCreate, *, cert: str, card: str,
                  actor: str) -> audit.Entry:
    return audit.Entry(actor, "supervisor.appoint", f"supervisor:{supervisor_id}",
                       {"decision_no": data.decision_no, "certificate_no": cert, "work_card_no": card})


def check_appointment(settings: RegistrySettings, record: RowMapping | dict, data: AppointmentCreate, *,
                      history: list[rules.Term], banned: bool, used: dict[str, set[str]]) -> tuple[date, date, str]:
    """Every rule of one appointment (`rules.check_appointment`, then R5.1's numbers typed by hand against
    `used`): (term start, term end, level), or the RuleViolation."""
    start = data.term_start or data.decision_date
    level = data.level or settings.procuratorate_level
    end = rules.check_appointment(history=history, status=record["status"], banned=banned,
                                  excluded_ground=record["excluded_ground"], start=start, level=level,
                                  gap_days=settings.n_term_gap_days)
    for kind, given in (("certificate", data.certificate_no), ("work_card", data.work_card_no)):
        if given:
            rules.check_number_unused(kind, given, given in used[kind])
    return start, end, level


async def appoint(session: AsyncSession, *, outbox: Outbox, settings: RegistrySettings,
                  supervisor_id: uuid.UUID, data: AppointmentCreate, actor: str, on: date | None = None,
                  ) -> RowMapping:
    """R4.1: decision no./date, 5-year term; R5.1 certificate and work card; refuses N-BAN, N-EXCL and N-TERM."""
    on = on or today()
    row = await get(session, supervisor_id, for_update=True)
    # N-BAN: only the permanent grounds ban (the `ban` table, by the person's id hash); resigned or
    # dismissed on grounds 2-3 may be appointed again by a later selection
    banned = bool(await session.scalar(select(exists().where(ban.c.person_hash == row["id_number_hash"]))))
    used = {kind: await numbers_used(session, kind, [n] if n else [])
            for kind, n in (("certificate", data.certificate_no), ("work_card", data.work_card_no))}
    history = await terms_of(session, row["id_number_hash"])
    try:
        start, end, level = check_appointment(settings, row, data, history=history, banned=banned, used=used)
    except RuleViolation as v:
        raise problem(v) from v
    year = data.decision_date.year
    cert = data.certificate_no or (await issue_numbers(session, settings, "certificate", year, 1))[0]
    card = data.work_card_no or (await issue_numbers(session, settings, "work_card", year, 1))[0]
    await session.execute(insert(appointment).values(
        **appointment_row(row, data, start=start, end=end, level=level, cert=cert, card=card, actor=actor)))
    await session.execute(update(supervisor).where(supervisor.c.id == supervisor_id).values(
        **appointed_state(row, data, start=start, end=end, cert=cert, card=card), updated_at=func.now()))
    fresh = await get(session, supervisor_id)
    eligible, _ = compute_eligibility(fresh, on)
    await outbox.add(session, appointed_event(fresh, eligible=eligible))
    await sync_eligibility(session, outbox=outbox, supervisor_id=supervisor_id, on=on)
    await audit.append_many(session, platform.audit, [appoint_entry(supervisor_id, data, cert=cert, card=card,
                                                                    actor=actor)])
    return await get(session, supervisor_id)


async def terms_of(session: AsyncSession, person_hash: str) -> list[rules.Term]:
    """N-TERM / N-BAN: the person's terms (by id hash), each with its effective end (an early end counts)."""
    return (await terms_of_many(session, [person_hash])).get(person_hash, [])


async def terms_of_many(session: AsyncSession, person_hashes: list[str]) -> dict[str, list[rules.Term]]:
    """`terms_of` of many people in one query: id hash -> terms (people without a term are not keys)."""
    a = appointment.c
    out: dict[str, list[rules.Term]] = {}
    if person_hashes:
        rows = (await session.execute(select(a.person_hash, a.term_start, func.coalesce(a.ended_on, a.term_end),
                                             a.level).where(a.person_hash.in_(person_hashes)))).all()
        for person, start, end, level in rows:
            out.setdefault(person, []).append(rules.Term(start, end, level))
    return out


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

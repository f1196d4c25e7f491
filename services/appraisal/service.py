"""Use cases of the appraisal rounds (R29.1–R39.1). The caller owns the transaction: nothing here commits.

No round can reach a state it cannot leave (R30.1): every state before `finalized` but the first can be sent
back one step with a reason, a grade can be corrected with a reason before finalizing, and a finalized result
is corrected by a recorded new version (published as a corrected `AppraisalFinalized`, the old one kept).
"""

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.appraisal import ledger, rules
from services.appraisal.config import AppraisalSettings
from services.appraisal.models import (
    appraisal_round,
    district_consultation,
    notice,
    participant,
    platform,
    result,
    round_history,
    round_step,
    supervisor,
)
from services.appraisal.papers import jsonable, take_number
from shared import audit, clock
from shared.calendar import WorkingCalendar
from shared.errors import Conflict, NotFound, ProblemError, Unprocessable
from shared.events.contracts import AppraisalFinalized, CommendationIssued, DefenceNoticeSent
from shared.events.outbox import Outbox

R = appraisal_round.c
P = participant.c


def now() -> datetime:
    """Legal timestamps come from the server's clock."""
    return clock.now()


def today() -> date:
    """Dates of the rules are dates in Asia/Shanghai, from the server's clock."""
    return clock.today()


def refuse(exc: rules.RuleViolation) -> ProblemError:
    """A rule refusal as the client sees it: 409 with the rule id as code."""
    return Conflict(exc.code, exc.title, exc.detail)


async def _audit(session: AsyncSession, *, actor: str, action: str, subject: object, **details: Any) -> None:
    await audit.append(session, platform.audit, actor=actor, action=action, subject=str(subject), details=details)


async def _history(session: AsyncSession, rnd, *, actor: str, action: str, to_state: str | None = None,
                   supervisor_id: uuid.UUID | None = None, reason: str | None = None, **details: Any) -> None:
    """R34.1: every move of the round and every correction, with who, when and why (kept for good)."""
    await session.execute(round_history.insert().values(
        round_id=rnd.id, supervisor_id=supervisor_id, action=action, from_state=rnd.state, to_state=to_state,
        reason=reason, details=details, actor=actor, at=now()))


def period_label(row) -> str:
    if row.kind == "annual":
        return f"{row.year}年度"
    return f"{rules.date_zh(row.term_start)}至{rules.date_zh(row.term_end)}任期"


def period_code(row) -> str:
    """AppraisalFinalized.period: the year, or 'start–end' of the term."""
    return str(row.year) if row.kind == "annual" else f"{row.term_start.isoformat()}–{row.term_end.isoformat()}"


def period_bounds(row) -> tuple[date, date]:
    if row.kind == "annual":
        return date(row.year, 1, 1), date(row.year, 12, 31)
    return row.term_start, row.term_end


async def supported_grounds(session: AsyncSession, rnd, supervisor_id: uuid.UUID,
                            graded_on: date) -> dict[int, tuple[date, date]]:
    """R32.1: grounds reminded within the period before `graded_on`, with the conduct on record after."""
    start, end = period_bounds(rnd)
    reminders, conduct = await ledger.conduct_dates(session, supervisor_id, since=start, until=end)
    return rules.supported_grounds(reminders, conduct, start=start, end=end, graded_on=graded_on)


async def _name(session: AsyncSession, supervisor_id: uuid.UUID) -> str:
    name = await session.scalar(select(supervisor.c.name).where(supervisor.c.id == supervisor_id))
    return name or str(supervisor_id)


# --- rounds --------------------------------------------------------------------------------------


async def open_round(session: AsyncSession, settings: AppraisalSettings, *, actor: str, kind: str, year: int | None,
                     term_start: date | None, term_end: date | None,
                     supervisor_ids: Sequence[uuid.UUID] | None) -> uuid.UUID:
    """R29.1: open an annual (year, from its year end) or term round (once the annual rounds of the term are
    finalized); the appraised are the listed people or every active one."""
    if kind == "annual" and year is None:
        raise Unprocessable("period_required", "缺少考核年度", "年度考核须指定年度。")
    if kind == "term" and (term_start is None or term_end is None or term_start >= term_end):
        raise Unprocessable("period_required", "缺少任期", "任期考核须指定任期起止日期（起始早于结束）。")
    if kind == "annual":
        term_start = term_end = None
        try:
            rules.ensure_annual_round_due(year, today(), settings.annual_round_opens())
        except rules.RuleViolation as exc:
            raise refuse(exc) from exc
        if await session.scalar(select(R.id).where(R.kind == "annual", R.year == year)):
            raise Conflict("round_exists", "该年度考核已存在", f"{year}年度考核轮次已存在。")
    else:
        year = None
    query = select(supervisor.c.id, supervisor.c.district, supervisor.c.name)
    if supervisor_ids is not None:
        ids = list(dict.fromkeys(supervisor_ids))
        found = (await session.execute(query.where(supervisor.c.id.in_(ids)))).all()
        if len(found) != len(ids):
            missing = sorted(str(i) for i in set(ids) - {r.id for r in found})
            raise Unprocessable("unknown_supervisor", "人民监督员不存在",
                                f"未登记的人民监督员：{', '.join(missing[:5])}")
    else:
        found = (await session.execute(_serving(query, kind, year, term_start, term_end))).all()
    if kind == "term" and found:
        try:
            rules.ensure_term_annuals_finalized(await _pending_annuals(session, found, term_start, term_end))
        except rules.RuleViolation as exc:
            raise refuse(exc) from exc
    round_id = uuid.uuid4()
    await session.execute(appraisal_round.insert().values(id=round_id, kind=kind, year=year, term_start=term_start,
                                                          term_end=term_end, state="opened", created_by=actor))
    if found:
        await session.execute(participant.insert(), [
            {"round_id": round_id, "supervisor_id": r.id, "district": r.district} for r in found])
    await session.execute(round_step.insert().values(round_id=round_id, state="opened", actor=actor, at=now()))
    await _audit(session, actor=actor, action="round.opened", subject=f"round:{round_id}", kind=kind,
                 appraised=len(found))
    return round_id


async def _pending_annuals(session: AsyncSession, people: Sequence, term_start: date,
                           term_end: date) -> dict[str, list[int]]:
    """R29.1: per person, the years of the term whose annual round holds them and is not finalized yet."""
    labels = {p.id: p.name or str(p.id) for p in people}
    rows = await session.execute(select(P.supervisor_id, R.year).join(appraisal_round, R.id == P.round_id).where(
        R.kind == "annual", R.state != "finalized", R.year >= term_start.year, R.year <= term_end.year,
        P.supervisor_id.in_(list(labels))))
    pending: dict[str, list[int]] = {}
    for supervisor_id, year in rows:
        pending.setdefault(labels[supervisor_id], []).append(year)
    return pending


def _serving(query, kind: str, year: int | None, term_start: date | None, term_end: date | None):
    """Active supervisors whose term overlaps the year (annual) or who serve exactly this term (term)."""
    start, end = (date(year, 1, 1), date(year, 12, 31)) if kind == "annual" else (term_start, term_end)
    query = query.where(supervisor.c.status == "active",
                        or_(supervisor.c.term_start.is_(None), supervisor.c.term_start <= end),
                        or_(supervisor.c.term_end.is_(None), supervisor.c.term_end >= start))
    if kind == "term":
        query = query.where(supervisor.c.term_start == term_start, supervisor.c.term_end == term_end)
    return query


async def add_serving(session: AsyncSession, *, actor: str, round_id: uuid.UUID) -> int:
    """R29.1: while the round is open, add serving supervisors appointed (or projected) since it opened."""
    rnd = await get_round(session, round_id, lock=True)
    if rnd.state != "opened":
        raise Conflict("R34.1", "考核已开始", "依据规则 R34.1，个人总结阶段结束后不能再增加参加考核人员。")
    already = select(P.supervisor_id).where(P.round_id == round_id)
    query = _serving(select(supervisor.c.id, supervisor.c.district), rnd.kind, rnd.year, rnd.term_start,
                     rnd.term_end).where(supervisor.c.id.not_in(already))
    found = (await session.execute(query)).all()
    if found:
        await session.execute(participant.insert(), [
            {"round_id": round_id, "supervisor_id": r.id, "district": r.district} for r in found])
        await _audit(session, actor=actor, action="round.participants_added", subject=f"round:{round_id}",
                     added=len(found))
    return len(found)


async def get_round(session: AsyncSession, round_id: uuid.UUID, *, lock: bool = False, share: bool = False):
    """The round; `lock` for a step (FOR UPDATE), `share` for a per-person input (waits for a running step)."""
    query = select(appraisal_round).where(R.id == round_id)
    if lock or share:
        query = query.with_for_update(read=share and not lock)
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound("考核轮次", round_id)
    return row


async def steps(session: AsyncSession, round_id: uuid.UUID) -> Sequence:
    rows = (await session.execute(select(round_step).where(round_step.c.round_id == round_id))).all()
    return sorted(rows, key=lambda r: rules.STATES.index(r.state))


async def participants(session: AsyncSession, round_id: uuid.UUID, *, district: str | None = None) -> Sequence:
    query = (select(participant, supervisor.c.name).outerjoin(supervisor, supervisor.c.id == P.supervisor_id)
             .where(P.round_id == round_id).order_by(P.supervisor_id))
    if district is not None:
        query = query.where(P.district == district)
    return (await session.execute(query)).all()


async def get_participant(session: AsyncSession, round_id: uuid.UUID, supervisor_id: uuid.UUID, *,
                          lock: bool = False):
    query = select(participant).where(P.round_id == round_id, P.supervisor_id == supervisor_id)
    row = (await session.execute(query.with_for_update() if lock else query)).first()
    if row is None:
        raise NotFound("参加考核人员", f"{round_id}/{supervisor_id}")
    return row


async def _editable(session: AsyncSession, round_id: uuid.UUID, supervisor_id: uuid.UUID, what: str, *,
                    lock: bool = False):
    # share: the step cannot move while this input is written; lock: this input may move the step itself
    rnd = await get_round(session, round_id, share=not lock, lock=lock)
    try:
        rules.ensure_editable(rnd.state, what)
    except rules.RuleViolation as exc:
        raise refuse(exc) from exc
    return rnd, await get_participant(session, round_id, supervisor_id, lock=True)


async def _set(session: AsyncSession, round_id: uuid.UUID, supervisor_id: uuid.UUID, **values: Any) -> None:
    await session.execute(update(participant).where(P.round_id == round_id, P.supervisor_id == supervisor_id)
                          .values(**values))


# --- per-person inputs (R34.1(1)–(4), R32.1, R35.1, R36.1) ---------------------------------------


async def set_self_summary(session: AsyncSession, *, actor: str, round_id: uuid.UUID, supervisor_id: uuid.UUID,
                           text: str) -> None:
    """R34.1(1): the supervisor's self-summary."""
    await _editable(session, round_id, supervisor_id, "self_summary")
    await _set(session, round_id, supervisor_id, self_summary=text, self_summary_at=now())
    await _audit(session, actor=actor, action="self_summary.recorded", subject=f"round:{round_id}",
                 supervisor_id=str(supervisor_id))


async def set_opinion(session: AsyncSession, *, actor: str, round_id: uuid.UUID, supervisor_id: uuid.UUID,
                      source: str, text: str) -> None:
    """R34.1(2): the procuratorate's or the employer/community's opinion on the person."""
    await _editable(session, round_id, supervisor_id, "opinion")
    if source == "procuratorate":
        await _set(session, round_id, supervisor_id, procuratorate_opinion=text, procuratorate_opinion_by=actor)
    else:
        await _set(session, round_id, supervisor_id, community_opinion=text, community_opinion_by=actor)
    await _audit(session, actor=actor, action=f"opinion.{source}", subject=f"round:{round_id}",
                 supervisor_id=str(supervisor_id))


async def set_district_grade(session: AsyncSession, *, actor: str, district: str | None, round_id: uuid.UUID,
                             supervisor_id: uuid.UUID, grade: str) -> None:
    """R34.1(3): the district bureau's proposal (own district only, R2.1 — checked by the router)."""
    await _editable(session, round_id, supervisor_id, "district_grade")
    await _set(session, round_id, supervisor_id, district_grade=grade, district_by=actor, district_at=now())
    await _audit(session, actor=actor, action="grade.district_proposed", subject=f"round:{round_id}",
                 supervisor_id=str(supervisor_id), grade=grade)


async def annual_history(session: AsyncSession, supervisor_id: uuid.UUID, term_start: date,
                         term_end: date) -> list[str]:
    """R36.1: the person's finalized annual grades of the years of the term."""
    rows = await session.scalars(select(P.final_grade).join(appraisal_round, R.id == P.round_id).where(
        P.supervisor_id == supervisor_id, R.kind == "annual", R.state == "finalized",
        R.year >= term_start.year, R.year <= term_end.year, P.final_grade.is_not(None)))
    return list(rows)


async def past_results(session: AsyncSession, supervisor_id: uuid.UUID, before_year: int) -> list[dict]:
    """R34.1(2)1: the person's finalized annual results of earlier years (reviewed with the ledger)."""
    rows = await session.execute(select(R.year, P.final_grade).join(appraisal_round, R.id == P.round_id).where(
        P.supervisor_id == supervisor_id, R.kind == "annual", R.state == "finalized", R.year < before_year,
        P.final_grade.is_not(None)).order_by(R.year))
    return [{"year": y, "grade": g} for y, g in rows]


async def _checked_grade(session: AsyncSession, rnd, supervisor_id: uuid.UUID, grade: str, grounds: list[int],
                         criteria: dict | None) -> tuple[str, list[int], dict | None]:
    """R32.1 (unqualified), R36.1 (term), R31.1 (annual excellent): the grade as it may be recorded."""
    try:
        if grade == rules.UNQUALIFIED:
            rules.ensure_unqualified_grounds(grounds, await supported_grounds(session, rnd, supervisor_id, today()))
        else:
            grounds = []
        if rnd.kind == "term":
            history = await annual_history(session, supervisor_id, rnd.term_start, rnd.term_end)
            grade = rules.term_grade(grade, rules.term_standing(history))
    except rules.RuleViolation as exc:
        raise refuse(exc) from exc
    checklist = None
    if grade == rules.EXCELLENT and rnd.kind == "annual":
        try:
            checklist = rules.ensure_excellent_criteria(criteria)
        except rules.RuleViolation as exc:
            raise Unprocessable(exc.code, exc.title, exc.detail) from exc
    return grade, sorted(set(grounds)), checklist


async def set_bureau_grade(session: AsyncSession, *, actor: str, round_id: uuid.UUID, supervisor_id: uuid.UUID,
                           grade: str, grounds: list[int], criteria: dict | None = None) -> str:
    """R34.1(4): the bureau's proposed grade; R32.1 for unqualified, R36.1 in a term round, R31.1 for excellent."""
    rnd, _ = await _editable(session, round_id, supervisor_id, "bureau_grade")
    grade, grounds, checklist = await _checked_grade(session, rnd, supervisor_id, grade, grounds, criteria)
    await _set(session, round_id, supervisor_id, bureau_grade=grade, grounds=grounds, bureau_by=actor,
               bureau_at=now(), excellent_criteria=checklist)
    await _audit(session, actor=actor, action="grade.bureau_proposed", subject=f"round:{round_id}",
                 supervisor_id=str(supervisor_id), grade=grade, grounds=grounds)
    return grade


async def correct_grade(session: AsyncSession, *, actor: str, round_id: uuid.UUID, supervisor_id: uuid.UUID,
                        grade: str, grounds: list[int], criteria: dict | None, reason: str) -> str:
    """R30.1/R34.1: correct a proposed grade with a reason before finalizing; after step (4) the round goes back
    to the district proposals, so the bureau's proposal (4) and the public notice (5) are made again."""
    rnd, row = await _editable(session, round_id, supervisor_id, "grade_correction", lock=True)
    grade, grounds, checklist = await _checked_grade(session, rnd, supervisor_id, grade, grounds, criteria)
    await _set(session, round_id, supervisor_id, bureau_grade=grade, grounds=grounds, bureau_by=actor,
               bureau_at=now(), excellent_criteria=checklist)
    await _history(session, rnd, actor=actor, action="grade.corrected", supervisor_id=supervisor_id, reason=reason,
                   to_state=rnd.state, old_grade=row.bureau_grade, grade=grade, grounds=grounds)
    if rules.STATES.index(rnd.state) > rules.STATES.index(rules.CORRECTION_RESTARTS_AT):
        await _move_back(session, rnd, rules.CORRECTION_RESTARTS_AT, actor=actor, reason=f"更正等次：{reason}",
                         action="round.back_for_correction")
    await _audit(session, actor=actor, action="grade.corrected", subject=f"round:{round_id}",
                 supervisor_id=str(supervisor_id), grade=grade)
    return grade


async def cap_status(session: AsyncSession, rnd) -> rules.CapStatus:
    """R30.1: appraised and excellent (proposed before finalizing, the current results after)."""
    column = P.final_grade if rnd.state == "finalized" else P.bureau_grade
    appraised, excellent = (await session.execute(select(func.count(), func.count().filter(
        column == rules.EXCELLENT)).where(P.round_id == rnd.id))).one()
    return rules.CapStatus(appraised or 0, excellent or 0)


async def justify_cap(session: AsyncSession, *, actor: str, round_id: uuid.UUID, text: str,
                      excellent_count: int | None) -> None:
    """R30.1: record why more than floor(15 %) are (to be) excellent; an earlier approval lapses."""
    rnd = await get_round(session, round_id, lock=True)
    try:
        rules.ensure_editable(rnd.state, "cap_justification")
    except rules.RuleViolation as exc:
        raise refuse(exc) from exc
    status = await cap_status(session, rnd)
    count = excellent_count or status.excellent
    if count <= status.allowed:
        raise Conflict("R30.1", "未超过比例",
                       f"依据规则 R30.1，{count} 人未超过优秀等次比例（{status.allowed} 人），无需说明。")
    if count < status.excellent:
        raise Unprocessable("R30.1", "说明人数不足",
                            f"依据规则 R30.1，当前已拟定优秀 {status.excellent} 人，说明须覆盖全部人数。")
    await session.execute(update(appraisal_round).where(R.id == round_id).values(
        cap_justification=text, cap_justified_count=count, cap_justified_by=actor, cap_justified_at=now(),
        cap_approved_by=None, cap_approved_at=None))
    await _history(session, rnd, actor=actor, action="cap.justified", reason=text, excellent=count,
                   allowed=status.allowed)
    await _audit(session, actor=actor, action="cap.justified", subject=f"round:{round_id}", excellent=count)


async def approve_cap(session: AsyncSession, *, actor: str, round_id: uuid.UUID) -> None:
    """R30.1: a second bureau user (never the author) approves the justification."""
    rnd = await get_round(session, round_id, lock=True)
    try:
        rules.ensure_editable(rnd.state, "cap_justification")
        rules.ensure_second_user(rnd.cap_justified_by, actor)
    except rules.RuleViolation as exc:
        raise refuse(exc) from exc
    await session.execute(update(appraisal_round).where(R.id == round_id).values(
        cap_approved_by=actor, cap_approved_at=now()))
    await _history(session, rnd, actor=actor, action="cap.approved", excellent=rnd.cap_justified_count)
    await _audit(session, actor=actor, action="cap.approved", subject=f"round:{round_id}")


async def record_consultation(session: AsyncSession, *, actor: str, round_id: uuid.UUID, district: str,
                              note: str) -> None:
    """R34.1(3): the district bureau consulted its procuratorate before proposing grades (its own step)."""
    rnd = await get_round(session, round_id, share=True)
    try:
        rules.ensure_editable(rnd.state, "consultation")
    except rules.RuleViolation as exc:
        raise refuse(exc) from exc
    if district not in await _districts(session, round_id):
        raise NotFound("本轮考核的区市", district)
    values = {"note": note, "recorded_by": actor, "recorded_at": now()}
    await session.execute(insert(district_consultation).values(round_id=round_id, district=district, **values)
                          .on_conflict_do_update(index_elements=["round_id", "district"], set_=values))
    await _history(session, rnd, actor=actor, action="district.consulted", reason=note, district=district)
    await _audit(session, actor=actor, action="district.consulted", subject=f"round:{round_id}", district=district)


async def _districts(session: AsyncSession, round_id: uuid.UUID) -> list[str]:
    rows = await session.scalars(select(P.district).distinct().where(P.round_id == round_id, P.district.is_not(None)))
    return sorted(rows)


async def consultations(session: AsyncSession, round_id: uuid.UUID) -> Sequence:
    return (await session.execute(select(district_consultation).where(
        district_consultation.c.round_id == round_id).order_by(district_consultation.c.district))).all()


async def send_defence_notice(session: AsyncSession, settings: AppraisalSettings, calendar: WorkingCalendar,
                              outbox: Outbox, *, actor: str, round_id: uuid.UUID, supervisor_id: uuid.UUID,
                              reasons: str, basis: str, window_days: int | None) -> dict:
    """R35.1: reasons, basis and the right to state and defend, sent today (the server's date); returns the
    告知书's data. After finalizing it precedes a correction to unqualified."""
    rnd, row = await _editable(session, round_id, supervisor_id, "defence")
    if rnd.state != "finalized" and row.bureau_grade != rules.UNQUALIFIED:
        raise Conflict("R35.1", "非拟定不合格人员", "依据规则 R35.1，仅拟定为不合格的人员需告知理由和依据。")
    sent_on = today()
    end = rules.defence_window_end(sent_on, window_days or settings.defence_window_days,
                                   lambda d: calendar.add_working_days(d, 0).value)
    doc = rules.defence_notice_document(name=await _name(session, supervisor_id), period_label=period_label(rnd),
                                        reasons=reasons, basis=basis, grounds=row.grounds or [], window_end=end,
                                        bureau=settings.bureau_name, on=sent_on)
    text = rules.document_text(doc)
    # its 文号 is taken now, when it is sent; a 告知书 sent again keeps the number (a subject keeps its 文号)
    number = row.defence_number or await take_number(session, "appraisal_defence_notice", sent_on)
    await _set(session, round_id, supervisor_id, defence_sent_on=sent_on, defence_reasons=reasons,
               defence_basis=basis, defence_window_end=end, defence_notice_text=text, statement_final=False,
               defence_number=number)
    await _audit(session, actor=actor, action="defence.notice_sent", subject=f"round:{round_id}",
                 supervisor_id=str(supervisor_id), sent_on=sent_on.isoformat(), window_end=end.isoformat())
    # the person is told (notify): the 告知书 and the last day to state and defend (R35.1)
    await outbox.add(session, DefenceNoticeSent(round_id=round_id, supervisor_id=supervisor_id, kind=rnd.kind,
                                                period=period_code(rnd), sent_on=sent_on, window_end=end))
    return {"sent_on": sent_on, "window_end": end, "document": doc, "text": text}


async def record_statement(session: AsyncSession, *, actor: str, by_self: bool, round_id: uuid.UUID,
                           supervisor_id: uuid.UUID, text: str, final: bool, received_on: date | None) -> None:
    """R35.1: the person's statement and defence; only the person, or a bureau user recording a statement received
    on paper (with its date), can close the window (final = nothing more to add)."""
    _, row = await _editable(session, round_id, supervisor_id, "defence")
    if row.defence_sent_on is None:
        raise Conflict("R35.1", "尚未告知", "依据规则 R35.1，须先告知理由和依据，再记录陈述申辩。")
    if by_self:
        if received_on is not None:
            raise Unprocessable("R35.1", "本人提交无需收到日期", "本人在系统中提交陈述申辩，日期以服务器时间为准。")
        received_on = today()
    elif received_on is None:
        raise Unprocessable("R35.1", "须注明书面材料收到日期",
                            "依据规则 R35.1，司法局代为录入的陈述申辩须是收到的书面材料，并注明收到日期。")
    elif not row.defence_sent_on <= received_on <= today():
        raise Unprocessable("R35.1", "收到日期无效",
                            f"书面陈述申辩的收到日期须在告知之日（{row.defence_sent_on}）至今天之间。")
    await _set(session, round_id, supervisor_id, statement=text, statement_at=now(), statement_final=final,
               statement_by=actor, statement_received_on=received_on)
    await _audit(session, actor=actor, action="defence.statement", subject=f"round:{round_id}",
                 supervisor_id=str(supervisor_id), final=final, on_paper=not by_self)


# --- proposals and candidates (R31.1, R32.1, R33.1, R36.1) ---------------------------------------


async def proposals(session: AsyncSession, settings: AppraisalSettings, round_id: uuid.UUID, *,
                    district: str | None = None) -> list[dict]:
    """Per person: ledger figures, proposed grade (R33.1), candidate (R31.1), grounds on record (R32.1)."""
    rnd = await get_round(session, round_id)
    people = await participants(session, round_id, district=district)
    ids = [p.supervisor_id for p in people]
    thresholds = settings.thresholds()
    figures: dict[uuid.UUID, rules.Figures] = {}
    if rnd.kind == "annual" and ids:
        rows = (await session.execute(ledger.figures_query(rnd.year, ids))).all()
        figures = {r.supervisor_id: ledger.to_figures(r) for r in rows}
    out = []
    for p in people:
        f = figures.get(p.supervisor_id, rules.Figures())
        item: dict[str, Any] = {"supervisor_id": p.supervisor_id, "name": p.name, "district": p.district}
        if rnd.kind == "annual":
            item.update(past_results=await past_results(session, p.supervisor_id, rnd.year),
                        figures=f.__dict__, proposed_grade=rules.propose_grade(f, thresholds),
                        excellent_candidate=rules.excellent_eligible(f, thresholds),
                        score=rules.candidate_score(f, thresholds), excellent_checklist=rules.suggested_evidence(f))
        else:
            standing = rules.term_standing(await annual_history(session, p.supervisor_id, rnd.term_start,
                                                                rnd.term_end))
            item.update(annual_excellent=standing.excellent_count, term_excellent_eligible=standing.eligible,
                        term_excellent_automatic=standing.automatic,
                        proposed_grade=rules.EXCELLENT if standing.automatic else None)
        item["unqualified_grounds_on_record"] = rules.flagged_grounds(
            await supported_grounds(session, rnd, p.supervisor_id, today()))
        out.append(item)
    return out


async def candidates(session: AsyncSession, settings: AppraisalSettings, round_id: uuid.UUID) -> dict:
    """R31.1: excellent candidates ranked by ledger figures, and how many R30.1 allows; a person decides."""
    rnd = await get_round(session, round_id)
    appraised = await session.scalar(select(func.count()).select_from(participant).where(P.round_id == round_id))
    items = await proposals(session, settings, round_id)
    if rnd.kind == "annual":
        ranked = rules.rank_candidates({str(i["supervisor_id"]): rules.Figures(**i["figures"]) for i in items},
                                       settings.thresholds())
        by_id = {str(i["supervisor_id"]): i for i in items}
        chosen = [{**by_id[k], "score": s} for k, s in ranked]
    else:
        chosen = sorted((i for i in items if i["term_excellent_eligible"]),
                        key=lambda i: (-i["annual_excellent"], str(i["supervisor_id"])))
    return {"appraised": appraised or 0, "excellent_allowed": rules.excellent_allowed(appraised or 0),
            "candidates": chosen}


# --- the steps of the round (R34.1) --------------------------------------------------------------


async def advance(session: AsyncSession, settings: AppraisalSettings, calendar: WorkingCalendar, outbox: Outbox, *,
                  actor: str, round_id: uuid.UUID, to: str, note: str | None = None,
                  notice_days: int | None = None) -> None:
    """R34.1: move the round to the next step (who/when recorded); each step checks what it needs."""
    rnd = await get_round(session, round_id, lock=True)
    values: dict[str, Any] = {"state": to}
    try:
        rules.next_state(rnd.state, to)
        if to == "district_proposed":
            consulted = [c.district for c in await consultations(session, round_id)]
            rules.ensure_districts_consulted(await _districts(session, round_id), consulted)
        elif to == "bureau_proposed":
            values["consultation_note"] = await _check_bureau_proposal(session, rnd, note)
        elif to == "public_notice":
            days = notice_days or settings.public_notice_working_days
            rules.ensure_notice_days(days, settings.public_notice_working_days)
            start = today()  # the server's date, never a client's
            end = rules.notice_period(start, days, lambda d, n: calendar.add_working_days(d, n).value)
            names = [p.name or str(p.supervisor_id) for p in await participants(session, round_id)
                     if p.bureau_grade == rules.EXCELLENT]
            doc = rules.public_notice_document(year_label=period_label(rnd), names=names, start=start, end=end,
                                               bureau=settings.bureau_name)
            values.update(notice_start=start, notice_end=end, notice_text=rules.document_text(doc),
                          notice_document=jsonable(doc),  # its 文号 now; kept if the round comes back here
                          notice_number=rnd.notice_number or await take_number(session, "appraisal_public_notice",
                                                                               start))
        elif to == "finalized":
            values.update(await _finalize(session, settings, calendar, outbox, rnd, actor=actor))
    except rules.RuleViolation as exc:
        raise refuse(exc) from exc
    await session.execute(update(appraisal_round).where(R.id == round_id).values(**values))
    step = {"actor": actor, "at": now(), "note": note}
    await session.execute(insert(round_step).values(round_id=round_id, state=to, **step).on_conflict_do_update(
        index_elements=["round_id", "state"], set_=step))
    await _history(session, rnd, actor=actor, action="round.forward", to_state=to, reason=note)
    await _audit(session, actor=actor, action=f"round.{to}", subject=f"round:{round_id}")


async def back(session: AsyncSession, *, actor: str, round_id: uuid.UUID, reason: str) -> str:
    """R30.1/R34.1: send a round not yet finalized back one step, with a reason; returns the new state."""
    rnd = await get_round(session, round_id, lock=True)
    try:
        to = rules.previous_state(rnd.state)
    except rules.RuleViolation as exc:
        raise refuse(exc) from exc
    await _move_back(session, rnd, to, actor=actor, reason=reason, action="round.back")
    return to


async def _move_back(session: AsyncSession, rnd, to: str, *, actor: str, reason: str, action: str) -> None:
    """Back to `to`: a public notice not yet over is withdrawn (kept in the history), later steps are undone."""
    values: dict[str, Any] = {"state": to}
    details: dict[str, Any] = {}
    index = rules.STATES.index(to)
    if index < rules.STATES.index("public_notice") and rnd.notice_start is not None:
        values.update(notice_start=None, notice_end=None, notice_text=None, notice_document=None)
        details["withdrawn_notice"] = {"start": rnd.notice_start.isoformat(), "end": rnd.notice_end.isoformat(),
                                       "text": rnd.notice_text}
    await session.execute(update(appraisal_round).where(R.id == rnd.id).values(**values))
    await session.execute(delete(round_step).where(round_step.c.round_id == rnd.id,
                                                   round_step.c.state.in_(rules.STATES[index + 1:])))
    await _history(session, rnd, actor=actor, action=action, to_state=to, reason=reason, **details)
    await _audit(session, actor=actor, action=action, subject=f"round:{rnd.id}", to=to)


async def _check_bureau_proposal(session: AsyncSession, rnd, note: str | None) -> str:
    """R34.1(4): every grade proposed, the city procuratorate consulted; R36.1 still holds; R35.1 notices sent;
    R30.1 flagged here (before the public notice) and passed only with an approved justification."""
    people = await participants(session, rnd.id)
    missing = sum(p.bureau_grade is None for p in people)
    if missing:
        raise Conflict("grades_missing", "尚有人员未拟定等次", f"还有 {missing} 名人员未由市司法局拟定考核等次。")
    if not note:
        raise Unprocessable("R34.1", "须记录征求市检察院意见",
                            "依据规则 R34.1(4)，市司法局提出拟定等次须征求市人民检察院意见，请填写征求意见情况。")
    label = {p.supervisor_id: p.name or str(p.supervisor_id) for p in people}
    if rnd.kind == "term":
        conflicts = []
        for p in people:
            history = await annual_history(session, p.supervisor_id, rnd.term_start, rnd.term_end)
            if rules.term_conflict(p.bureau_grade, rules.term_standing(history)):
                conflicts.append(label[p.supervisor_id])
        rules.ensure_term_grades(conflicts)
    rules.ensure_defence_notified(label[p.supervisor_id] for p in people
                                  if p.bureau_grade == rules.UNQUALIFIED and p.defence_sent_on is None)
    status = rules.CapStatus(len(people), sum(p.bureau_grade == rules.EXCELLENT for p in people))
    rules.ensure_cap_justified(status, justified_count=rnd.cap_justified_count, justified_by=rnd.cap_justified_by,
                               approved_by=rnd.cap_approved_by)
    return note


async def _finalize(session: AsyncSession, settings: AppraisalSettings, calendar: WorkingCalendar, outbox: Outbox,
                    rnd, *, actor: str) -> dict[str, Any]:
    """R34.1 (notice over), R32.1 and R35.1 for each unqualified; then results (version 1), events (R37.1, R38.1)
    and notices (R39.1). R30.1 and R36.1 were settled at step (4): nothing about them is discovered here."""
    on, at = today(), now()
    people = await participants(session, rnd.id)
    rules.ensure_notice_over(on, rnd.notice_end)
    finals: dict[uuid.UUID, str] = {}
    for p in people:
        if p.bureau_grade == rules.UNQUALIFIED:
            graded_on = clock.local_date(p.bureau_at) if p.bureau_at else on
            rules.ensure_unqualified_grounds(p.grounds or [], await supported_grounds(session, rnd, p.supervisor_id,
                                                                                      graded_on))
            rules.ensure_defence_closed(p.name or str(p.supervisor_id), sent_on=p.defence_sent_on,
                                        window_end=p.defence_window_end, statement_final=p.statement_final, today=on)
        finals[p.supervisor_id] = p.bureau_grade
    events = []
    grounds = {p.supervisor_id: p.grounds or [] for p in people}
    for supervisor_id, grade in finals.items():
        await _set(session, rnd.id, supervisor_id, final_grade=grade, result_version=1)
        events.append(AppraisalFinalized(round_id=rnd.id, kind=rnd.kind, period=period_code(rnd),
                                         supervisor_id=supervisor_id, grade=grade, finalized_at=at))
        if grade == rules.EXCELLENT:
            events.append(CommendationIssued(round_id=rnd.id, supervisor_id=supervisor_id, kind=rnd.kind,
                                             issued_at=at))
    if finals:
        await session.execute(result.insert(), [
            {"round_id": rnd.id, "supervisor_id": s, "version": 1, "grade": g, "grounds": grounds[s],
             "decided_by": actor, "decided_at": at} for s, g in finals.items()])
    if events:
        await outbox.add_many(session, events)
    await _write_notices(session, settings, rnd, [p.supervisor_id for p in people], finals, on)
    entered_by, reported_by = rules.result_deadlines(on, lambda d, n: calendar.add_working_days(d, n).value)
    return {"finalized_on": on, "entered_by": entered_by, "reported_by": reported_by}


async def correct_result(session: AsyncSession, settings: AppraisalSettings, outbox: Outbox, *, actor: str,
                         round_id: uuid.UUID, supervisor_id: uuid.UUID, grade: str, grounds: list[int],
                         criteria: dict | None, reason: str) -> int:
    """After finalizing: a recorded correction is a new version of the result (the old one kept), published as a
    corrected AppraisalFinalized, with new notices (R39.1). Returns the new version."""
    rnd = await get_round(session, round_id, lock=True)
    try:
        rules.ensure_editable(rnd.state, "result_correction")
    except rules.RuleViolation as exc:
        raise refuse(exc) from exc
    row = await get_participant(session, round_id, supervisor_id, lock=True)
    grade, grounds, checklist = await _checked_grade(session, rnd, supervisor_id, grade, grounds, criteria)
    if grade == row.final_grade and grounds == sorted(row.grounds or []):
        raise Conflict("no_change", "结果未变更", "更正后的等次与当前结果相同。")
    try:
        if grade == rules.UNQUALIFIED:
            rules.ensure_defence_closed(await _name(session, supervisor_id), sent_on=row.defence_sent_on,
                                        window_end=row.defence_window_end, statement_final=row.statement_final,
                                        today=today())
        status = await cap_status(session, rnd)
        excellent = status.excellent - (row.final_grade == rules.EXCELLENT) + (grade == rules.EXCELLENT)
        rules.ensure_cap_justified(rules.CapStatus(status.appraised, excellent),
                                   justified_count=rnd.cap_justified_count, justified_by=rnd.cap_justified_by,
                                   approved_by=rnd.cap_approved_by)
    except rules.RuleViolation as exc:
        raise refuse(exc) from exc
    version, at, on = (row.result_version or 1) + 1, now(), today()
    await session.execute(result.insert().values(round_id=round_id, supervisor_id=supervisor_id, version=version,
                                                 grade=grade, grounds=grounds, decided_by=actor, decided_at=at,
                                                 reason=reason))
    await _set(session, round_id, supervisor_id, final_grade=grade, grounds=grounds, result_version=version,
               **({"excellent_criteria": checklist} if checklist else {}))
    events: list = [AppraisalFinalized(round_id=rnd.id, kind=rnd.kind, period=period_code(rnd),
                                       supervisor_id=supervisor_id, grade=grade, finalized_at=at,
                                       result_version=version, corrects_version=version - 1,
                                       correction_reason=reason)]
    if grade == rules.EXCELLENT and row.final_grade != rules.EXCELLENT:
        events.append(CommendationIssued(round_id=rnd.id, supervisor_id=supervisor_id, kind=rnd.kind, issued_at=at))
    await outbox.add_many(session, events)
    await _write_notices(session, settings, rnd, [supervisor_id], {supervisor_id: grade}, on, correction=reason)
    await _history(session, rnd, actor=actor, action="result.corrected", to_state=rnd.state,
                   supervisor_id=supervisor_id, reason=reason, old_grade=row.final_grade, grade=grade,
                   version=version)
    await _audit(session, actor=actor, action="result.corrected", subject=f"round:{round_id}",
                 supervisor_id=str(supervisor_id), grade=grade, version=version)
    return version


async def results_of(session: AsyncSession, round_id: uuid.UUID, supervisor_id: uuid.UUID) -> Sequence:
    """Every version of a person's result in a round (the corrected ones kept)."""
    return (await session.execute(select(result).where(result.c.round_id == round_id,
                                                       result.c.supervisor_id == supervisor_id)
                                  .order_by(result.c.version))).all()


async def history(session: AsyncSession, round_id: uuid.UUID) -> Sequence:
    return (await session.execute(select(round_history).where(round_history.c.round_id == round_id)
                                  .order_by(round_history.c.id))).all()


async def _write_notices(session: AsyncSession, settings: AppraisalSettings, rnd, people: Sequence[uuid.UUID],
                         finals: dict[uuid.UUID, str], on: date, *, correction: str | None = None) -> None:
    """R39.1: result notices to person, employer, recommending body and procuratorate; R38.1 commendation. Each
    takes its 文号 here, when finalizing (or a correction) issues it, in this order: never at its first print."""
    info = {r.id: r for r in (await session.execute(select(supervisor).where(
        supervisor.c.id.in_(list(finals))))).all()} if finals else {}
    label = period_label(rnd)
    rows = []
    for supervisor_id in people:
        person = info.get(supervisor_id)
        name = (person.name if person else None) or str(supervisor_id)
        addressees = {"person": name, "employer": (person.employer if person else None) or "所在工作单位",
                      "recommending_body": (person.recommending_body if person else None) or "推荐单位或组织",
                      "procuratorate": rules.RECIPIENT_ZH["procuratorate"]}
        for recipient in rules.RECIPIENTS:
            doc = rules.result_notice_document(
                recipient=recipient, addressee=addressees[recipient], name=name, period_label=label,
                grade=finals[supervisor_id], bureau=settings.bureau_name, on=on, correction=correction)
            rows.append({"round_id": rnd.id, "supervisor_id": supervisor_id, "kind": "result",
                         "recipient": recipient, "text": rules.document_text(doc), "document": jsonable(doc),
                         "number": await take_number(session, "appraisal_result", on)})
    excellent = [(info[s].name if s in info and info[s].name else str(s))
                 for s, g in finals.items() if g == rules.EXCELLENT]
    if excellent:
        doc = rules.commendation_document(period_label=label, names=excellent, bureau=settings.bureau_name, on=on)
        rows.append({"round_id": rnd.id, "supervisor_id": None, "kind": "commendation", "recipient": "public",
                     "text": rules.document_text(doc), "document": jsonable(doc),
                     "number": await take_number(session, "appraisal_commendation", on)})
    if rows:
        await session.execute(notice.insert(), rows)


async def notice_of(session: AsyncSession, round_id: uuid.UUID, notice_id: int):
    """R38.1/R39.1: one notice of the round with its document (404 if none)."""
    row = (await session.execute(select(notice).where(notice.c.round_id == round_id, notice.c.id == notice_id))).first()
    if row is None:
        raise NotFound("考核通知", notice_id)
    return row


def notice_document(row) -> dict:
    """The notice as a document; a notice written before documents were kept (0006) reads as its text."""
    if row.document:
        return row.document
    lines = row.text.split("\n")
    return {"title": "考核结果通知" if row.kind == "result" else lines[0], "addressee": None,
            "paragraphs": lines[:-2] if row.kind == "result" else lines[1:-2], "issuer": lines[-2],
            "date": clock.local_date(row.created_at).isoformat()}


async def defence_document(session: AsyncSession, settings: AppraisalSettings, round_id: uuid.UUID,
                           supervisor_id: uuid.UUID) -> tuple[dict, str | None]:
    """R35.1: the 告知书 as it was sent (its reasons, basis, grounds, last day) and its 文号 (None for one sent before
    0008: numbered at its first print); 404 when none was sent."""
    rnd = await get_round(session, round_id)
    row = await get_participant(session, round_id, supervisor_id)
    if row.defence_sent_on is None:
        raise NotFound("告知书", f"{round_id}/{supervisor_id}")
    doc = jsonable(rules.defence_notice_document(
        name=await _name(session, supervisor_id), period_label=period_label(rnd), reasons=row.defence_reasons,
        basis=row.defence_basis, grounds=row.grounds or [], window_end=row.defence_window_end,
        bureau=settings.bureau_name, on=row.defence_sent_on))
    return doc, row.defence_number


async def notices(session: AsyncSession, round_id: uuid.UUID, *, supervisor_id: uuid.UUID | None = None,
                  kind: str | None = None) -> Sequence:
    query = select(notice).where(notice.c.round_id == round_id).order_by(notice.c.id)
    if supervisor_id is not None:
        query = query.where(notice.c.supervisor_id == supervisor_id)
    if kind is not None:
        query = query.where(notice.c.kind == kind)
    return (await session.execute(query)).all()


# --- R34.1(6) deadlines --------------------------------------------------------------------------


async def mark_deadline(session: AsyncSession, *, actor: str, round_id: uuid.UUID, which: str) -> None:
    """R34.1(6): results entered into the system / reported to the province: done (who, when)."""
    rnd = await get_round(session, round_id, lock=True)
    if rnd.state != "finalized":
        raise Conflict("invalid_transition", "考核尚未确定", "考核结果确定后才能登记录入或上报。")
    if getattr(rnd, f"{which}_done_at") is not None:
        raise Conflict("already_done", "已登记", "该事项已登记完成。")
    await session.execute(update(appraisal_round).where(R.id == round_id).values(
        {f"{which}_done_at": now(), f"{which}_done_by": actor}))
    await _audit(session, actor=actor, action=f"deadline.{which}", subject=f"round:{round_id}")


async def overdue_deadlines(session: AsyncSession, on: date) -> list[dict]:
    """R34.1(6): finalized rounds whose entry (5 wd) or report (10 wd) is past due and not done."""
    rows = (await session.execute(select(appraisal_round).where(R.state == "finalized", or_(
        and_(R.entered_done_at.is_(None), R.entered_by < on),
        and_(R.reported_done_at.is_(None), R.reported_by < on))).order_by(R.finalized_on))).all()
    out = []
    for r in rows:
        for which in ("entered", "reported"):
            due = getattr(r, f"{which}_by")
            if rules.overdue(due, getattr(r, f"{which}_done_at") is not None, on):
                out.append({"round_id": r.id, "period": period_label(r), "deadline": which, "due": due})
    return out


async def appraisals_of(session: AsyncSession, supervisor_id: uuid.UUID) -> list[dict]:
    """R38.1: the rounds a person took part in, newest first, with the grade once it is final (proposals stay the
    bureau's working papers until the round is finalized)."""
    rows = (await session.execute(
        select(R.id, R.kind, R.year, R.term_start, R.term_end, R.state, participant.c.final_grade,
               participant.c.result_version, participant.c.defence_sent_on)
        .join(participant, participant.c.round_id == R.id)
        .where(participant.c.supervisor_id == supervisor_id)
        .order_by(R.created_at.desc(), R.id))).all()
    return [{"round_id": r.id, "kind": r.kind, "year": r.year, "term_start": r.term_start, "term_end": r.term_end,
             "state": r.state, "state_label": rules.STATE_ZH.get(r.state, r.state), "final_grade": r.final_grade,
             "final_grade_label": rules.GRADE_ZH.get(r.final_grade) if r.final_grade else None,
             "result_version": r.result_version, "defence_sent_on": r.defence_sent_on} for r in rows]

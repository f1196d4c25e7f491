"""Use cases of the appraisal rounds (R29.1–R39.1). The caller owns the transaction: nothing here commits."""

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.appraisal import ledger, rules
from services.appraisal.config import AppraisalSettings
from services.appraisal.models import appraisal_round, notice, participant, platform, round_step, supervisor
from shared import audit
from shared.calendar import WorkingCalendar
from shared.errors import Conflict, NotFound, ProblemError, Unprocessable
from shared.events.contracts import AppraisalFinalized, CommendationIssued
from shared.events.outbox import Outbox

SHANGHAI = ZoneInfo("Asia/Shanghai")
R = appraisal_round.c
P = participant.c


def now() -> datetime:
    return datetime.now(UTC)


def today() -> date:
    """Dates of the rules are dates in Asia/Shanghai."""
    return datetime.now(SHANGHAI).date()


def refuse(exc: rules.RuleViolation) -> ProblemError:
    """A rule refusal as the client sees it: 409 with the rule id as code."""
    return Conflict(exc.code, exc.title, exc.detail)


async def _audit(session: AsyncSession, *, actor: str, action: str, subject: object, **details: Any) -> None:
    await audit.append(session, platform.audit, actor=actor, action=action, subject=str(subject), details=details)


def period_label(row) -> str:
    if row.kind == "annual":
        return f"{row.year}年度"
    return f"{row.term_start.isoformat()}至{row.term_end.isoformat()}任期"


def period_code(row) -> str:
    """AppraisalFinalized.period: the year, or 'start–end' of the term."""
    return str(row.year) if row.kind == "annual" else f"{row.term_start.isoformat()}–{row.term_end.isoformat()}"


def period_bounds(row) -> tuple[date, date]:
    if row.kind == "annual":
        return date(row.year, 1, 1), date(row.year, 12, 31)
    return row.term_start, row.term_end


async def reminders_for(session: AsyncSession, rnd, supervisor_id: uuid.UUID) -> list[int]:
    """R32.1: grounds with a reminder on record from the start of the period up to now (or the period's end)."""
    since, end = period_bounds(rnd)
    return await ledger.reminded_grounds(session, supervisor_id, since=since, until=max(end, today()))


# --- rounds --------------------------------------------------------------------------------------


async def open_round(session: AsyncSession, *, actor: str, kind: str, year: int | None, term_start: date | None,
                     term_end: date | None, supervisor_ids: Sequence[uuid.UUID] | None) -> uuid.UUID:
    """R29.1: open an annual (year) or term round; the appraised are the listed people or every active one."""
    if kind == "annual" and year is None:
        raise Unprocessable("period_required", "缺少考核年度", "年度考核须指定年度。")
    if kind == "term" and (term_start is None or term_end is None or term_start >= term_end):
        raise Unprocessable("period_required", "缺少任期", "任期考核须指定任期起止日期（起始早于结束）。")
    if kind == "annual":
        term_start = term_end = None
        if await session.scalar(select(R.id).where(R.kind == "annual", R.year == year)):
            raise Conflict("round_exists", "该年度考核已存在", f"{year}年度考核轮次已存在。")
    else:
        year = None
    round_id = uuid.uuid4()
    await session.execute(appraisal_round.insert().values(id=round_id, kind=kind, year=year, term_start=term_start,
                                                          term_end=term_end, state="opened", created_by=actor))
    query = select(supervisor.c.id, supervisor.c.district)
    if supervisor_ids is not None:
        ids = list(dict.fromkeys(supervisor_ids))
        found = (await session.execute(query.where(supervisor.c.id.in_(ids)))).all()
        if len(found) != len(ids):
            missing = sorted(str(i) for i in set(ids) - {r.id for r in found})
            raise Unprocessable("unknown_supervisor", "人民监督员不存在",
                                f"未登记的人民监督员：{', '.join(missing[:5])}")
    else:
        found = (await session.execute(_serving(query, kind, year, term_start, term_end))).all()
    if found:
        await session.execute(participant.insert(), [
            {"round_id": round_id, "supervisor_id": r.id, "district": r.district} for r in found])
    await session.execute(round_step.insert().values(round_id=round_id, state="opened", actor=actor))
    await _audit(session, actor=actor, action="round.opened", subject=f"round:{round_id}", kind=kind,
                 appraised=len(found))
    return round_id


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


async def list_rounds(session: AsyncSession, *, limit: int, offset: int) -> tuple[Sequence, int]:
    total = await session.scalar(select(func.count()).select_from(appraisal_round))
    rows = (await session.execute(select(appraisal_round).order_by(R.created_at.desc(), R.id)
                                  .limit(limit).offset(offset))).all()
    return rows, total or 0


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


async def _editable(session: AsyncSession, round_id: uuid.UUID, supervisor_id: uuid.UUID, what: str):
    rnd = await get_round(session, round_id, share=True)  # the step cannot move while this input is written
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


async def set_bureau_grade(session: AsyncSession, *, actor: str, round_id: uuid.UUID, supervisor_id: uuid.UUID,
                           grade: str, grounds: list[int]) -> str:
    """R34.1(4): the bureau's proposed grade; R32.1 for unqualified, R36.1 in a term round. Returns the grade."""
    rnd, _ = await _editable(session, round_id, supervisor_id, "bureau_grade")
    try:
        if grade == rules.UNQUALIFIED:
            reminded = await reminders_for(session, rnd, supervisor_id)
            rules.ensure_unqualified_grounds(grounds, reminded)
        else:
            grounds = []
        if rnd.kind == "term":
            history = await annual_history(session, supervisor_id, rnd.term_start, rnd.term_end)
            grade = rules.term_grade(grade, rules.term_standing(history))
    except rules.RuleViolation as exc:
        raise refuse(exc) from exc
    await _set(session, round_id, supervisor_id, bureau_grade=grade, grounds=sorted(set(grounds)), bureau_by=actor,
               bureau_at=now())
    await _audit(session, actor=actor, action="grade.bureau_proposed", subject=f"round:{round_id}",
                 supervisor_id=str(supervisor_id), grade=grade, grounds=sorted(set(grounds)))
    return grade


async def send_defence_notice(session: AsyncSession, settings: AppraisalSettings, *, actor: str,
                              round_id: uuid.UUID, supervisor_id: uuid.UUID, reasons: str, basis: str,
                              sent_on: date, window_days: int | None) -> date:
    """R35.1: reasons and basis sent, and the right to state and defend; returns the window's end."""
    _, row = await _editable(session, round_id, supervisor_id, "defence")
    if row.bureau_grade != rules.UNQUALIFIED:
        raise Conflict("R35.1", "非拟定不合格人员", "依据规则 R35.1，仅拟定为不合格的人员需告知理由和依据。")
    end = rules.defence_window_end(sent_on, window_days or settings.defence_window_days)
    await _set(session, round_id, supervisor_id, defence_sent_on=sent_on, defence_reasons=reasons,
               defence_basis=basis, defence_window_end=end, statement_final=False)
    await _audit(session, actor=actor, action="defence.notice_sent", subject=f"round:{round_id}",
                 supervisor_id=str(supervisor_id), sent_on=sent_on.isoformat(), window_end=end.isoformat())
    return end


async def record_statement(session: AsyncSession, *, actor: str, round_id: uuid.UUID, supervisor_id: uuid.UUID,
                           text: str, final: bool) -> None:
    """R35.1: the person's statement and defence (final = nothing more to add: the window closes)."""
    _, row = await _editable(session, round_id, supervisor_id, "defence")
    if row.defence_sent_on is None:
        raise Conflict("R35.1", "尚未告知", "依据规则 R35.1，须先告知理由和依据，再记录陈述申辩。")
    await _set(session, round_id, supervisor_id, statement=text, statement_at=now(), statement_final=final)
    await _audit(session, actor=actor, action="defence.statement", subject=f"round:{round_id}",
                 supervisor_id=str(supervisor_id), final=final)


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
                        score=rules.candidate_score(f, thresholds))
        else:
            standing = rules.term_standing(await annual_history(session, p.supervisor_id, rnd.term_start,
                                                                rnd.term_end))
            item.update(annual_excellent=standing.excellent_count, term_excellent_eligible=standing.eligible,
                        term_excellent_automatic=standing.automatic,
                        proposed_grade=rules.EXCELLENT if standing.automatic else None)
        item["unqualified_grounds_on_record"] = rules.flagged_grounds(
            await reminders_for(session, rnd, p.supervisor_id))
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
                  notice_start: date | None = None, notice_days: int | None = None) -> None:
    """R34.1: move the round to the next step (who/when recorded); each step checks what it needs."""
    rnd = await get_round(session, round_id, lock=True)
    try:
        rules.next_state(rnd.state, to)
    except rules.RuleViolation as exc:
        raise refuse(exc) from exc
    values: dict[str, Any] = {"state": to}
    if to == "bureau_proposed":
        missing = await session.scalar(select(func.count()).select_from(participant).where(
            P.round_id == round_id, P.bureau_grade.is_(None)))
        if missing:
            raise Conflict("grades_missing", "尚有人员未拟定等次", f"还有 {missing} 名人员未由市司法局拟定考核等次。")
        if not note:
            raise Unprocessable("R34.1", "须记录征求市检察院意见",
                                "依据规则 R34.1(4)，市司法局提出拟定等次须征求市人民检察院意见，请填写征求意见情况。")
        values["consultation_note"] = note
    elif to == "public_notice":
        start = notice_start or today()
        end = rules.notice_period(start, notice_days or settings.public_notice_working_days,
                                  lambda d, n: calendar.add_working_days(d, n).value)
        names = [p.name or str(p.supervisor_id) for p in await participants(session, round_id)
                 if p.bureau_grade == rules.EXCELLENT]
        values.update(notice_start=start, notice_end=end, notice_text=rules.public_notice_text(
            year_label=period_label(rnd), names=names, start=start, end=end, bureau=settings.bureau_name))
    elif to == "finalized":
        values.update(await _finalize(session, settings, calendar, outbox, rnd))
    await session.execute(update(appraisal_round).where(R.id == round_id).values(**values))
    await session.execute(round_step.insert().values(round_id=round_id, state=to, actor=actor, note=note))
    await _audit(session, actor=actor, action=f"round.{to}", subject=f"round:{round_id}")


async def _finalize(session: AsyncSession, settings: AppraisalSettings, calendar: WorkingCalendar, outbox: Outbox,
                    rnd) -> dict[str, Any]:
    """R30.1, R34.1, R35.1, R36.1 checks; then final grades, events (R37.1, R38.1) and notices (R39.1)."""
    on = today()
    people = await participants(session, rnd.id)
    finals: dict[uuid.UUID, str] = {}
    try:
        rules.ensure_notice_over(on, rnd.notice_end)
        for p in people:
            grade = p.bureau_grade
            if rnd.kind == "term":
                history = await annual_history(session, p.supervisor_id, rnd.term_start, rnd.term_end)
                grade = rules.term_grade(grade, rules.term_standing(history))
            if grade == rules.UNQUALIFIED:
                reminded = await reminders_for(session, rnd, p.supervisor_id)
                rules.ensure_unqualified_grounds(p.grounds or [], reminded)
                rules.ensure_defence_closed(p.name or str(p.supervisor_id), sent_on=p.defence_sent_on,
                                            window_end=p.defence_window_end, statement_final=p.statement_final,
                                            today=on)
            finals[p.supervisor_id] = grade
        rules.ensure_excellent_cap(sum(g == rules.EXCELLENT for g in finals.values()), len(finals))
    except rules.RuleViolation as exc:
        raise refuse(exc) from exc
    at = now()
    events = []
    for supervisor_id, grade in finals.items():
        await _set(session, rnd.id, supervisor_id, final_grade=grade)
        events.append(AppraisalFinalized(round_id=rnd.id, kind=rnd.kind, period=period_code(rnd),
                                         supervisor_id=supervisor_id, grade=grade, finalized_at=at))
        if grade == rules.EXCELLENT:
            events.append(CommendationIssued(round_id=rnd.id, supervisor_id=supervisor_id, kind=rnd.kind,
                                             issued_at=at))
    if events:
        await outbox.add_many(session, events)
    await _write_notices(session, settings, rnd, people, finals, on)
    entered_by, reported_by = rules.result_deadlines(on, lambda d, n: calendar.add_working_days(d, n).value)
    return {"finalized_on": on, "entered_by": entered_by, "reported_by": reported_by}


async def _write_notices(session: AsyncSession, settings: AppraisalSettings, rnd, people: Sequence,
                         finals: dict[uuid.UUID, str], on: date) -> None:
    """R39.1: result notices to person, employer, recommending body and procuratorate; R38.1 commendation."""
    info = {r.id: r for r in (await session.execute(select(supervisor).where(
        supervisor.c.id.in_(list(finals))))).all()} if finals else {}
    label = period_label(rnd)
    rows = []
    for p in people:
        person = info.get(p.supervisor_id)
        name = (person.name if person else None) or str(p.supervisor_id)
        addressees = {"person": name, "employer": (person.employer if person else None) or "所在工作单位",
                      "recommending_body": (person.recommending_body if person else None) or "推荐单位或组织",
                      "procuratorate": rules.RECIPIENT_ZH["procuratorate"]}
        for recipient in rules.RECIPIENTS:
            rows.append({"round_id": rnd.id, "supervisor_id": p.supervisor_id, "kind": "result",
                         "recipient": recipient, "text": rules.result_notice_text(
                             recipient=recipient, addressee=addressees[recipient], name=name, period_label=label,
                             grade=finals[p.supervisor_id], bureau=settings.bureau_name, on=on)})
    excellent = [(info[s].name if s in info and info[s].name else str(s))
                 for s, g in finals.items() if g == rules.EXCELLENT]
    if excellent:
        rows.append({"round_id": rnd.id, "supervisor_id": None, "kind": "commendation", "recipient": "public",
                     "text": rules.commendation_text(period_label=label, names=excellent,
                                                     bureau=settings.bureau_name, on=on)})
    if rows:
        await session.execute(notice.insert(), rows)


async def notices(session: AsyncSession, round_id: uuid.UUID, *, supervisor_id: uuid.UUID | None = None) -> Sequence:
    query = select(notice).where(notice.c.round_id == round_id).order_by(notice.c.id)
    if supervisor_id is not None:
        query = query.where(notice.c.supervisor_id == supervisor_id)
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

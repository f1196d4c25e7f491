"""R28.1 履职工作台账: entries from events and bureau records, figures by SQL aggregation, xlsx export.

Every write is keyed by a natural `source_key` (form id, training session + person, conduct record id),
so an event delivered twice, or a replayed topic with new envelope ids, changes nothing.
"""

import io
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import date

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from sqlalchemy import Select, and_, false, func, or_, select, union, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.appraisal.models import appraisal_round, ledger_entry, opinion_adoption, participant, supervisor
from services.appraisal.rules import Figures
from shared import activity_types, clock
from shared.errors import Unprocessable
from shared.events.contracts import (
    ChangeReportRecorded,
    FeedbackSigned,
    OpinionAdoptionNotified,
    SupervisorAbsenceRecorded,
    SupervisorAppointed,
    SupervisorDismissed,
    SupervisorUpdated,
    TrainingRecorded,
)

CONDUCT_KINDS = {  # bureau-entered record kind -> (ledger kind, label)
    "law_abiding": ("conduct", "遵纪守法"),
    "ethics": ("conduct", "社会公德和职业道德"),
    "reminder": ("conduct", "提醒教育"),
    "uncorrected": ("conduct", "经提醒教育仍未改正"),  # R32.1: the conduct went on after the reminder
    "other_activity": ("other", "参加其他活动"),
    "late_change_report": ("late_change_report", "个人信息变更逾期报告"),
}
KIND_ZH = {"activity": "监督办案活动", "training": "培训学习", "conduct": "遵纪守法与道德",
           "other": "其他活动", "late_change_report": "变更逾期报告", "absence": "缺席监督办案活动"}
FIGURE_ZH = {"activities": "参加监督办案活动（次）", "adopted": "意见被采纳（次）", "training_hours": "培训学时",
             "trainings_attended": "参加培训（次）", "attended_annual_training": "参加年度集中培训",
             "reminders": "提醒教育（次）", "conduct_records": "遵纪守法与道德记录（条）",
             "other_activities": "其他活动（次）", "late_change_reports": "变更逾期报告（次）",
             "absences": "缺席监督办案活动（次）"}
GROUNDED = ("reminder", "uncorrected")  # conduct records that name the R32.1 ground they are about
SUBKIND_ZH = {**activity_types.LABELS, **{k: label for k, (_, label) in CONDUCT_KINDS.items()},
              "initial": "初任培训", "annual": "年度集中培训", "makeup": "补训", "term": "任期培训",
              "absence": "确认参加后缺席"}


def subkind_label(kind: str, subkind: str | None) -> str:
    """The Chinese label of an entry's sub-kind (activity type, training kind, conduct kind)."""
    if not subkind:
        return ""
    if kind == "activity":
        return activity_types.label(subkind)
    return SUBKIND_ZH.get(subkind, subkind)


# --- projection of registry events ---------------------------------------------------------------


async def project_appointed(session: AsyncSession, e: SupervisorAppointed) -> None:
    values = dict(name=e.name, district=e.district, employer=e.employer, recommending_body=e.recommending_body,
                  term_start=e.term_start, term_end=e.term_end, status="active", updated_at=func.now())
    stmt = insert(supervisor).values(id=e.supervisor_id, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=[supervisor.c.id], set_=values))


async def project_updated(session: AsyncSession, e: SupervisorUpdated) -> None:
    changed = {k: v for k, v in e.changed.items() if k in ("name", "district", "employer", "recommending_body")
               and isinstance(v, str)}
    stmt = insert(supervisor).values(id=e.supervisor_id, **changed)
    await session.execute(stmt.on_conflict_do_update(index_elements=[supervisor.c.id],
                                                     set_={**changed, "updated_at": func.now()}))


async def project_dismissed(session: AsyncSession, e: SupervisorDismissed) -> None:
    stmt = insert(supervisor).values(id=e.supervisor_id, status="dismissed")
    await session.execute(stmt.on_conflict_do_update(index_elements=[supervisor.c.id],
                                                     set_={"status": "dismissed", "updated_at": func.now()}))


# --- ledger entries from events ------------------------------------------------------------------


async def record_activity(session: AsyncSession, e: FeedbackSigned) -> bool:
    """R28.1(1): one activity entry per supervisor on a signed form (the form is per activity, one event per signer)."""
    adopted = e.adopted if e.adopted is not None else (
        select(opinion_adoption.c.adopted).where(opinion_adoption.c.activity_id == e.activity_id,
                                                 opinion_adoption.c.supervisor_id == e.supervisor_id)
        .scalar_subquery())  # one round trip: an earlier adoption notice is merged in by the INSERT itself
    stmt = insert(ledger_entry).values(
        supervisor_id=e.supervisor_id, year=e.activity_date.year, kind="activity", subkind=e.activity_type,
        occurred_on=e.activity_date, ref_id=e.activity_id, adopted=adopted,
        source_key=f"form:{e.form_id}:{e.supervisor_id}",
        details={"form_id": str(e.form_id), "activity_id": str(e.activity_id), "activity_type": e.activity_type,
                 "district": e.district, "signed_at": e.signed_at.isoformat()},
    ).on_conflict_do_nothing(index_elements=[ledger_entry.c.source_key]).returning(ledger_entry.c.id)
    return (await session.scalar(stmt)) is not None


async def record_adoption(session: AsyncSession, e: OpinionAdoptionNotified) -> None:
    """R18.1 → R28.1: whether the opinion was adopted, on the matching activity entry (any arrival order)."""
    stmt = insert(opinion_adoption).values(activity_id=e.activity_id, supervisor_id=e.supervisor_id,
                                           adopted=e.adopted, notified_at=e.notified_at)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=[opinion_adoption.c.activity_id, opinion_adoption.c.supervisor_id],
        set_={"adopted": e.adopted, "notified_at": e.notified_at}))
    await session.execute(update(ledger_entry).where(
        ledger_entry.c.kind == "activity", ledger_entry.c.ref_id == e.activity_id,
        ledger_entry.c.supervisor_id == e.supervisor_id).values(adopted=e.adopted))


async def record_training(session: AsyncSession, e: TrainingRecorded) -> None:
    """R28.1(2): one training entry per (session, person); a corrected record replaces the earlier one."""
    values = dict(supervisor_id=e.supervisor_id, year=e.date.year, kind="training", subkind=e.kind,
                  occurred_on=e.date, ref_id=e.session_id, hours=e.hours, attended=e.attended,
                  details={"format": e.format, "exam_passed": e.exam_passed, "centralized": e.centralized})
    stmt = insert(ledger_entry).values(**values, source_key=f"training:{e.session_id}:{e.supervisor_id}")
    await session.execute(stmt.on_conflict_do_update(index_elements=[ledger_entry.c.source_key], set_=values))


async def record_late_change_report(session: AsyncSession, e: ChangeReportRecorded) -> None:
    """R6.1 → R28.1: a late personal-information change report counts in the ledger (on time: nothing)."""
    if not e.late:
        return
    await session.execute(insert(ledger_entry).values(
        supervisor_id=e.supervisor_id, year=e.reported_on.year, kind="late_change_report",
        subkind="late_change_report", occurred_on=e.reported_on, ref_id=e.report_id,
        details={"changed_on": e.changed_on.isoformat(), "reported_on": e.reported_on.isoformat()},
        source_key=f"change_report:{e.report_id}",
    ).on_conflict_do_nothing(index_elements=[ledger_entry.c.source_key]))


async def record_absence(session: AsyncSession, e: SupervisorAbsenceRecorded) -> None:
    """R28.1(1), R32.1(1): a confirmed supervisor who did not attend, as the bureau recorded it (once)."""
    await session.execute(insert(ledger_entry).values(
        supervisor_id=e.supervisor_id, year=e.activity_date.year, kind="absence", subkind="absence",
        occurred_on=e.activity_date, ref_id=e.activity_id, recorded_by=e.recorded_by,
        details={"request_id": str(e.request_id), "reason": e.reason, "recorded_at": e.recorded_at.isoformat()},
        source_key=f"absence:{e.request_id}:{e.supervisor_id}",
    ).on_conflict_do_nothing(index_elements=[ledger_entry.c.source_key]))


async def record_conduct(session: AsyncSession, *, actor: str, supervisor_id: uuid.UUID, conduct_kind: str,
                         text: str, occurred_on: date, ground: int | None) -> int:
    """R28.1(3)(4), R6.1, R32.1: a record the bureau enters (a reminder, or conduct that went on after one,
    names the ground it is about); a record is of something that happened: never dated after today."""
    if occurred_on > clock.today():
        raise Unprocessable("R28.1", "记录日期晚于今天", f"台账只记录已发生的情况：日期 {occurred_on} 晚于今天。")
    if conduct_kind == "uncorrected" and ground is None:
        raise Unprocessable("R32.1", "须注明情形",
                            "依据规则 R32.1，“经提醒教育仍未改正”的记录须注明第三十二条情形（1–5）。")
    kind, _ = CONDUCT_KINDS[conduct_kind]
    return await session.scalar(insert(ledger_entry).values(
        supervisor_id=supervisor_id, year=occurred_on.year, kind=kind, subkind=conduct_kind,
        occurred_on=occurred_on, ground=ground if conduct_kind in GROUNDED else None,
        details={"text": text}, source_key=f"conduct:{uuid.uuid4()}", recorded_by=actor,
    ).returning(ledger_entry.c.id))


# --- figures by SQL aggregation ------------------------------------------------------------------

L = ledger_entry.c


def figures_columns() -> list:
    """The aggregate columns of Figures (one pass over the year's entries, grouped by person)."""
    is_training = and_(L.kind == "training", L.attended.is_(True))
    return [
        func.count().filter(L.kind == "activity").label("activities"),
        func.count().filter(and_(L.kind == "activity", L.adopted.is_(True))).label("adopted"),
        func.coalesce(func.sum(L.hours).filter(is_training), 0.0).label("training_hours"),
        func.count().filter(is_training).label("trainings_attended"),
        # R23.1: the year's centralized training (annual or term session, unless the registry says it was not)
        func.coalesce(func.bool_or(and_(is_training, L.subkind.in_(("annual", "term")),
                                        func.coalesce(L.details["centralized"].as_boolean(), True))), false()).label(
            "attended_annual_training"),
        func.count().filter(L.subkind == "reminder").label("reminders"),
        func.count().filter(L.subkind.in_(("law_abiding", "ethics"))).label("conduct_records"),
        func.count().filter(L.kind == "other").label("other_activities"),
        func.count().filter(L.kind == "late_change_report").label("late_change_reports"),
        func.count().filter(L.kind == "absence").label("absences"),
    ]


def figures_query(year: int, supervisor_ids: Sequence[uuid.UUID] | None = None) -> Select:
    """Per-person figures of `year` (only people with entries appear), ordered by supervisor id."""
    query = select(L.supervisor_id, *figures_columns()).where(L.year == year).group_by(L.supervisor_id)
    if supervisor_ids is not None:
        query = query.where(L.supervisor_id.in_(supervisor_ids))
    return query.order_by(L.supervisor_id)


def to_figures(row) -> Figures:
    """Figures of a row; a person without entries (outer join: NULLs) has zero figures."""
    m = row._mapping
    values = {}
    for k, f in Figures.__dataclass_fields__.items():
        v = m[k]
        values[k] = f.default if v is None else (float(v) if k == "training_hours" else v)
    return Figures(**values)


def year_people(year: int):
    """R28.1: everyone of a year's ledger: serving that year, appraised in its annual round, or with entries."""
    start, end = date(year, 1, 1), date(year, 12, 31)
    serving = select(supervisor.c.id.label("sid")).where(
        supervisor.c.status == "active", or_(supervisor.c.term_start.is_(None), supervisor.c.term_start <= end),
        or_(supervisor.c.term_end.is_(None), supervisor.c.term_end >= start))
    appraised = select(participant.c.supervisor_id.label("sid")).join(
        appraisal_round, appraisal_round.c.id == participant.c.round_id).where(
        appraisal_round.c.kind == "annual", appraisal_round.c.year == year)
    with_entries = select(L.supervisor_id.label("sid")).where(L.year == year)
    return union(serving, appraised, with_entries).subquery("people")


def summary_query(year: int, *, district: str | None = None) -> Select:
    """R28.1: every person of the year (with or without entries) with name, district, employer and figures."""
    people = year_people(year)
    figs = select(L.supervisor_id, *figures_columns()).where(L.year == year).group_by(L.supervisor_id).subquery()
    query = (select(people.c.sid.label("supervisor_id"), supervisor.c.name, supervisor.c.district,
                    supervisor.c.employer, *[figs.c[k] for k in Figures.__dataclass_fields__])
             .select_from(people.outerjoin(supervisor, supervisor.c.id == people.c.sid)
                          .outerjoin(figs, figs.c.supervisor_id == people.c.sid)))
    if district is not None:
        query = query.where(supervisor.c.district == district)
    return query.order_by(supervisor.c.district, supervisor.c.name, people.c.sid)


async def figures_of(session: AsyncSession, supervisor_id: uuid.UUID, year: int) -> Figures:
    row = (await session.execute(figures_query(year, [supervisor_id]))).first()
    return to_figures(row) if row else Figures()


async def stream_summary(session: AsyncSession, year: int, *, district: str | None = None,
                         batch: int = 2000) -> AsyncIterator:
    """R28.1: every person of `year` (with or without entries), streamed from a server-side cursor."""
    result = await session.stream(summary_query(year, district=district).execution_options(yield_per=batch))
    async for row in result:
        yield row


async def stream_figures(session: AsyncSession, year: int, *, district: str | None = None,
                         batch: int = 2000) -> AsyncIterator[tuple[uuid.UUID, Figures]]:
    """Every person's figures of `year` (everyone of the year, R28.1), streamed (bounded memory)."""
    async for row in stream_summary(session, year, district=district, batch=batch):
        yield row.supervisor_id, to_figures(row)


async def conduct_dates(session: AsyncSession, supervisor_id: uuid.UUID, *, since: date,
                        until: date) -> tuple[dict[int, list[date]], dict[int, list[date]]]:
    """R32.1: (ground → reminder dates, ground → dates the conduct is on record) between `since` and `until`.

    Conduct on record: a reminder or an "uncorrected" record of the ground; for ground (1) also an absence
    from a confirmed activity and a training not attended."""
    rows = await session.execute(select(L.kind, L.subkind, L.ground, L.attended, L.occurred_on).where(
        L.supervisor_id == supervisor_id, L.occurred_on >= since, L.occurred_on <= until,
        or_(L.subkind.in_(GROUNDED), L.kind == "absence", and_(L.kind == "training", L.attended.is_(False)))))
    reminders: dict[int, list[date]] = {}
    conduct: dict[int, list[date]] = {}
    for kind, subkind, ground, _attended, on in rows:
        if subkind in GROUNDED and ground is not None:
            conduct.setdefault(ground, []).append(on)
            if subkind == "reminder":
                reminders.setdefault(ground, []).append(on)
        elif kind in ("absence", "training"):
            conduct.setdefault(1, []).append(on)
    return reminders, conduct


async def entries(session: AsyncSession, supervisor_id: uuid.UUID, year: int) -> Sequence:
    return (await session.execute(select(ledger_entry).where(L.supervisor_id == supervisor_id, L.year == year)
                                  .order_by(L.occurred_on, L.id))).all()


async def comparable(session: AsyncSession, supervisor_id: uuid.UUID) -> list[tuple]:
    """Every entry of a person without surrogate ids/timestamps (tests compare live vs replayed ledgers)."""
    rows = await session.execute(select(L.year, L.kind, L.subkind, L.occurred_on, L.ref_id, L.adopted, L.hours,
                                        L.attended, L.ground, L.source_key)
                                 .where(L.supervisor_id == supervisor_id).order_by(L.source_key))
    return [tuple(r) for r in rows]


def clean(row: list) -> list:
    """Cell values safe for xlsx: control characters (which openpyxl refuses) are dropped from strings."""
    return [ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v for v in row]


def export_xlsx(*, person: dict, year: int, figures: Figures, rows: Sequence) -> bytes:
    """R28.1: the ledger of one person-year as an xlsx workbook (figures sheet + entries sheet)."""
    wb = Workbook(write_only=True)
    summary = wb.create_sheet("台账汇总")
    _widths(summary, [max(FIGURE_ZH.values(), key=_width), ""], {1: 24})
    summary.append(clean([f"人民监督员履职工作台账（{year}年度）"]))
    summary.append(clean(["姓名", person.get("name") or ""]))
    summary.append(clean(["区市", person.get("district") or ""]))
    summary.append(clean(["工作单位", person.get("employer") or ""]))
    for key, label in FIGURE_ZH.items():
        value = getattr(figures, key)
        summary.append(clean([label, ("是" if value else "否") if isinstance(value, bool) else value]))
    sheet = wb.create_sheet("台账明细")
    headers = ["日期", "类别", "细类", "意见是否采纳", "学时", "是否参加", "第三十二条情形", "说明"]
    _widths(sheet, headers, {0: 12, 7: 40})
    sheet.append(clean(headers))
    for r in rows:
        adopted = "" if r.adopted is None else ("采纳" if r.adopted else "未采纳")
        attended = "" if r.attended is None else ("是" if r.attended else "否")
        sheet.append(clean([r.occurred_on, KIND_ZH.get(r.kind, r.kind), subkind_label(r.kind, r.subkind), adopted,
                            r.hours, attended, f"第（{r.ground}）项" if r.ground else "",
                            (r.details or {}).get("text", "")]))
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def _width(text: str) -> int:
    """Display width of a header: CJK characters count two."""
    return sum(2 if ord(c) > 0x2E7F else 1 for c in text)


def _widths(sheet, headers: Sequence[str], minimum: dict[int, int] | None = None) -> None:
    """Column widths so no header is cut off (write-only sheets: set before the first row)."""
    from openpyxl.utils import get_column_letter

    for i, header in enumerate(headers):
        width = max(_width(header) + 2, (minimum or {}).get(i, 0), 8)
        sheet.column_dimensions[get_column_letter(i + 1)].width = width


async def export_district_xlsx(session: AsyncSession, year: int, *, district: str | None) -> bytes:
    """R28.1: everyone of a year (one district or all), with or without entries, as xlsx, streamed row by row:
    Chinese labels, no internal ids, headers never cut off."""
    wb = Workbook(write_only=True)
    sheet = wb.create_sheet("年度台账汇总")
    headers = ["序号", "姓名", "区市", "工作单位", *FIGURE_ZH.values()]
    _widths(sheet, headers, {1: 10, 2: 10, 3: 24})
    sheet.append(clean([f"人民监督员履职工作台账汇总（{year}年度{'，' + district if district else ''}）"]))
    sheet.append(clean(headers))
    n = 0
    async for row in stream_summary(session, year, district=district, batch=1000):
        n += 1
        f = to_figures(row)
        sheet.append(clean([n, row.name or "（未登记姓名）", row.district or "", row.employer or "",
                            *[("是" if v else "否") if isinstance(v, bool) else v
                              for v in (getattr(f, k) for k in FIGURE_ZH)]]))
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()

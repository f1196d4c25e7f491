"""Casework's due and overdue items for `GET /deadlines` (shared/deadlines.py), each citing the rule that sets it:

- R15.1 `materials_due`: an activity with confirmed supervisors and no materials yet, due on its day;
- R17.1 `signature_due`: confirmed supervisors who have not signed the feedback form, due on the day it ends;
- R20.1 `participation_report_due`: participation reported within 3 working days after the activity ends;
- R20.2 `transmittal_due`: the month's signed forms sent to the bureau by the 5th of the next month (moved to
  the next working day), per office and month, counting forms signed late into the next transmittal.

All are the procuratorate's to do; the district is the activity's. Read only, nothing here commits.
"""

from datetime import timedelta

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.casework import rules
from services.casework.access import live_roster
from services.casework.models import activity, feedback_form, material, participation_report, roster, signature
from services.casework.reports.service import owed_transmittals
from shared import clock
from shared.calendar import WorkingCalendar
from shared.clock import local_date, local_midnight
from shared.deadlines import Deadline, DeadlineQuery

PROCURATORATE = ["procuratorate"]



def _in_district(district: str | None) -> list:
    return [] if district is None else [activity.c.district == district]


async def materials_due(session: AsyncSession, query: DeadlineQuery) -> list[Deadline]:
    """R15.1: open activities not over yet, with a confirmed supervisor and no materials provided."""
    confirmed = exists().where(roster.c.activity_id == activity.c.id, roster.c.status == "confirmed", live_roster())
    rows = (await session.execute(select(activity.c.id, activity.c.case_ref, activity.c.district,
                                         activity.c.starts_at).where(
        activity.c.status == "open", activity.c.ends_at > clock.now(),
        activity.c.starts_at < local_midnight(query.horizon + timedelta(days=1)), confirmed,
        ~exists().where(material.c.activity_id == activity.c.id), *_in_district(query.district)))).all()
    return [Deadline(rule="R15.1", kind="materials_due", subject_type="activity", subject_id=str(r.id),
                     title=f"{r.case_ref}：活动前向确认参加的人民监督员提供案件材料（R15.1）",
                     district=r.district, roles=PROCURATORATE, due_on=rules.materials_due(r.starts_at),
                     due_at=r.starts_at) for r in rows]


async def signatures_due(session: AsyncSession, query: DeadlineQuery) -> list[Deadline]:
    """R17.1: activities (not cancelled) whose confirmed supervisors have not all signed the form."""
    unsigned = ~exists().where(feedback_form.c.activity_id == activity.c.id, signature.c.form_id == feedback_form.c.id,
                               signature.c.supervisor_id == roster.c.supervisor_id)
    rows = (await session.execute(
        select(activity.c.id, activity.c.case_ref, activity.c.district, activity.c.ends_at,
               func.count().label("unsigned"))
        .select_from(activity.join(roster, roster.c.activity_id == activity.c.id))
        .where(activity.c.status != "cancelled", roster.c.status == "confirmed", live_roster(), unsigned,
               activity.c.ends_at < local_midnight(query.horizon + timedelta(days=1)), *_in_district(query.district))
        .group_by(activity.c.id))).all()
    return [Deadline(rule="R17.1", kind="signature_due", subject_type="activity", subject_id=str(r.id),
                     title=f"{r.case_ref}：{r.unsigned}名人民监督员尚未在反馈表上现场签字（R17.1）",
                     district=r.district, roles=[*PROCURATORATE, "supervisor"],
                     due_on=rules.signature_due(r.ends_at), due_at=r.ends_at) for r in rows]


async def reports_due(session: AsyncSession, query: DeadlineQuery, calendar: WorkingCalendar) -> list[Deadline]:
    """R20.1: activities with supervisors (not cancelled) whose participation is not reported yet."""
    with_roster = exists().where(roster.c.activity_id == activity.c.id, live_roster())
    reported = exists().where(participation_report.c.activity_id == activity.c.id)
    rows = (await session.execute(select(activity.c.id, activity.c.case_ref, activity.c.district,
                                         activity.c.ends_at).where(
        activity.c.status != "cancelled", with_roster, ~reported,
        activity.c.ends_at < local_midnight(query.horizon + timedelta(days=1)), *_in_district(query.district)))).all()
    items = []
    for r in rows:
        due, _provisional = rules.report_due(local_date(r.ends_at), calendar)
        items.append(Deadline(rule="R20.1", kind="participation_report_due", subject_type="activity",
                              subject_id=str(r.id), district=r.district, roles=PROCURATORATE, due_on=due,
                              title=f"{r.case_ref}：活动结束后三个工作日内向市司法局通报履职情况（R20.1）"))
    return items


async def transmittals_due(session: AsyncSession, query: DeadlineQuery, calendar: WorkingCalendar) -> list[Deadline]:
    """R20.2: per office and month, the signed forms not sent to the bureau yet."""
    items = []
    for (office, month), owed in (await owed_transmittals(session, district=query.district)).items():
        due, _provisional = rules.transmittal_due(month, calendar)
        items.append(Deadline(rule="R20.2", kind="transmittal_due", subject_type="transmittal",
                              subject_id=f"{office}/{month:%Y-%m}", district=owed["district"], roles=PROCURATORATE,
                              due_on=due, title=f"{office}：{month.year}年{month.month}月的{len(owed['forms'])}份"
                                                f"反馈表应于{due.month}月{due.day}日前汇总转送市司法局（R20.2）"))
    return items


async def compute(session: AsyncSession, query: DeadlineQuery, *, calendar: WorkingCalendar) -> list[Deadline]:
    """Every open casework item due on or before the query's horizon (overdue ones included)."""
    return [*await materials_due(session, query), *await signatures_due(session, query),
            *await reports_due(session, query, calendar), *await transmittals_due(session, query, calendar)]

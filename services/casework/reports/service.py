"""Reports to the bureau: participation (R20.1) and the monthly transmittal (R20.2).
The caller owns the transaction: nothing here commits."""

import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.casework import rules
from services.casework.access import (
    audit_log,
    live_roster,
)
from services.casework.activities.service import confirmed_count
from services.casework.models import (
    activity,
    feedback_form,
    participation_report,
    roster,
    signature,
    transmittal,
    transmittal_item,
)
from shared import clock
from shared.auth import Principal
from shared.calendar import WorkingCalendar
from shared.clock import local_date, local_midnight
from shared.documents import official
from shared.errors import Conflict, NotFound, Unprocessable

# --- reports to the bureau (R20.1, R20.2) ---------------------------------------------------------

async def report_participation(session: AsyncSession, *, act, calendar: WorkingCalendar, note: str,
                               principal: Principal) -> dict[str, Any]:
    """R20.1: participation reported to the bureau; due 3 working days after the activity ends (N-MUST: a mandatory
    activity is not reported done without a confirmed supervisor)."""
    if act.status == "cancelled":
        rules.check_activity_open(act.status)
    if not await session.scalar(select(exists().where(roster.c.activity_id == act.id, live_roster()))):
        raise Conflict("R20.1", "该活动没有人民监督员参加", "没有人民监督员参加的活动无需通报履职情况。")
    rules.check_can_close(act.mandatory_invitation, await confirmed_count(session, act.id))
    due, provisional = rules.report_due(local_date(act.ends_at), calendar)
    at = clock.now()
    row = (await session.execute(insert(participation_report).values(
        activity_id=act.id, due_on=due, reported_by=principal.subject, reported_at=at, note=note)
        .on_conflict_do_nothing().returning(*participation_report.c))).first()
    if row is None:
        raise Conflict("already_reported", "已通报", "该活动的履职情况已通报市司法局。")
    await audit_log(session, actor=principal.subject, action="report.participation", subject=f"activity:{act.id}")
    return {"activity_id": act.id, "due_on": due, "reported_at": row.reported_at,
            "on_time": not rules.is_overdue(due, local_date(row.reported_at), local_date(at)),
            "provisional": provisional}


def _shanghai_day(column):
    return func.date(func.timezone("Asia/Shanghai", column))



async def overdue_participation(session: AsyncSession, *, calendar: WorkingCalendar, as_of: date,
                                principal: Principal, office: str | None, limit: int,
                                offset: int) -> tuple[list[dict[str, Any]], int]:
    """R20.1: activities with supervisors whose report is late or missing as of `as_of`, oldest end first, paged.

    The query selects what is overdue itself: unreported activities that ended on or before the cutoff
    (`rules.report_overdue_cutoff`), and reports made after their due date.
    """
    cutoff = rules.report_overdue_cutoff(as_of, calendar)
    reported_on = _shanghai_day(participation_report.c.reported_at)
    missing = and_(participation_report.c.activity_id.is_(None), activity.c.ends_at < local_midnight(
        cutoff + timedelta(days=1)))
    late = reported_on > participation_report.c.due_on
    with_roster = exists().where(roster.c.activity_id == activity.c.id, live_roster())
    where = [activity.c.status != "cancelled", with_roster, or_(missing, late)]
    if not principal.is_citywide:
        where.append(activity.c.district == principal.district)
    if office:
        where.append(activity.c.office == office)
    base = (select(activity.c.id, activity.c.case_ref, activity.c.office, activity.c.district, activity.c.ends_at,
                   participation_report.c.reported_at)
            .outerjoin(participation_report, participation_report.c.activity_id == activity.c.id).where(*where))
    total = await session.scalar(select(func.count()).select_from(base.subquery()))
    rows = (await session.execute(base.order_by(activity.c.ends_at, activity.c.id).limit(limit)
                                  .offset(offset))).all()
    out = []
    for r in rows:
        due, provisional = rules.report_due(local_date(r.ends_at), calendar)
        out.append({"activity_id": r.id, "case_ref": r.case_ref, "office": r.office, "district": r.district,
                    "ended_on": local_date(r.ends_at), "due_on": due,
                    "reported_on": local_date(r.reported_at) if r.reported_at else None, "provisional": provisional})
    return out, total or 0


def _untransmitted(office: str | None = None):
    """R20.2: signatures (of forms of live activities) not yet in any transmittal."""
    stmt = (select(activity.c.office, activity.c.district, activity.c.starts_at, signature.c.form_id,
                   signature.c.supervisor_id, signature.c.signed_at)
            .select_from(signature.join(feedback_form, feedback_form.c.id == signature.c.form_id)
                         .join(activity, activity.c.id == feedback_form.c.activity_id))
            .where(~exists().where(transmittal_item.c.form_id == signature.c.form_id,
                                   transmittal_item.c.supervisor_id == signature.c.supervisor_id)))
    return stmt.where(activity.c.office == office) if office else stmt


async def send_transmittal(session: AsyncSession, *, office: str, month: date, calendar: WorkingCalendar,
                           principal: Principal, today: date) -> dict[str, Any]:
    """R20.2: the signed forms of an office not sent yet, of activities up to `month`, sent to the bureau (due on the
    5th of the next month, moved to the next working day); a form signed after an earlier transmittal is carried
    into this one. Each signature goes in exactly one transmittal."""
    if month >= today.replace(day=1):
        raise Unprocessable("R20.2", "只能汇总已结束月份的反馈表", "每月汇总转送的是上月及以前的反馈表。")
    items = (await session.execute(_untransmitted(office).where(
        activity.c.starts_at < local_midnight(rules.next_month(month))))).all()
    forms = sorted({str(i.form_id) for i in items})
    carried = sorted({str(i.form_id) for i in items if local_date(i.starts_at) < month})
    due, _provisional = rules.transmittal_due(month, calendar)
    transmittal_id, at = uuid.uuid4(), clock.now()
    row = (await session.execute(insert(transmittal).values(
        id=transmittal_id, office=office, month=month, due_on=due, form_ids=forms, sent_by=principal.subject,
        sent_at=at).on_conflict_do_nothing().returning(*transmittal.c))).first()
    if row is None:
        raise Conflict("already_sent", "该月反馈表已转送", "同一单位同一月份只转送一次。")
    if items:
        await session.execute(insert(transmittal_item), [
            {"form_id": i.form_id, "supervisor_id": i.supervisor_id, "transmittal_id": transmittal_id} for i in items])
    await audit_log(session, actor=principal.subject, action="report.transmittal", subject=f"transmittal:{row.id}",
                 month=month.isoformat(), forms=len(forms), signatures=len(items), carried_over=len(carried))
    return {**transmittal_dict(row), "signatures": len(items), "carried_over": carried}


TRANSMITTAL_KIND = "transmittal_letter"
TRANSMITTAL_CODE = "威检监函"  # the cover letter's 文号: 威检监函〔2026〕3号 (a sequence per year)


def transmittal_letter(r, *, signatures: int, bureau: str) -> dict[str, Any]:
    """R20.2: the cover letter (函) of a month's transmittal, from the office to the bureau, GB/T 9704 layout."""
    month = f"{r.month.year}年{r.month.month}月"
    forms = len(r.form_ids)
    body = (f"根据《威海市人民监督员履职管理实施办法》的规定，现将我院{month}人民监督员参加监督办案活动的"
            f"《{rules.FORM_TITLE}》共{forms}份（人民监督员签字{signatures}人次）汇总转送你局，请查收。"
            if forms else f"我院{month}无人民监督员签字确认的《{rules.FORM_TITLE}》需转送，特此函告。")
    return official.notice(authority=r.office, title=f"关于转送{month}人民监督员履职情况反馈表的函", addressee=bureau,
                           paragraphs=[body, "特此函告。"] if forms else [body],
                           attachments=[f"《{rules.FORM_TITLE}》{forms}份"] if forms else [],
                           issuer=r.office, on=local_date(r.sent_at))


async def transmittal_of(session: AsyncSession, transmittal_id: uuid.UUID):
    """R20.2: a transmittal, its office's district and its signature count (404 if none)."""
    row = (await session.execute(select(transmittal).where(transmittal.c.id == transmittal_id))).first()
    if row is None:
        raise NotFound("转送记录", transmittal_id)
    signatures = await session.scalar(select(func.count()).select_from(transmittal_item)
                                      .where(transmittal_item.c.transmittal_id == transmittal_id))
    district = await session.scalar(select(activity.c.district).where(activity.c.office == row.office).limit(1))
    return row, district, signatures or 0


def transmittal_dict(r) -> dict[str, Any]:
    sent_on = local_date(r.sent_at)
    return {"id": r.id, "office": r.office, "month": r.month.strftime("%Y-%m"), "due_on": r.due_on,
            "form_ids": r.form_ids, "sent_by": r.sent_by, "sent_at": r.sent_at,
            "on_time": not rules.is_overdue(r.due_on, sent_on, sent_on)}


async def owed_transmittals(session: AsyncSession, *, district: str | None) -> dict[tuple[str, date], dict[str, Any]]:
    """R20.2: (office, month) → {district, forms} of the signatures not sent yet, each in the month whose
    transmittal it belongs to (`rules.transmittal_period`)."""
    pending = _untransmitted()
    if district is not None:
        pending = pending.where(activity.c.district == district)
    owed = (await session.execute(pending)).all()
    offices = sorted({o.office for o in owed})
    sent: dict[str, set[date]] = {office: set() for office in offices}
    if offices:
        for t in (await session.execute(select(transmittal.c.office, transmittal.c.month).where(
                transmittal.c.office.in_(offices)))).all():
            sent[t.office].add(t.month)
    periods: dict[tuple[str, date], dict[str, Any]] = {}
    for o in owed:
        period = rules.transmittal_period(local_date(o.starts_at), local_date(o.signed_at), sent[o.office])
        periods.setdefault((o.office, period), {"district": o.district, "forms": set()})["forms"].add(str(o.form_id))
    return periods


async def overdue_transmittals(session: AsyncSession, *, calendar: WorkingCalendar, as_of: date,
                               principal: Principal) -> list[dict[str, Any]]:
    """R20.2: (office, month) whose transmittal was sent late, or is owed (signatures not sent) and past due."""
    out = []
    late = select(transmittal).where(_shanghai_day(transmittal.c.sent_at) > transmittal.c.due_on)
    if not principal.is_citywide:
        late = late.where(exists().where(activity.c.office == transmittal.c.office,
                                         activity.c.district == principal.district))
    for t in (await session.execute(late)).all():
        out.append({"office": t.office, "month": t.month.strftime("%Y-%m"), "due_on": t.due_on,
                    "forms": len(t.form_ids), "sent_on": local_date(t.sent_at)})
    owed = await owed_transmittals(session, district=None if principal.is_citywide else principal.district)
    for (office, month), period in owed.items():
        due, _provisional = rules.transmittal_due(month, calendar)
        if rules.is_overdue(due, None, as_of):
            out.append({"office": office, "month": month.strftime("%Y-%m"), "due_on": due,
                        "forms": len(period["forms"]), "sent_on": None})
    return sorted(out, key=lambda x: (x["month"], x["office"]))

"""Case activities (N-ACT, N-MUST): create, hold, cancel, reschedule; their materials (R15.1, R3.1) and
observers (R19.1). The caller owns the transaction: nothing here commits."""

import hashlib
import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.casework import rules
from services.casework.access import (
    audit_log,
    ensure_office,
    is_participant,
    live_roster,
)
from services.casework.feedback.service import form_of, participants
from services.casework.models import (
    activity,
    activity_reschedule,
    material,
    observer,
    roster,
    signature,
)
from services.casework.requests.service import (
    cancel_request_row,
    current_request,
    new_request,
    require_request,
)
from shared import activity_types, clock
from shared.auth import Principal, Role, ensure_district, forbidden
from shared.calendar import WorkingCalendar
from shared.clock import local_date, local_midnight
from shared.crypto import FieldCipher
from shared.db import read
from shared.errors import Conflict, NotFound, ProblemError, Unprocessable
from shared.events.contracts import MaterialsShared
from shared.events.outbox import Outbox
from shared.lead_time import check_lead_time

# --- activities (N-ACT, N-MUST) -------------------------------------------------------------------

def activity_dict(act) -> dict[str, Any]:
    return {
        "id": act.id, "case_ref": act.case_ref, "activity_type": act.activity_type,
        "activity_type_label": activity_types.label(act.activity_type), "other_description": act.other_description,
        "hearing_matter": act.hearing_matter,
        "hearing_matter_label": rules.HEARING_MATTERS.get(act.hearing_matter) if act.hearing_matter else None,
        "mandatory_invitation": act.mandatory_invitation, "office": act.office, "district": act.district,
        "starts_at": act.starts_at, "ends_at": act.ends_at, "place": act.place, "summary": act.summary,
        "status": act.status, "created_by": act.created_by, "created_at": act.created_at, "held_at": act.held_at,
        "cancellation": ({"reason": act.cancel_reason, "by": act.cancelled_by, "at": act.cancelled_at}
                         if act.cancelled_at is not None else None),
    }


async def create_activity(session: AsyncSession, *, data: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """N-ACT: a case activity of the caller's office; N-MUST: the flag follows the matter the measures name."""
    rules.check_activity_type(data["activity_type"], data.get("other_description"))
    rules.check_window(data["starts_at"], data["ends_at"])
    mandatory = rules.mandatory_invitation(data["activity_type"], data.get("hearing_matter"),
                                           data.get("mandatory_invitation"))
    if not principal.has(Role.PROCURATORATE):
        raise forbidden("此操作仅限检察院。")
    ensure_district(principal, data["district"])
    office = data.get("office") or principal.office
    if not office:
        raise Unprocessable("office_required", "请填写承办检察院", "令牌未载明单位时须填写 office。")
    if principal.office and office != principal.office:
        raise ProblemError(403, "R2.1", "超出本院范围", "只能为本院登记办案活动。")
    activity_id = uuid.uuid4()
    row = (await session.execute(insert(activity).values(
        id=activity_id, case_ref=data["case_ref"], activity_type=data["activity_type"],
        other_description=data.get("other_description"), hearing_matter=data.get("hearing_matter"),
        mandatory_invitation=mandatory, office=office, district=data["district"], starts_at=data["starts_at"],
        ends_at=data["ends_at"], place=data["place"], summary=data.get("summary") or "", created_by=principal.subject,
    ).returning(*activity.c))).one()
    return activity_dict(row)


async def update_summary(session: AsyncSession, *, act, summary: str) -> dict[str, Any]:
    """R17.1: the summary is part of the form; frozen after the first signature."""
    rules.check_not_frozen(await form_of(session, act.id) is not None)
    row = (await session.execute(update(activity).where(activity.c.id == act.id).values(summary=summary)
                                 .returning(*activity.c))).one()
    return activity_dict(row)


async def confirmed_count(session: AsyncSession, activity_id: uuid.UUID) -> int:
    """Supervisors confirmed (not released, not absent) on the activity's live roster (N-MUST)."""
    return await session.scalar(select(func.count()).select_from(roster).where(
        roster.c.activity_id == activity_id, roster.c.status == "confirmed", live_roster())) or 0


async def hold(session: AsyncSession, *, act, principal: Principal) -> dict[str, Any]:
    """N-MUST: mark the activity held (closed), only once it has begun; a mandatory one needs a confirmed supervisor."""
    if act.status == "cancelled":
        rules.check_activity_open(act.status)
    if act.status == "held":
        return activity_dict(act)
    rules.check_started(act.starts_at, clock.now(), code="activity_not_started")
    confirmed = await confirmed_count(session, act.id)
    rules.check_can_close(act.mandatory_invitation, confirmed)
    row = (await session.execute(update(activity).where(activity.c.id == act.id).values(
        status="held", held_at=clock.now(), held_by=principal.subject).returning(*activity.c))).one()
    await audit_log(session, actor=principal.subject, action="activity.held", subject=f"activity:{act.id}",
                 confirmed=confirmed)
    return activity_dict(row)


async def cancel_activity(session: AsyncSession, *, outbox: Outbox, act, reason: str,
                          principal: Principal) -> dict[str, Any]:
    """The activity will not take place: its live request is withdrawn (bookings freed, `served` not counted).

    Allowed while it is open and nobody signed its form, also after its start (a hearing called off on the day).
    A mandatory (N-MUST) activity may be cancelled: it does not close without supervisors, it does not happen.
    """
    rules.check_activity_changeable(act.status, form_exists=await form_of(session, act.id) is not None)
    at = clock.now()
    req = await current_request(session, act.id)
    if req is not None:
        await cancel_request_row(session, outbox=outbox, req=await require_request(session, req.id, lock=True),
                                  act=act, reason=reason, principal=principal, at=at, activity_cancelled=True)
    row = (await session.execute(update(activity).where(activity.c.id == act.id).values(
        status="cancelled", cancel_reason=reason, cancelled_by=principal.subject, cancelled_at=at)
        .returning(*activity.c))).one()
    await audit_log(session, actor=principal.subject, action="activity.cancelled", subject=f"activity:{act.id}",
                 request_id=str(req.id) if req else None, mandatory=act.mandatory_invitation)
    return activity_dict(row)


async def reschedule(session: AsyncSession, *, outbox: Outbox, cipher: FieldCipher, calendar: WorkingCalendar,
                     act, data: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """A new time for an open activity nobody signed for: its live request is cancelled and a new one for the new
    time (same seats, specialty, parties; lead time judged again, R10.1/R10.2) replaces it, linked both ways.

    Everything or nothing: a new time too close refuses the whole reschedule (the old request stays).
    """
    rules.check_activity_changeable(act.status, form_exists=await form_of(session, act.id) is not None)
    rules.check_window(data["starts_at"], data["ends_at"])
    at = clock.now()
    old = await current_request(session, act.id)
    short_notice = data.get("short_notice")
    if old is not None:  # judged before anything changes
        decision = check_lead_time(calendar, notified_on=local_date(at), activity_on=local_date(data["starts_at"]),
                                   short_notice=short_notice is not None)
        rules.check_lead_time_answer(decision)
    new_id = uuid.uuid4() if old is not None else None
    if old is not None:
        await cancel_request_row(session, outbox=outbox, req=await require_request(session, old.id, lock=True),
                                  act=act, reason=f"改期：{data['reason']}"[:500], principal=principal, at=at,
                                  superseded_by=new_id)
    values = {"starts_at": data["starts_at"], "ends_at": data["ends_at"]}
    if data.get("place"):
        values["place"] = data["place"]
    moved = (await session.execute(update(activity).where(activity.c.id == act.id).values(**values)
                                   .returning(*activity.c))).one()
    request = None
    if old is not None:
        request = await new_request(
            session, outbox=outbox, cipher=cipher, calendar=calendar, act=moved, principal=principal,
            request_id=new_id, rescheduled_from=old.id,
            data={"seats": old.seats, "specialty": old.specialty, "conflict_parties": list(old.conflict_parties),
                  "short_notice": short_notice})
    await session.execute(insert(activity_reschedule).values(
        id=uuid.uuid4(), activity_id=act.id, previous_starts_at=act.starts_at, previous_ends_at=act.ends_at,
        starts_at=moved.starts_at, ends_at=moved.ends_at, reason=data["reason"],
        cancelled_request_id=old.id if old else None, request_id=new_id, rescheduled_by=principal.subject,
        rescheduled_at=at))
    await audit_log(session, actor=principal.subject, action="activity.rescheduled", subject=f"activity:{act.id}",
                 cancelled_request_id=str(old.id) if old else None, request_id=str(new_id) if new_id else None)
    return {"activity": activity_dict(moved), "previous_starts_at": act.starts_at, "previous_ends_at": act.ends_at,
            "reason": data["reason"], "cancelled_request_id": old.id if old else None, "request": request}



# field of a list item -> its SQL expression over a page's rows of casework.activity (evaluated after LIMIT): the
# fields of ActivityRead, in its order, as its JSON renders them (labels from the code's tables, timestamps as
# pydantic writes them; a unit test checks the fields, an integration test the rendering)
ACTIVITY_FIELDS = {
    "id": "id", "case_ref": "case_ref", "activity_type": "activity_type",
    "activity_type_label": read.label_case("activity_type", activity_types.LABELS,
                                           unknown="'未知类型（' || activity_type || '）'"),
    "other_description": "other_description", "hearing_matter": "hearing_matter",
    "hearing_matter_label": read.label_case("hearing_matter", rules.HEARING_MATTERS),
    "mandatory_invitation": "mandatory_invitation", "office": "office", "district": "district",
    "starts_at": read.iso_utc("starts_at"), "ends_at": read.iso_utc("ends_at"), "place": "place",
    "summary": "summary", "status": "status", "created_by": "created_by", "created_at": read.iso_utc("created_at"),
    "held_at": read.iso_utc("held_at"),
    "cancellation": "CASE WHEN cancelled_at IS NOT NULL THEN json_build_object('reason', cancel_reason, 'by', "
                    f"cancelled_by, 'at', {read.iso_utc('cancelled_at')}) END",
}


def activities_query(*, statuses: list[str], activity_types: list[str], case_ref: str | None, since: date | None,
                     until: date | None, district: str | None, office: str | None, descending: bool, limit: int,
                     after: list | None) -> tuple[str, list[Any]]:
    """SQL and arguments of one page of the activities work list in keyset order (shared.pagination): the exact
    total and the page's items rendered as JSON by PostgreSQL (`shared.db.read.json_page_sql`, as the registry's
    roster list), in one statement on the read engine. Filters are combined with AND; only fixed SQL text is
    concatenated, every value is a $n parameter. With only status/type/district/office filters the total comes
    from the trigger-kept `activity_tally` (migration 0008), otherwise it counts the matches. `limit + 1` rows are
    read to know whether more follow."""
    args: list[Any] = []

    def p(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    where = ["TRUE"]
    if statuses:
        where.append(f"status = ANY({p(statuses)}::text[])")
    if activity_types:
        where.append(f"activity_type = ANY({p(activity_types)}::text[])")
    if district is not None:
        where.append(f"district = {p(district)}::text")
    if office is not None:
        where.append(f"office = {p(office)}::text")
    tally = " AND ".join(where)  # the filters the trigger-kept activity_tally answers (its key's columns)
    if case_ref is not None:
        where.append(f"case_ref = {p(case_ref)}::text")
    if since is not None:
        where.append(f"starts_at >= {p(local_midnight(since))}::timestamptz")
    if until is not None:
        where.append(f"starts_at < {p(local_midnight(until + timedelta(days=1)))}::timestamptz")
    condition = " AND ".join(where)
    page_condition = condition
    if after is not None:
        page_condition += (f" AND (starts_at, id) {'<' if descending else '>'} "
                           f"({p(after[0])}::timestamptz, {p(after[1])}::uuid)")
    direction = "DESC" if descending else "ASC"
    page = (f"SELECT *, starts_at AS k1_, id AS k2_ FROM casework.activity WHERE {page_condition} "
            f"ORDER BY starts_at {direction}, id {direction} LIMIT {p(limit + 1)}")
    if condition == tally:  # no case number, no date range: the total from the tally, not a count of the rows
        head = f"SELECT coalesce(sum(n), 0) AS total_ FROM casework.activity_tally WHERE {tally}"
    else:
        head = f"SELECT count(*) AS total_ FROM casework.activity WHERE {condition}"
    return read.json_page_sql(head=head, page=page, fields=ACTIVITY_FIELDS, descending=descending), args


async def list_activities(conn: AsyncConnection, *, limit: int, **filters: Any
                          ) -> tuple[list[str], int, list | None]:
    """(the page's items as JSON texts, total, sort key of the last row when more follow): activities by status,
    activity date (Shanghai), N-ACT type, case number, district and office, in activity-time order with the id
    breaking ties."""
    sql, args = activities_query(limit=limit, **filters)
    return read.json_page_of(await read.fetch(conn, sql, *args), limit=limit)


# --- materials (R15.1, R3.1) ----------------------------------------------------------------------

async def add_material(session: AsyncSession, *, outbox: Outbox, act, title: str, content_type: str, content: bytes,
                       principal: Principal) -> dict[str, Any]:
    """R15.1: the procuratorate provides a material; the supervisors confirmed now are told (MaterialsShared)."""
    material_id = uuid.uuid4()
    row = (await session.execute(insert(material).values(
        id=material_id, activity_id=act.id, title=title, content_type=content_type, size=len(content),
        sha256=hashlib.sha256(content).hexdigest(), content=content, uploaded_by=principal.subject,
    ).returning(*material.c))).one()
    await audit_log(session, actor=principal.subject, action="material.added", subject=f"material:{material_id}",
                 activity_id=str(act.id), sha256=row.sha256)
    readers = [r.supervisor_id for r in await participants(session, act.id)]
    await outbox.add(session, MaterialsShared(activity_id=act.id, material_id=material_id,
                                              supervisor_ids=readers, shared_at=row.uploaded_at))
    return material_meta(row)


def material_meta(r) -> dict[str, Any]:
    return {"id": r.id, "activity_id": r.activity_id, "title": r.title, "content_type": r.content_type,
            "size": r.size, "sha256": r.sha256, "uploaded_by": r.uploaded_by, "uploaded_at": r.uploaded_at}


async def ensure_material_access(session: AsyncSession, principal: Principal, act) -> None:
    """R15.1/R3.1: procuratorate staff of the activity, or its confirmed supervisors until they signed the form
    (signatures are independent: one who has not signed does not keep the others' access open)."""
    if principal.has(Role.PROCURATORATE):
        ensure_office(principal, act)
        return
    if principal.has(Role.SUPERVISOR) and await is_participant(session, act.id, principal.supervisor_id):
        form = await form_of(session, act.id)
        if form is None or (form.completed_at is None and not await session.scalar(select(exists().where(
                signature.c.form_id == form.id, signature.c.supervisor_id == uuid.UUID(principal.supervisor_id))))):
            return
        raise ProblemError(403, "R15.1", "材料查阅期限已过",
                           "依据 R15.1、R3.1，反馈表签字完成后不再向人民监督员提供案件材料。")
    raise ProblemError(403, "R15.1", "无权查阅案件材料",
                       "依据 R15.1、R3.1，案件材料仅向承办检察院和确认参加该活动的人民监督员提供。")


async def list_materials(session: AsyncSession, *, act, principal: Principal) -> list[dict[str, Any]]:
    await ensure_material_access(session, principal, act)
    rows = (await session.execute(select(material).where(material.c.activity_id == act.id)
                                  .order_by(material.c.uploaded_at))).all()
    return [material_meta(r) for r in rows]


async def read_material(session: AsyncSession, *, act, material_id: uuid.UUID, principal: Principal):
    """R3.1: every read of case materials is audit-logged."""
    await ensure_material_access(session, principal, act)
    row = (await session.execute(select(material).where(material.c.id == material_id,
                                                        material.c.activity_id == act.id))).first()
    if row is None:
        raise NotFound("案件材料", material_id)
    await audit_log(session, actor=principal.subject, action="material.read", subject=f"material:{material_id}",
                 activity_id=str(act.id))
    return row


# --- observers (R19.1) ----------------------------------------------------------------------------

async def add_observer(session: AsyncSession, *, act, data: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """R19.1: bureau staff or a shadowing supervisor, recorded but not a participant (never paid)."""
    if data["kind"] == "shadowing_supervisor" and not data.get("supervisor_id"):
        raise Unprocessable("R19.1", "请填写跟案观摩的人民监督员", "跟案观摩须填写 supervisor_id。")
    if data.get("supervisor_id") and await is_participant(session, act.id, data["supervisor_id"]):
        raise Conflict("R19.1", "该人民监督员已是参加人员", "参加人员不能同时登记为观摩人员。")
    row = (await session.execute(insert(observer).values(
        id=uuid.uuid4(), activity_id=act.id, kind=data["kind"], name=data["name"],
        organization=data.get("organization"), supervisor_id=data.get("supervisor_id"),
        recorded_by=principal.subject).returning(*observer.c))).one()
    return observer_dict(row)


def observer_dict(r) -> dict[str, Any]:
    return {"id": r.id, "activity_id": r.activity_id, "kind": r.kind, "name": r.name,
            "organization": r.organization, "supervisor_id": r.supervisor_id, "paid": False,
            "recorded_by": r.recorded_by, "recorded_at": r.recorded_at}


async def list_observers(session: AsyncSession, activity_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = (await session.execute(select(observer).where(observer.c.activity_id == activity_id)
                                  .order_by(observer.c.recorded_at))).all()
    return [observer_dict(r) for r in rows]

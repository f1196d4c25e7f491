"""Statistics the bureau reports upward (issue 14): case activities by N-ACT type, district, office and month of a
year, computed by PostgreSQL (GROUP BY). Read only, nothing here commits."""

from typing import Any

from sqlalchemy import Integer, and_, case, cast, extract, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.casework import rules
from services.casework.models import activity, roster, supervision_request
from shared import activity_types
from shared.clock import local_period

GROUPS = ("activity_type", "district", "office", "month")
COUNTS = ("activities", "held", "cancelled", "mandatory", "supervised", "participations")


async def activities(session: AsyncSession, *, year: int, month: int | None, district: str | None,
                     group_by: list[str]) -> dict[str, Any]:
    """Rows per group: activities (not cancelled), held, cancelled, mandatory (N-MUST), supervised (with a confirmed
    supervisor), participations (confirmed supervisors, absent ones not counted); and the totals."""
    start, end = local_period(year, month)  # the activity's date decides
    participants = (select(func.count()).select_from(roster.join(
        supervision_request, supervision_request.c.id == roster.c.request_id))
        .where(roster.c.activity_id == activity.c.id, roster.c.status == "confirmed",
               supervision_request.c.status.not_in(rules.CLOSED_STATUSES)).scalar_subquery())
    where = [activity.c.starts_at >= start, activity.c.starts_at < end]
    if district is not None:
        where.append(activity.c.district == district)
    facts = select(activity.c.activity_type, activity.c.district, activity.c.office, activity.c.status,
                   activity.c.mandatory_invitation,
                   cast(extract("month", func.timezone("Asia/Shanghai", activity.c.starts_at)), Integer).label("month"),
                   participants.label("participants")).where(*where).subquery()
    live = facts.c.status != "cancelled"
    counts = [
        func.count().filter(live).label("activities"),
        func.count().filter(facts.c.status == "held").label("held"),
        func.count().filter(facts.c.status == "cancelled").label("cancelled"),
        func.count().filter(and_(live, facts.c.mandatory_invitation)).label("mandatory"),
        func.count().filter(and_(live, facts.c.participants > 0)).label("supervised"),
        func.coalesce(func.sum(case((live, facts.c.participants), else_=0)), 0).label("participations"),
    ]
    keys = [facts.c[name] for name in GROUPS if name in group_by]
    rows = (await session.execute(select(*keys, *counts).group_by(*keys).order_by(*keys))).all()
    out = []
    for r in rows:
        line = {name: getattr(r, name) for name in GROUPS if name in group_by}
        if "activity_type" in line:
            line["activity_type_label"] = activity_types.label(line["activity_type"])
        out.append({**line, **{name: int(getattr(r, name)) for name in COUNTS}})
    totals = {name: sum(line[name] for line in out) for name in COUNTS}
    return {"year": year, "month": month, "district": district, "group_by": [g for g in GROUPS if g in group_by],
            "rows": out, "totals": totals}

"""Statistics the bureau reports upward (issue 14): contact outcomes with decline and skip rates per month and
district, and each supervisor's drawn / confirmed / served counts, computed by PostgreSQL (GROUP BY); the rates
are `statistics/rules.py`. Read only, nothing here commits (but the audit row of a read of names)."""

from typing import Any

from sqlalchemy import Integer, and_, cast, extract, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.selection.models import absence, booking, candidate, platform, request, supervisor
from services.selection.statistics import rules
from shared import audit, clock
from shared.clock import local_period

OUTCOMES = ("pending", *rules.SETTLED)
GROUPS = ("district", "month")


def _in_period(year: int, month: int | None) -> list:
    start, end = local_period(year, month)  # the activity's date decides
    return [request.c.starts_at >= start, request.c.starts_at < end]


async def contacts(session: AsyncSession, *, year: int, month: int | None, district: str | None,
                   group_by: list[str]) -> dict[str, Any]:
    """Per group (the request's district, the activity's month): people per outcome and the rates."""
    where = _in_period(year, month) + ([] if district is None else [request.c.district == district])
    month_of = cast(extract("month", func.timezone("Asia/Shanghai", request.c.starts_at)), Integer)
    columns = {"district": request.c.district, "month": month_of}
    keys = [columns[name].label(name) for name in GROUPS if name in group_by]
    counts = [func.count().filter(candidate.c.status == outcome).label(outcome) for outcome in OUTCOMES]
    rows = (await session.execute(
        select(*keys, *counts).select_from(candidate.join(request, request.c.id == candidate.c.request_id))
        .where(*where).group_by(*keys).order_by(*keys))).all()
    out = []
    for r in rows:
        tally = {outcome: int(getattr(r, outcome)) for outcome in OUTCOMES}
        out.append({**{name: getattr(r, name) for name in GROUPS if name in group_by}, **tally,
                    **rules.contact_rates(tally)})
    totals = {outcome: sum(line[outcome] for line in out) for outcome in OUTCOMES}
    return {"year": year, "month": month, "district": district, "group_by": [g for g in GROUPS if g in group_by],
            "rows": out, "totals": {**totals, **rules.contact_rates(totals)}}


async def supervisors(session: AsyncSession, *, year: int, month: int | None, district: str | None, limit: int,
                      offset: int, actor: str) -> tuple[list[dict[str, Any]], int]:
    """Per supervisor (of their own district) with a turn in the period: drawn (their turn came in draw order),
    confirmed (confirmed at some point), served (a seat kept to an activity that has ended, absences not counted),
    declined; most served first."""
    served = and_(booking.c.active, request.c.ends_at <= clock.now(), absence.c.request_id.is_(None))
    joined = (candidate.join(request, request.c.id == candidate.c.request_id)
              .outerjoin(supervisor, supervisor.c.id == candidate.c.supervisor_id)
              .outerjoin(booking, and_(booking.c.request_id == candidate.c.request_id,
                                       booking.c.supervisor_id == candidate.c.supervisor_id))
              .outerjoin(absence, and_(absence.c.request_id == candidate.c.request_id,
                                       absence.c.supervisor_id == candidate.c.supervisor_id)))
    where = _in_period(year, month) + ([] if district is None else [supervisor.c.district == district])
    grouped = (select(candidate.c.supervisor_id, supervisor.c.name, supervisor.c.district,
                      func.count().label("drawn"),
                      func.count().filter(candidate.c.confirmed_at.is_not(None)).label("confirmed"),
                      func.count().filter(served).label("served"),
                      func.count().filter(candidate.c.status == "declined").label("declined"))
               .select_from(joined).where(*where)
               .group_by(candidate.c.supervisor_id, supervisor.c.name, supervisor.c.district))
    total = await session.scalar(select(func.count()).select_from(grouped.subquery()))
    rows = (await session.execute(grouped.order_by(func.count().filter(served).desc(),
                                                   func.count().filter(candidate.c.confirmed_at.is_not(None)).desc(),
                                                   func.count().desc(), candidate.c.supervisor_id)
                                  .limit(limit).offset(offset))).all()
    # names of the people on a list are personal data: the read is in the audit log (R3.1), values never
    await audit.append(session, platform.audit, actor=actor, action="statistics.supervisors_read",
                       subject=f"statistics:{year}-{month or 'all'}", details={"district": district,
                                                                               "count": len(rows)})
    return [{"supervisor_id": str(r.supervisor_id), "name": r.name, "district": r.district, "drawn": r.drawn,
             "confirmed": r.confirmed, "served": r.served, "declined": r.declined,
             "decline_rate": rules.rate(r.declined, r.drawn)} for r in rows], total or 0

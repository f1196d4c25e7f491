"""The pool: a projection of registry events (who may be drawn) and the relations supervisors declare."""

import uuid

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.selection.models import declared_relation, supervisor
from shared.db import raw
from shared.events.contracts import (
    EligibilityChanged,
    SupervisorAppointed,
    SupervisorDismissed,
    SupervisorUpdated,
)


async def on_appointed(session: AsyncSession, event: SupervisorAppointed, envelope=None) -> None:
    """Insert or refresh the projection row (a re-appointment makes a dismissed row drawable again)."""
    values = dict(name=event.name, district=event.district, specialties=sorted(set(event.specialties)),
                  eligible=event.eligible, dismissed=False, term_start=event.term_start, term_end=event.term_end)
    stmt = insert(supervisor).values(id=event.supervisor_id, **values)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=["id"], set_={**values, "updated_at": func.now()}))


async def on_updated(session: AsyncSession, event: SupervisorUpdated, envelope=None) -> None:
    """Apply the roster fields the pool needs (district, specialties, name)."""
    changes = {}
    for field in ("district", "name"):
        if isinstance(event.changed.get(field), str):
            changes[field] = event.changed[field]
    if isinstance(event.changed.get("specialties"), list):
        changes["specialties"] = sorted(set(event.changed["specialties"]))
    if changes:
        await session.execute(update(supervisor).where(supervisor.c.id == event.supervisor_id)
                              .values(**changes, updated_at=func.now()))


async def on_dismissed(session: AsyncSession, event: SupervisorDismissed, envelope=None) -> None:
    """A dismissed person is never drawable again (R8.1)."""
    await session.execute(update(supervisor).where(supervisor.c.id == event.supervisor_id)
                          .values(eligible=False, dismissed=True, updated_at=func.now()))


async def on_eligibility(session: AsyncSession, event: EligibilityChanged, envelope=None) -> None:
    """Eligibility (initial training R22.3, suspension, term end...) as the registry decided it."""
    values = {"eligible": event.eligible, "updated_at": func.now()}
    if "dismissed" in event.reasons:
        values["dismissed"] = True
    await session.execute(update(supervisor).where(supervisor.c.id == event.supervisor_id).values(**values))


async def declare_relations(session: AsyncSession, *, supervisor_id: uuid.UUID, party_names: list[str],
                            replace: bool = True) -> list[str]:
    """R13.1: the party names a supervisor declares a relation to (checked against conflict lists)."""
    names = sorted({n.strip() for n in party_names if n.strip()})
    if replace:
        await session.execute(delete(declared_relation).where(declared_relation.c.supervisor_id == supervisor_id))
    if names:
        await session.execute(insert(declared_relation).values(
            [{"supervisor_id": supervisor_id, "party_name": n} for n in names]).on_conflict_do_nothing())
    return list((await session.scalars(select(declared_relation.c.party_name).where(
        declared_relation.c.supervisor_id == supervisor_id).order_by(declared_relation.c.party_name))).all())


async def pool_size(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(supervisor).where(
        supervisor.c.eligible, supervisor.c.dismissed.is_(False)))


async def declared_relations(session: AsyncSession, *, supervisor_id: uuid.UUID) -> dict:
    """R13.1: the party names a supervisor declared, as stored (read back by the person or the bureau)."""
    rows = (await session.execute(select(declared_relation.c.party_name, declared_relation.c.created_at).where(
        declared_relation.c.supervisor_id == supervisor_id).order_by(declared_relation.c.party_name))).all()
    return {"supervisor_id": str(supervisor_id), "party_names": [r.party_name for r in rows], "count": len(rows),
            "declared_at": max(r.created_at for r in rows).isoformat() if rows else None}


# --- the pool as the bureau sees it: freshness, counts, who is free on a day ---------------------------

# the projection is only as fresh as the last registry event applied (the consumer's inbox)
LAST_EVENT_SQL = """
SELECT received_at, event_type FROM selection.inbox_event
WHERE topic = $1 AND status = 'applied' ORDER BY received_at DESC LIMIT 1
"""

# eligible on a day (R4.1, R22.3, R9.1): eligible as the registry decided, not dismissed, term covering it
ELIGIBLE_ON = """s.eligible AND NOT s.dismissed AND (s.term_start IS NULL OR s.term_start <= $1::date)
  AND (s.term_end IS NULL OR s.term_end >= $1::date) AND ($2::text IS NULL OR s.district = $2::text)"""

# a row per (district, specialty), and with spec NULL the district's total (people without a specialty count there)
COUNTS_SQL = f"""
SELECT s.district, x.spec, count(*) AS n
FROM selection.supervisor s CROSS JOIN LATERAL unnest(s.specialties) AS x(spec)
WHERE {ELIGIBLE_ON}
GROUP BY s.district, x.spec
UNION ALL
SELECT s.district, NULL, count(*) FROM selection.supervisor s WHERE {ELIGIBLE_ON} GROUP BY s.district
"""

# $3 specialty or NULL, $4/$5 the day's bounds (Shanghai midnights), $6 the year, $7 after name, $8 after id, $9 limit
MEMBERS_WHERE = f"""{ELIGIBLE_ON} AND ($3::text IS NULL OR $3::text = ANY(s.specialties))
  AND NOT EXISTS (SELECT 1 FROM selection.booking b WHERE b.supervisor_id = s.id AND b.active
                  AND b.starts_at < $5::timestamptz AND b.ends_at > $4::timestamptz)"""

MEMBERS_SQL = f"""
SELECT s.id, s.name, s.district, s.specialties, s.term_end,
       (SELECT count(*) FROM selection.booking k
        WHERE k.supervisor_id = s.id AND k.active AND k.year = $6::int) AS served
FROM selection.supervisor s
WHERE {MEMBERS_WHERE} AND ($7::text IS NULL OR (s.name, s.id) > ($7::text, $8::uuid))
ORDER BY s.name, s.id LIMIT $9::int
"""

MEMBERS_COUNT_SQL = f"SELECT count(*) AS n FROM selection.supervisor s WHERE {MEMBERS_WHERE}"


async def status(session: AsyncSession, *, on, district: str | None, topic: str) -> dict:
    """Freshness (the last registry event applied) and the eligible on `on` per district and specialty."""
    last = await raw.fetch(session, LAST_EVENT_SQL, topic)
    by_district: dict[str, dict] = {}
    for r in await raw.fetch(session, COUNTS_SQL, on, district):
        line = by_district.setdefault(r["district"], {"district": r["district"], "eligible": 0, "by_specialty": {}})
        if r["spec"] is None:
            line["eligible"] = r["n"]
        else:
            line["by_specialty"][r["spec"]] = r["n"]
    changed = await session.scalar(select(func.max(supervisor.c.updated_at)))
    lines = [dict(v, by_specialty=dict(sorted(v["by_specialty"].items()))) for _, v in sorted(by_district.items())]
    return {
        "last_registry_event_at": last[0]["received_at"].isoformat() if last else None,
        "last_registry_event_type": last[0]["event_type"] if last else None,
        "last_pool_change_at": changed.isoformat() if changed else None,
        "eligible_total": sum(v["eligible"] for v in lines),
        "by_district": lines,
    }


async def members(session: AsyncSession, *, on, day_start, day_end, specialty: str | None, district: str | None,
                  yearly_cap: int, limit: int, after: list | None) -> tuple[list[dict], int, list | None]:
    """Who is in the pool on a day: eligible that day and not booked for any activity touching it."""
    args = (on, district, specialty, day_start, day_end)
    total = (await raw.fetch(session, MEMBERS_COUNT_SQL, *args))[0]["n"]
    rows = await raw.fetch(session, MEMBERS_SQL, *args, on.year, after[0] if after else None,
                           after[1] if after else None, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    items = [{"supervisor_id": str(r["id"]), "name": r["name"], "district": r["district"],
              "specialties": list(r["specialties"]), "term_end": r["term_end"].isoformat() if r["term_end"] else None,
              "served_this_year": r["served"], "at_yearly_cap": r["served"] >= yearly_cap} for r in rows]
    return items, total, [rows[-1]["name"], rows[-1]["id"]] if more else None

"""The pool: a projection of registry events (who may be drawn) and the relations supervisors declare."""

import uuid

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.selection.models import declared_relation, supervisor
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

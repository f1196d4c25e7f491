"""The demo data: ~120 supervisors across the districts, some untrained, one dismissed; re-running adds nothing."""

from sqlalchemy import func, select

from services.registry.demo import COUNT, seed
from services.registry.models import dismissal, supervisor


async def test_demo_seeds_once_and_is_idempotent(registry_settings, app):
    first = await seed(registry_settings)
    assert first["created"] + first["skipped"] == COUNT
    again = await seed(registry_settings)
    assert again == {"created": 0, "skipped": COUNT}
    async with app.state.db.transaction() as session:
        mine = supervisor.c.created_by == "demo"
        total = await session.scalar(select(func.count()).where(mine))
        districts = await session.scalar(select(func.count(func.distinct(supervisor.c.district))).where(mine))
        untrained = await session.scalar(select(func.count()).where(
            mine, supervisor.c.status == "active", supervisor.c.initial_passed_on.is_(None)))
        dismissed = await session.scalar(select(func.count()).select_from(dismissal).join(
            supervisor, supervisor.c.id == dismissal.c.supervisor_id).where(mine, dismissal.c.status == "confirmed"))
    assert total == COUNT and districts == 7
    assert 8 <= untrained <= 12
    assert dismissed == 1

"""The demo data: one activity with a supervision request; re-running adds nothing."""

from sqlalchemy import func, select

from services.casework.demo import CASE_REF, seed
from services.casework.models import activity, supervision_request


async def test_demo_seeds_once_and_is_idempotent(cw):
    app, _ = cw
    first = await seed(app.state.settings)
    second = await seed(app.state.settings)
    assert second == {"activities_created": 0, "requests_created": 0, "skipped": 1}
    assert first["skipped"] == 1 or first["activities_created"] == first["requests_created"] == 1
    async with app.state.db.transaction() as session:
        n = await session.scalar(select(func.count()).select_from(activity).where(activity.c.case_ref == CASE_REF))
        reqs = await session.scalar(select(func.count()).select_from(supervision_request).join(
            activity, activity.c.id == supervision_request.c.activity_id).where(activity.c.case_ref == CASE_REF))
    assert n == 1 and reqs == 1

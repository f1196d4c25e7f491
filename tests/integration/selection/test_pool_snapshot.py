"""The pool kept as content-addressed buckets (draw algorithm v2): the incremental state always
equals a build from scratch, and a change committed during a refresh is never lost (R11.1)."""

import uuid

from sqlalchemy import delete, func, select, update

from services.selection.models import booking, pool_bucket, supervisor
from services.selection.pool import snapshot as pool_snapshot
from services.selection.requests.service import CHAIN_LOCK
from tests.integration.selection.conftest import ADMIN, appoint, new_request, window_of
from tests.integration.selection.test_contact import contact

YEAR = 2026


async def current_manifest(app, year: int = YEAR) -> dict[str, str]:
    """What a draw would see now: refresh (under the chain lock, as draws do), then the manifest."""
    async with app.state.db.transaction() as session:
        await session.execute(select(func.pg_advisory_xact_lock(CHAIN_LOCK)))
        await pool_snapshot.refresh(session, year=year, current_year=YEAR)
        return await pool_snapshot.manifest(session, year=year)


async def rebuilt_manifest(app, year: int = YEAR) -> dict[str, str]:
    """The same year built from nothing (every bucket), committed: it must change nothing."""
    async with app.state.db.transaction() as session:
        await session.execute(select(func.pg_advisory_xact_lock(CHAIN_LOCK)))
        await session.execute(delete(pool_bucket).where(pool_bucket.c.year == year))
        await pool_snapshot.refresh(session, year=year, current_year=YEAR)
        return await pool_snapshot.manifest(session, year=year)


async def bucket_rows(app, supervisor_id: uuid.UUID, year: int = YEAR) -> dict[str, dict]:
    manifest = await current_manifest(app, year)
    digest = manifest.get(str(supervisor_id)[:2])
    if digest is None:
        return {}
    async with app.state.db.transaction() as session:
        rows = (await pool_snapshot.load_buckets(session, [digest], as_stored=True))[digest]
    return {r["id"]: r for r in rows}


async def test_r11_1_incremental_pool_equals_a_build_from_scratch_after_every_kind_of_change(svc, unique_name):
    app, client = svc
    people = await appoint(app, unique_name, unique_name, 6)
    view = await new_request(svc, unique_name, unique_name, seats=2, seats_local=2)
    first = window_of(view, "local")[0]
    view = await contact(client, view, first, "confirmed")  # a booking: served goes up
    people = [p for p in people if str(p) != first]  # the changes below are to other people
    async with app.state.db.transaction() as session:  # the registry's events, as the consumer applies them
        await session.execute(update(supervisor).where(supervisor.c.id == people[0]).values(eligible=False))
        await session.execute(update(supervisor).where(supervisor.c.id == people[1]).values(
            specialties=[unique_name, "金融"]))
    await appoint(app, unique_name, unique_name, 2)

    incremental = await current_manifest(app)
    assert incremental == await rebuilt_manifest(app)
    rows = await bucket_rows(app, uuid.UUID(first))
    assert rows[first]["served"] == 1
    assert str(people[0]) not in await bucket_rows(app, people[0])  # not eligible: not in the pool
    assert (await bucket_rows(app, people[1]))[str(people[1])]["specialties"] == sorted([unique_name, "金融"])

    view = await contact(client, view, first, "declined")  # withdrawn: the booking is released
    assert (await bucket_rows(app, uuid.UUID(first)))[first]["served"] == 0
    assert await current_manifest(app) == await rebuilt_manifest(app)


async def test_r11_1_a_change_committed_while_a_draw_refreshes_is_picked_up_by_the_next_one(svc, unique_name):
    app, _ = svc
    (person,) = await appoint(app, unique_name, unique_name, 1)
    assert str(person) in await bucket_rows(app, person)
    writer = app.state.db.transaction()
    session = await writer.__aenter__()
    try:
        # the writer changes the pool (its trigger records the change) but has not committed yet
        await session.execute(update(supervisor).where(supervisor.c.id == person).values(dismissed=True))
        assert str(person) in await bucket_rows(app, person)  # a draw now sees the committed state
    finally:
        await writer.__aexit__(None, None, None)  # commit
    assert str(person) not in await bucket_rows(app, person)
    assert await current_manifest(app) == await rebuilt_manifest(app)


async def test_r11_1_bookings_count_in_their_own_year_only(svc, unique_name):
    app, _ = svc
    (person,) = await appoint(app, unique_name, unique_name, 1)
    await current_manifest(app, YEAR + 1)  # a second maintained year
    async with app.state.db.transaction() as session:
        await session.execute(booking.insert().values(
            supervisor_id=person, request_id=uuid.uuid4(), starts_at=func.now(), ends_at=func.now(),
            year=YEAR + 1, active=True))
    assert (await bucket_rows(app, person, YEAR + 1))[str(person)]["served"] == 1
    assert (await bucket_rows(app, person, YEAR))[str(person)]["served"] == 0
    assert await current_manifest(app, YEAR + 1) == await rebuilt_manifest(app, YEAR + 1)


async def test_receipt_of_a_draw_carries_every_bucket_it_names(svc, unique_name):
    app, client = svc
    await appoint(app, unique_name, unique_name, 3)
    view = await new_request(svc, unique_name, unique_name, seats=1, seats_local=1)
    receipt = (await client.get(f"/draws/{view['draws'][0]['draw_id']}/receipt", headers=ADMIN)).json()
    assert set(receipt["buckets"]) == set(receipt["snapshot"]["buckets"].values())
    assert receipt["snapshot"]["year"] == receipt["params"]["year"]

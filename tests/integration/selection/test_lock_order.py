"""Selection's one lock order (requests.service.take_chain_lock): the chain lock before any request row, in HTTP
paths and in the consumer's transactions alike. A consumer batch applies several events in one transaction; when
its locks came in event order, a draw holding a request row and waiting for the chain lock deadlocked against it
(PostgreSQL 40P01 → a 500 on PUT /requests/{id}/beacon in the full suite). These tests hold the chain lock and see
that both kinds of transaction wait for it before touching anything."""

import asyncio
import itertools
import uuid

from sqlalchemy import func, select

from services.selection.requests import service as requests
from shared.events.topics import REGISTRY_SUPERVISORS
from tests.integration.selection.conftest import appointed
from tests.support.signing import envelope_for, signed_record

_offset = itertools.count(10**12)


async def held_chain_lock(app):
    """A transaction of the test's own holding the chain lock until `release` is set."""
    taken, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with app.state.db.transaction() as session:
            await requests.take_chain_lock(session)
            taken.set()
            await release.wait()
    task = asyncio.create_task(hold())
    await taken.wait()
    return task, release


async def test_r11_1_a_consumer_transaction_takes_the_chain_lock_before_any_event_of_it(svc) -> None:
    app, _ = svc
    holder, release = await held_chain_lock(app)
    event = appointed("环翠区", "法律")  # a pool event: its handler itself never needs the chain
    record = signed_record(envelope_for(event), REGISTRY_SUPERVISORS, offset=next(_offset))
    applying = asyncio.create_task(app.state.consumer.process([record]))
    await asyncio.sleep(1.0)
    assert not applying.done()  # waiting for the chain lock, before claiming or applying the event
    release.set()
    await holder
    await asyncio.wait_for(applying, 30)
    async with app.state.db.transaction() as session:
        assert await requests.take_chain_lock(session) is None  # free again


async def test_r11_1_locking_a_request_row_takes_the_chain_lock_first(svc) -> None:
    app, _ = svc
    holder, release = await held_chain_lock(app)

    async def lock_a_request() -> None:
        async with app.state.db.transaction() as session:
            await requests.get(session, uuid.uuid4(), lock=True)
    locking = asyncio.create_task(lock_a_request())
    await asyncio.sleep(1.0)
    assert not locking.done()  # the row lock waits behind the chain lock
    release.set()
    await holder
    await asyncio.wait_for(locking, 30)


async def test_r12_1_a_confirmation_asks_the_registry_before_taking_the_chain_lock(svc, unique_name) -> None:
    """A confirmation needs the person's phone from the registry (an HTTP call that may be slow): it is asked with
    no lock held, so a slow registry never holds up every other draw, acceptance and contact of selection."""
    from tests.integration.selection.conftest import appoint, fake_contact, new_request, window_of
    from tests.integration.selection.test_contact import contact

    app, client = svc
    await appoint(app, unique_name, unique_name, 2)
    view = await new_request(svc, unique_name, unique_name, seats=1, seats_local=1)
    chain_free_during_lookup = []

    async def lookup(sid):
        async with app.state.db.transaction() as session:  # another connection: is the chain lock free now?
            free = await session.scalar(select(func.pg_try_advisory_xact_lock(requests.CHAIN_LOCK)))
        chain_free_during_lookup.append(free)
        return await fake_contact(sid)
    app.state.contact_lookup = lookup
    try:
        after = await contact(client, view, window_of(view)[0], "confirmed")
    finally:
        app.state.contact_lookup = fake_contact
    assert chain_free_during_lookup == [True]
    assert after["roster"] == [window_of(view)[0]]

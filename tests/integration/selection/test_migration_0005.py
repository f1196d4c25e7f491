"""Migration 0005 (draw protocol v4) on a database of the previous version: re-rolled activities keep one
live request, the draws already made start the one chain, and the unique index holds afterwards."""

import asyncio
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db.migrations import service_migrations, upgrade

INSERT_REQUEST = text("""
INSERT INTO selection.request (id, activity_id, case_ref, activity_type, office, district, starts_at, ends_at,
  year, place, seats, seats_local, seats_cross, conflict_parties, requested_at, balance_mode, status, via,
  created_at)
VALUES (:id, :activity, 'c', 't', 'o', 'd', now() + interval '10 days', now() + interval '10 days 2 hours',
  2026, 'p', 1, 1, 0, '[]', now(), 'strict', :status, 'http', now() + :offset * interval '1 second')
""")


@pytest.fixture
async def old_database(database_url):
    """A database of its own, with selection migrated to 0004 (the version before the protocol)."""
    name = "mig_" + uuid.uuid4().hex[:10]
    admin = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    await asyncio.to_thread(upgrade, service_migrations("selection"), url, "0004")
    yield url
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    await admin.dispose()


async def test_0005_keeps_the_newest_live_request_of_a_rerolled_activity(old_database):
    engine = create_async_engine(old_database)
    activity, other = uuid.uuid4(), uuid.uuid4()
    rolls = [uuid.uuid4() for _ in range(3)]
    async with engine.begin() as conn:
        for i, rid in enumerate(rolls):  # three draws for one activity: the re-rolls v4 forbids
            await conn.execute(INSERT_REQUEST, {"id": rid, "activity": activity, "status": "drawn", "offset": i})
        await conn.execute(INSERT_REQUEST, {"id": uuid.uuid4(), "activity": other, "status": "staffed", "offset": 0})
        await conn.execute(text(
            "INSERT INTO selection.draw (id, request_id, round, chain_seq, receipt, receipt_hash, prev_receipt_hash,"
            " need) VALUES (:d, :r, 1, 1, '\\x00', :h, :p, '{}')"),
            {"d": uuid.uuid4(), "r": rolls[0], "h": "a" * 64, "p": "0" * 64})
    await engine.dispose()
    await asyncio.to_thread(upgrade, service_migrations("selection"), old_database)
    engine = create_async_engine(old_database)
    try:
        async with engine.connect() as conn:
            statuses = dict((await conn.execute(text(
                "SELECT id, status FROM selection.request WHERE activity_id = :a"), {"a": activity})).all())
            chain = (await conn.execute(text("SELECT seq, kind, hash FROM selection.chain_entry"))).all()
        assert statuses == {rolls[0]: "cancelled", rolls[1]: "cancelled", rolls[2]: "drawn"}
        assert [(c.seq, c.kind, c.hash) for c in chain] == [(1, "draw", "a" * 64)]
        with pytest.raises(IntegrityError):  # and from now on the database refuses a second live request
            async with engine.begin() as conn:
                await conn.execute(INSERT_REQUEST, {"id": uuid.uuid4(), "activity": activity, "status": "accepted",
                                                    "offset": 9})
    finally:
        await engine.dispose()

"""Hot-path asyncpg statements (shared.db.raw) fail like SQLAlchemy's: the problem+json mapping and the
inbox's wait-out-the-outage rule see the same exceptions whichever path a service takes."""

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from shared.db import Database, raw
from shared.errors import classify_database_error
from shared.events.inbox import is_transient


@pytest.fixture
async def db(database_url: str):
    database = Database(database_url, pool_size=2)
    yield database
    await database.dispose()


async def test_rows_come_back_in_the_callers_transaction(db):
    async with db.transaction() as session:
        await session.execute(text("CREATE TEMP TABLE raw_probe (n int) ON COMMIT DROP"))
        await raw.execute(session, "INSERT INTO raw_probe VALUES ($1), ($2)", 1, 2)
        rows = await raw.fetch(session, "SELECT n FROM raw_probe ORDER BY n")
        assert [r["n"] for r in rows] == [1, 2]


async def test_bad_data_is_a_data_error_answered_422(db):
    with pytest.raises(DataError) as caught:
        async with db.transaction() as session:
            await raw.fetch(session, "SELECT $1::text::int", "not a number")
    assert classify_database_error(caught.value)[:2] == (422, "invalid_data")
    assert not is_transient(caught.value)


async def test_a_broken_constraint_is_an_integrity_error_answered_409(db):
    with pytest.raises(IntegrityError) as caught:
        async with db.transaction() as session:
            await session.execute(text("CREATE TEMP TABLE raw_unique (n int PRIMARY KEY) ON COMMIT DROP"))
            await raw.execute(session, "INSERT INTO raw_unique VALUES (1), (1)")
    assert classify_database_error(caught.value)[:2] == (409, "conflict")


async def test_a_lost_connection_is_transient_and_answered_503(db):
    with pytest.raises(OperationalError) as caught:
        async with db.transaction() as session:
            pid = (await raw.fetch(session, "SELECT pg_backend_pid() AS pid"))[0]["pid"]
            async with db.engine.connect() as other:  # an administrator (or a failover) ends the session
                await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await asyncio.sleep(0.1)
            await raw.fetch(session, "SELECT 1")
    assert is_transient(caught.value)  # the inbox waits it out, never dead-letters the event
    assert classify_database_error(caught.value)[0] == 503

"""Hot-path asyncpg statements (shared.db.raw) fail like SQLAlchemy's: the problem+json mapping and the
inbox's wait-out-the-outage rule see the same exceptions whichever path a service takes."""

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db import Database, raw
from shared.errors import classify_database_error, install_problem_handlers
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


async def test_a_deadlock_postgresql_broke_is_answered_503_busy_and_changed_nothing(db):
    """Two transactions taking two locks in opposite orders: PostgreSQL rolls one back (40P01). Its request is
    answered 503 `busy` with Retry-After (the same request again goes through), never a 500."""
    first_locked, second_locked = asyncio.Event(), asyncio.Event()

    async def take(mine: int, theirs: int, locked: asyncio.Event, other: asyncio.Event) -> None:
        async with db.transaction() as session:
            await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": mine})
            locked.set()
            await other.wait()
            await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": theirs})

    results = await asyncio.gather(take(71_001, 71_002, first_locked, second_locked),
                                   take(71_002, 71_001, second_locked, first_locked), return_exceptions=True)
    failed = [r for r in results if isinstance(r, Exception)]
    assert len(failed) == 1, results  # one of the two went through
    assert classify_database_error(failed[0])[:2] == (503, "busy")
    assert is_transient(failed[0])  # a consumer retries the batch, never dead-letters an event for it


async def test_a_lock_wait_given_up_is_answered_503_busy(db):
    async with db.transaction() as holder:
        await holder.execute(text("SELECT pg_advisory_xact_lock(71003)"))
        with pytest.raises(DBAPIError) as caught:
            async with db.transaction() as session:
                await session.execute(text("SET LOCAL lock_timeout = '100ms'"))
                await session.execute(text("SELECT pg_advisory_xact_lock(71003)"))
    assert classify_database_error(caught.value)[:2] == (503, "busy")


async def test_no_pooled_connection_in_time_is_transient_and_answered_503_busy(database_url: str):
    """Every pooled connection busy for the pool's timeout (a stuck database, a burst): the consumer waits it out,
    a request is answered 503 `busy` with Retry-After, never a 500."""
    engine = create_async_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/work")
    async def work() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    try:
        async with engine.connect() as held:
            await held.execute(text("SELECT 1"))
            with pytest.raises(PoolTimeout) as caught:
                async with engine.connect():
                    pass
            assert is_transient(caught.value)
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
                answer = await client.get("/work")
        assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
        assert answer.json()["code"] == "busy" and answer.headers["content-type"].startswith("application/problem")
    finally:
        await engine.dispose()

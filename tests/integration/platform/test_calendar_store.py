"""Bureau-loaded calendar years: save_year / load_saved_years round-trip against real PostgreSQL."""

from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import MetaData, Table, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from shared.calendar import (
    CalendarAnswer,
    WorkingCalendar,
    YearTable,
    define_calendar_table,
    load_saved_years,
    save_year,
)

# A made-up 2027 notice (the real one is not published yet).
NOTICE_2027 = YearTable(
    year=2027,
    holidays=frozenset([date(2027, 1, 1)] + [date(2027, 2, 6) + timedelta(i) for i in range(7)]),
    makeup_workdays=frozenset([date(2027, 2, 13)]),
    source="国务院办公厅通知 国办发明电〔2026〕X号",
)
NOTICE_2028 = YearTable(
    year=2028,
    holidays=frozenset([date(2028, 1, 1), date(2028, 1, 3)]),
    makeup_workdays=frozenset([date(2028, 1, 8)]),
    source="国务院办公厅通知 国办发明电〔2027〕Y号",
)


@pytest.fixture
async def store(database_url: str, fresh_schema: str) -> AsyncIterator[tuple[async_sessionmaker, Table]]:
    """A session factory and a `calendar_year` table created in a schema of its own."""
    metadata = MetaData(schema=fresh_schema)
    table = define_calendar_table(metadata)
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        yield async_sessionmaker(engine, expire_on_commit=False), table
    finally:
        await engine.dispose()


async def test_round_trip(store: tuple[async_sessionmaker[AsyncSession], Table]) -> None:
    sessions, table = store
    async with sessions() as session, session.begin():
        await save_year(session, table, NOTICE_2027, loaded_by="bureau-admin")
        await save_year(session, table, NOTICE_2028, loaded_by="bureau-admin")

    calendar = WorkingCalendar()
    async with sessions() as session, session.begin():
        assert await load_saved_years(session, table, calendar) == 2

    assert calendar.year_status(2027) == "loaded"
    assert calendar.year_status(2028) == "loaded"
    assert calendar.is_working_day(date(2027, 2, 8)) == CalendarAnswer(False)
    assert calendar.is_working_day(date(2027, 2, 13)) == CalendarAnswer(True)
    assert calendar.is_working_day(date(2028, 1, 8)) == CalendarAnswer(True)
    assert calendar.working_days_between(date(2026, 12, 1), date(2028, 12, 31)).provisional_years == ()

    async with sessions() as session:
        row = (await session.execute(select(table).where(table.c.year == 2027))).one()
    assert row.holidays[:2] == ["2027-01-01", "2027-02-06"]
    assert row.makeup_workdays == ["2027-02-13"]
    assert row.source == NOTICE_2027.source
    assert row.loaded_by == "bureau-admin"
    assert isinstance(row.loaded_at, datetime)
    assert row.loaded_at.tzinfo is not None


async def test_saving_a_year_again_replaces_it(
    store: tuple[async_sessionmaker[AsyncSession], Table],
) -> None:
    sessions, table = store
    async with sessions() as session, session.begin():
        await save_year(session, table, NOTICE_2027, loaded_by="clerk-1")
    async with sessions() as session:
        first_loaded_at = (await session.execute(select(table.c.loaded_at))).scalar_one()

    corrected = YearTable(2027, frozenset([date(2027, 1, 1)]), frozenset(), "corrected notice")
    async with sessions() as session, session.begin():
        await save_year(session, table, corrected, loaded_by="clerk-2")

    async with sessions() as session:
        rows = (await session.execute(select(table))).all()
    assert len(rows) == 1
    assert rows[0].holidays == ["2027-01-01"]
    assert rows[0].makeup_workdays == []
    assert rows[0].source == "corrected notice"
    assert rows[0].loaded_by == "clerk-2"
    assert rows[0].loaded_at >= first_loaded_at

    calendar = WorkingCalendar()
    async with sessions() as session:
        assert await load_saved_years(session, table, calendar) == 1
    assert calendar.is_working_day(date(2027, 2, 8)).value is True  # the 春节 days are gone
    assert calendar.is_working_day(date(2027, 2, 13)).value is False


async def test_save_year_leaves_the_transaction_to_the_caller(
    store: tuple[async_sessionmaker[AsyncSession], Table],
) -> None:
    sessions, table = store
    async with sessions() as session:
        await save_year(session, table, NOTICE_2027, loaded_by="bureau-admin")
        await session.rollback()

    calendar = WorkingCalendar()
    async with sessions() as session:
        assert await load_saved_years(session, table, calendar) == 0
    assert calendar.year_status(2027) == "provisional"

"""One alembic environment per service: own schema, own version table, append-only audit in the DB."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db.migrations import downgrade, upgrade
from tests.support.sample_service import migrations_dir


async def tables_in(database_url: str, schema: str) -> set[str]:
    engine = create_async_engine(database_url)
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"), {"s": schema}
        )
        names = {r[0] for r in rows}
    await engine.dispose()
    return names


async def test_upgrade_creates_the_schema_with_its_own_version_table_and_downgrade_removes_it(database_url):
    await _run(upgrade, database_url)
    assert await tables_in(database_url, "sample") == {
        "alembic_version", "audit_log", "audit_witness", "calendar_year", "inbox_event", "inbox_sequence",
        "outbox_event", "note",
    }
    assert "alembic_version" not in await tables_in(database_url, "public")

    await _run(downgrade, database_url)
    assert await tables_in(database_url, "sample") == {"alembic_version"}
    await _run(upgrade, database_url)  # back to head for the other tests


async def test_r3_1_the_migrated_audit_log_refuses_updates_and_deletes(database_url):
    await _run(upgrade, database_url)
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO sample.audit_log (seq, at, actor, action, subject, details, prev_hash, hash) "
                "VALUES (999999, now(), 'a', 'b', 'c', '{}', 'x', 'y') ON CONFLICT DO NOTHING"
            ))
        for statement in ("UPDATE sample.audit_log SET actor = 'mallory'", "DELETE FROM sample.audit_log"):
            with pytest.raises(ProgrammingError, match="append-only"):
                async with engine.begin() as conn:
                    await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def _run(fn, database_url: str) -> None:
    """alembic's env runs its own event loop, so call it from a worker thread."""
    import asyncio

    await asyncio.to_thread(fn, migrations_dir, database_url)

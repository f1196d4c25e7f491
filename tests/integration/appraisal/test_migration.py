"""The hand-reviewed migration matches the models (nothing left for autogenerate to add); 0005 on old data."""

import asyncio
import uuid

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from services.appraisal.models import SCHEMA, metadata
from shared.db.migrations import downgrade, service_migrations, upgrade


async def test_migration_matches_the_models(app) -> None:
    def diff(connection):
        context = MigrationContext.configure(connection, opts={
            "include_schemas": True, "compare_type": True,
            "include_name": lambda name, type_, parents: name == SCHEMA if type_ == "schema" else True})
        return [d for d in compare_metadata(context, metadata)
                if not (d[0] == "remove_table" and d[1].name == "alembic_version")]

    async with app.state.db.engine.connect() as connection:
        assert await connection.run_sync(diff) == []


async def test_r37_1_migration_0005_keeps_finalized_results_as_version_1_and_downgrades(database_url,
                                                                                        unique_name) -> None:
    """Results finalized before 0005 become version 1 of their result; 0005 downgrades and upgrades again."""
    admin = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{unique_name}"'))
    url = make_url(database_url).set(database=unique_name).render_as_string(hide_password=False)
    migrations = service_migrations("appraisal")
    engine = create_async_engine(url)
    try:
        await asyncio.to_thread(upgrade, migrations, url, "0004")
        rid, sid = uuid.uuid4(), uuid.uuid4()
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO appraisal.appraisal_round (id, kind, year, state, created_by) "
                                    "VALUES (:r, 'annual', 2025, 'finalized', 'clerk')"), {"r": rid})
            await conn.execute(text("INSERT INTO appraisal.round_step (round_id, state, actor) "
                                    "VALUES (:r, 'finalized', 'finalizer')"), {"r": rid})
            await conn.execute(text("INSERT INTO appraisal.participant (round_id, supervisor_id, final_grade) "
                                    "VALUES (:r, :s, 'qualified')"), {"r": rid, "s": sid})
        await asyncio.to_thread(upgrade, migrations, url)
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT version, grade, decided_by FROM appraisal.result"))).all()
            version = await conn.scalar(text("SELECT result_version FROM appraisal.participant"))
        assert [tuple(r) for r in rows] == [(1, "qualified", "finalizer")] and version == 1
        await asyncio.to_thread(downgrade, migrations, url, "0004")
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT to_regclass('appraisal.result')")) is None
        await asyncio.to_thread(upgrade, migrations, url)
    finally:
        await engine.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{unique_name}" WITH (FORCE)'))
        await admin.dispose()

"""Casework's migrations against the models, and 0010 (R17.1: the form's number given at completion) on old data."""

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from services.casework.models import SCHEMA, metadata
from shared.db.migrations import downgrade, service_migrations, upgrade


async def test_migrations_match_the_models(cw) -> None:
    app, _ = cw

    def diff(connection):
        context = MigrationContext.configure(connection, opts={
            "include_schemas": True, "compare_type": True,
            "include_name": lambda name, type_, parents: name == SCHEMA if type_ == "schema" else True})
        return [d for d in compare_metadata(context, metadata)
                if not (d[0] == "remove_table" and d[1].name == "alembic_version")]

    async with app.state.db.engine.connect() as connection:
        assert await connection.run_sync(diff) == []


async def test_r17_1_migration_0010_numbers_completed_forms_keeping_printed_numbers(database_url,
                                                                                    unique_name) -> None:
    """A form printed before 0010 keeps the number its archived PDF carries; completed forms never printed take the
    next numbers of their year (Asia/Shanghai) in order of completion, and the sequence continues after them; a
    form still being signed has none. Once set the number cannot change; 0010 downgrades and upgrades again."""
    admin = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{unique_name}"'))
    url = make_url(database_url).set(database=unique_name).render_as_string(hide_password=False)
    migrations = service_migrations("casework")
    engine = create_async_engine(url)
    forms = {  # name → (completed_at UTC or None, number of its archived PDF or None)
        "printed": (datetime(2026, 3, 1, 2, 0, tzinfo=UTC), "威检监反〔2026〕7号"),
        "february": (datetime(2026, 2, 1, 2, 0, tzinfo=UTC), None),
        "april": (datetime(2026, 4, 1, 2, 0, tzinfo=UTC), None),
        "new_year": (datetime(2025, 12, 31, 17, 0, tzinfo=UTC), None),  # 2026-01-01 01:00 in Weihai
        "late_2025": (datetime(2025, 11, 3, 2, 0, tzinfo=UTC), None),
        "signing": (None, None),
    }
    ids = {name: uuid.uuid4() for name in forms}
    try:
        await asyncio.to_thread(upgrade, migrations, url, "0009")
        async with engine.begin() as conn:
            for name, (completed, number) in forms.items():
                activity = uuid.uuid4()
                await conn.execute(text(
                    "INSERT INTO casework.activity (id, case_ref, activity_type, office, district, starts_at, "
                    "ends_at, place, created_by) VALUES (:a, 'x', 'public_hearing', '文登区人民检察院', '文登区', "
                    "now() - interval '2 hours', now() - interval '1 hour', '听证室', 'clerk')"), {"a": activity})
                await conn.execute(text(
                    "INSERT INTO casework.feedback_form (id, activity_id, request_id, content, content_hash, "
                    "frozen_at, completed_at) VALUES (:f, :a, :r, '{}', 'h', now(), :c)"),
                    {"f": ids[name], "a": activity, "r": uuid.uuid4(), "c": completed})
                if number:
                    await conn.execute(text(
                        "INSERT INTO casework.issued_document (id, kind, subject, data_sha256, sha256, number, size, "
                        "content, issued_by, issued_at) VALUES (:i, 'feedback_form', :s, 'd', 's', :n, 1, 'x', "
                        "'clerk', now())"), {"i": uuid.uuid4(), "s": str(activity), "n": number})
            await conn.execute(text("INSERT INTO casework.document_number (kind, year, last) "
                                    "VALUES ('feedback_form', 2026, 7)"))
        await asyncio.to_thread(upgrade, migrations, url)
        async with engine.connect() as conn:
            numbers = dict((await conn.execute(text("SELECT id, number FROM casework.feedback_form"))).all())
            last = dict((await conn.execute(text(
                "SELECT year, last FROM casework.document_number WHERE kind = 'feedback_form'"))).all())
        assert {name: numbers[ids[name]] for name in forms} == {
            "printed": "威检监反〔2026〕7号", "new_year": "威检监反〔2026〕8号", "february": "威检监反〔2026〕9号",
            "april": "威检监反〔2026〕10号", "late_2025": "威检监反〔2025〕1号", "signing": None}
        assert last == {2026: 10, 2025: 1}
        with pytest.raises(DBAPIError, match=r"R17\.1"):
            async with engine.begin() as conn:
                await conn.execute(text("UPDATE casework.feedback_form SET number = 'x' WHERE id = :f"),
                                   {"f": ids["printed"]})
        async with engine.begin() as conn:  # still unnumbered: completing it may set it
            await conn.execute(text("UPDATE casework.feedback_form SET completed_at = now(), "
                                    "number = '威检监反〔2026〕11号' WHERE id = :f"), {"f": ids["signing"]})
        await asyncio.to_thread(downgrade, migrations, url, "0009")
        async with engine.connect() as conn:
            assert await conn.scalar(text(
                "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'casework' "
                "AND table_name = 'feedback_form' AND column_name = 'number'")) == 0
        await asyncio.to_thread(upgrade, migrations, url)
    finally:
        await engine.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{unique_name}" WITH (FORCE)'))
        await admin.dispose()

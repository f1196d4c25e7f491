"""Registry's migrations 0008 (the archived papers of R5.1 and R9.1) and 0009 (their 文号 given by the decision)
match the models' tables they touch; 0009 on old data.

Only those two tables: registry's earlier migrations create indexes the models do not declare (the roster's
expression and partial indexes), which autogenerate would report as differences."""

import asyncio
import json
import uuid
from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from services.registry.models import SCHEMA, metadata
from shared import clock
from shared.db.migrations import downgrade, service_migrations, upgrade

TABLES = {"issued_document", "document_number", "dismissal"}


def _ours(obj, name, type_, reflected, compare_to) -> bool:
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return table is not None and table.name in TABLES


async def test_r5_1_r9_1_migration_0008_matches_the_document_tables_of_the_models(app) -> None:
    def diff(connection):
        context = MigrationContext.configure(connection, opts={
            "include_schemas": True, "compare_type": True, "include_object": _ours,
            "include_name": lambda name, type_, parents: name == SCHEMA if type_ == "schema" else True})
        return compare_metadata(context, metadata)

    async with app.state.db.engine.connect() as connection:
        assert await connection.run_sync(diff) == []
        tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names(SCHEMA)))
    assert TABLES <= tables


async def test_r9_1_migration_0009_numbers_decided_dismissals_keeping_printed_numbers(database_url,
                                                                                      unique_name) -> None:
    """Dismissals decided before 0009: a paper already archived keeps its number; the others take the next numbers
    of their year in order of decision (notices in their recorded order), the sequences continue after them;
    a pending case has none. 0009 downgrades (the numbers leave the records) and upgrades again."""
    admin = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{unique_name}"'))
    url = make_url(database_url).set(database=unique_name).render_as_string(hide_password=False)
    migrations = service_migrations("registry")
    engine = create_async_engine(url)
    kinds = ["person", "employer", "recommending_body", "procuratorate"]
    cases = {  # name → decided_at (UTC) or None (pending)
        "second": datetime(2026, 5, 2, 2, 0, tzinfo=UTC), "first": datetime(2026, 5, 1, 2, 0, tzinfo=UTC),
        "new_year": datetime(2026, 12, 31, 17, 0, tzinfo=UTC), "pending": None}  # 2027-01-01 in Weihai
    ids = {name: uuid.uuid4() for name in cases}
    try:
        await asyncio.to_thread(upgrade, migrations, url, "0008")
        async with engine.begin() as conn:
            for name, decided in cases.items():
                person = uuid.uuid4()
                await conn.execute(text(
                    "INSERT INTO registry.supervisor (id, name, gender, id_number_encrypted, id_number_hash, "
                    "id_number_masked, phone_encrypted, phone_hash, phone_masked, district, employer, "
                    "recommending_body, status, created_by) "
                    "VALUES (:p, :n, 'male', 'e', :h, 'm', 'e', 'h', 'm', '环翠区', 'x', 'y', 'dismissed', 'clerk')"),
                    {"p": person, "n": name, "h": uuid.uuid4().hex})
                day = decided.astimezone(clock.SHANGHAI).date().isoformat() if decided else None
                notices = [{"recipient_kind": k, "recipient": "x", "title": "t", "text": "t", "issued_on": day}
                           for k in kinds] if decided else None
                await conn.execute(text(
                    "INSERT INTO registry.dismissal (id, supervisor_id, ground, evidence_note, status, source, "
                    "notices, announcement, opened_by, decided_at) VALUES (:d, :p, 6, 'x', :s, 'bureau', "
                    "CAST(:notices AS jsonb), :a, 'clerk', :at)"),
                    {"d": ids[name], "p": person, "s": "confirmed" if decided else "pending",
                     "notices": json.dumps(notices) if notices else None, "a": "公告" if decided else None,
                     "at": decided})
            await conn.execute(text(  # "second" had its employer notice printed (and numbered) before 0009
                "INSERT INTO registry.issued_document (id, kind, subject, data_sha256, sha256, number, size, "
                "content, issued_by, issued_at) VALUES (:i, 'registry_dismissal_notice', :s, 'd', 's', "
                "'威司免〔2026〕1号', 1, 'x', 'clerk', now())"), {"i": uuid.uuid4(), "s": f"{ids['second']}:employer"})
            await conn.execute(text("INSERT INTO registry.document_number (kind, year, last) "
                                    "VALUES ('registry_dismissal_notice', 2026, 1)"))
        await asyncio.to_thread(upgrade, migrations, url)
        async with engine.connect() as conn:
            rows = {r.id: r for r in (await conn.execute(text(
                "SELECT id, notices, announcement_number FROM registry.dismissal"))).all()}
            last = {(k, y): n for k, y, n in (await conn.execute(text(
                "SELECT kind, year, last FROM registry.document_number"))).all()}
        numbered = {name: ([n["number"] for n in rows[ids[name]].notices or []], rows[ids[name]].announcement_number)
                    for name in cases}
        assert numbered == {
            "first": ([f"威司免〔2026〕{i}号" for i in (2, 3, 4, 5)], "威司公告〔2026〕1号"),
            "second": (["威司免〔2026〕6号", "威司免〔2026〕1号", "威司免〔2026〕7号", "威司免〔2026〕8号"],
                       "威司公告〔2026〕2号"),
            "new_year": ([f"威司免〔2027〕{i}号" for i in (1, 2, 3, 4)], "威司公告〔2027〕1号"),
            "pending": ([], None)}
        assert last == {("registry_dismissal_notice", 2026): 8, ("registry_dismissal_announcement", 2026): 2,
                        ("registry_dismissal_notice", 2027): 4, ("registry_dismissal_announcement", 2027): 1}
        await asyncio.to_thread(downgrade, migrations, url, "0008")
        async with engine.connect() as conn:
            notices = await conn.scalar(text("SELECT notices FROM registry.dismissal WHERE id = :d"),
                                        {"d": ids["first"]})
        assert [set(n) for n in notices] == [{"recipient_kind", "recipient", "title", "text", "issued_on"}] * 4
        await asyncio.to_thread(upgrade, migrations, url)
    finally:
        await engine.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{unique_name}" WITH (FORCE)'))
        await admin.dispose()

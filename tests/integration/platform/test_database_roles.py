"""Least-privilege database roles (issue 16): the dev stack runs deploy/postgres/ as production does.

A server of its own (the roles are cluster-wide and 00-roles.sql revokes PUBLIC's CONNECT on
`supervision`, so not the session's): made like an earlier dev stack left .data/postgres (database
and casework's first migration created by the superuser), then the dev stack's own steps:
passwords required, 00-roles.sql + the dev-only adoption + 10-schemas.sql, the migrations as the
owner role. Then each service's role may read and write its own schema and nothing else.
"""

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import pool, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from services.casework.models import platform as casework_tables
from shared import audit
from shared.db.migrations import service_migrations, services_with_migrations, upgrade
from shared.devstack import infra
from shared.devstack.__main__ import dev_database_env, dev_database_passwords, dev_secrets
from shared.serve import available_services

ROOT = Path(__file__).resolve().parents[3]
ROLES = infra.SERVICE_ROLES
OWNER = infra.OWNER_ROLE


class RolesDatabase:
    def __init__(self, postgres: infra.Postgres, passwords: dict[str, str]) -> None:
        self.postgres, self.passwords = postgres, passwords

    def engine(self, role: str) -> AsyncEngine:
        return create_async_engine(self.postgres.url_for(role, self.passwords[role]), poolclass=pool.NullPool)


def migrate(env: dict[str, str]) -> None:
    """As the dev stack does: `python -m shared.db.migrate` with the owner's DATABASE_URL."""
    subprocess.run([sys.executable, "-m", "shared.db.migrate"], cwd=ROOT, check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT), **env})


@pytest.fixture(scope="module")
async def roles_db(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RolesDatabase]:
    base = tmp_path_factory.mktemp("roles")
    postgres = infra.start_postgres(base / "pg", cleanup="delete")  # `supervision` owned by the superuser
    try:
        # what an earlier dev stack left: casework's first revision migrated by the superuser
        await asyncio.to_thread(upgrade, service_migrations("casework"), postgres.url, "0001")

        dev_secrets(base, ROLES)
        passwords = dev_database_passwords(base)
        infra.require_passwords(postgres)
        infra.apply_database_roles(postgres, passwords)
        infra.apply_database_roles(postgres, passwords)  # idempotent: the dev stack runs it on every start
        await asyncio.to_thread(migrate, dev_database_env(postgres, passwords, OWNER))
        yield RolesDatabase(postgres, passwords)
    finally:
        postgres.stop()


async def scalar(engine: AsyncEngine, sql: str, **params):
    async with engine.begin() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def refused(engine: AsyncEngine, sql: str, match: str) -> None:
    with pytest.raises(DBAPIError, match=match):
        async with engine.begin() as conn:
            await conn.execute(text(sql))


def test_every_service_has_a_database_role() -> None:
    """Every service but the database-free ones (the portal), which may hold no migrations."""
    assert set(infra.database_services(available_services())) <= set(ROLES)
    assert not set(infra.SERVICES_WITHOUT_DATABASE) & set(services_with_migrations())


async def test_no_role_is_privileged_and_a_wrong_password_is_refused(roles_db: RolesDatabase) -> None:
    admin = create_async_engine(roles_db.postgres.url, poolclass=pool.NullPool)
    try:
        async with admin.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication, rolinherit "
                "FROM pg_roles WHERE rolname = ANY(:names)"), {"names": [OWNER, *ROLES]})).all()
            members = (await conn.execute(text(
                "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
                "WHERE r.rolname = ANY(:names)"), {"names": [OWNER, *ROLES]})).all()
    finally:
        await admin.dispose()
    assert {r.rolname for r in rows} == {OWNER, *ROLES}
    assert not [r for r in rows if r.rolsuper or r.rolcreaterole or r.rolcreatedb or r.rolbypassrls
                or r.rolreplication], rows
    assert not members, "no role is a member of another (it would inherit its rights)"

    for role in (OWNER, "casework"):
        engine = roles_db.engine(role)
        try:
            assert await scalar(engine, "SELECT current_user") == role
        finally:
            await engine.dispose()
    wrong = create_async_engine(roles_db.postgres.url_for("casework", "not-the-password"), poolclass=pool.NullPool)
    try:
        with pytest.raises(Exception, match="password authentication failed"):
            await scalar(wrong, "SELECT 1")
    finally:
        await wrong.dispose()


async def test_the_owner_owns_everything_including_what_the_superuser_made_before(roles_db) -> None:
    owner = roles_db.engine(OWNER)
    try:
        async with owner.connect() as conn:
            database_owner = (await conn.execute(text(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"))).scalar()
            foreign = (await conn.execute(text(
                "SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = ANY(:schemas) AND c.relowner <> :owner ::regrole"),
                {"schemas": list(ROLES), "owner": OWNER})).all()
            schemas = (await conn.execute(text(
                "SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = ANY(:schemas)"),
                {"schemas": list(ROLES)})).all()
            functions = (await conn.execute(text(
                "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = ANY(:schemas) AND p.proowner <> :owner ::regrole"),
                {"schemas": list(ROLES), "owner": OWNER})).all()
            heads = {s: (await conn.execute(text(f'SELECT version_num FROM "{s}".alembic_version'))).scalar()
                     for s in ROLES}
    finally:
        await owner.dispose()
    assert database_owner == OWNER
    assert not foreign and not functions
    assert dict(schemas) == {s: OWNER for s in ROLES}
    assert heads["casework"] != "0001", "the owner migrated the superuser's casework tables on to head"


async def test_each_service_role_has_dml_on_all_of_its_own_schema_and_nothing_else(roles_db) -> None:
    admin = create_async_engine(roles_db.postgres.url, poolclass=pool.NullPool)
    try:
        async with admin.connect() as conn:
            rows = (await conn.execute(text("""
                SELECT r.role, n.nspname, c.relname, c.relkind,
                       CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(r.role, c.oid, 'USAGE')
                            ELSE has_table_privilege(r.role, c.oid, 'SELECT, INSERT, UPDATE, DELETE') END,
                       has_table_privilege(r.role, c.oid, 'TRUNCATE, REFERENCES, TRIGGER'),
                       has_schema_privilege(r.role, n.oid, 'USAGE'),
                       has_schema_privilege(r.role, n.oid, 'CREATE')
                FROM unnest(CAST(:roles AS text[])) AS r(role)
                CROSS JOIN pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = ANY(:roles) AND c.relkind IN ('r', 'p', 'S')"""),
                {"roles": list(ROLES)})).all()
            public_create = (await conn.execute(text(
                "SELECT r FROM unnest(CAST(:roles AS text[])) r WHERE has_schema_privilege(r, 'public', 'CREATE') "
                "OR has_database_privilege(r, current_database(), 'CREATE, TEMPORARY')"),
                {"roles": list(ROLES)})).all()
    finally:
        await admin.dispose()
    assert {row.nspname for row in rows} == set(ROLES)
    for role, schema, name, kind, dml, ddl_like, usage, create in rows:
        assert dml == usage == (role == schema), (role, schema, name, kind)
        assert not ddl_like and not create, (role, schema, name)
    assert not public_create


async def append_audit_entry(engine: AsyncEngine) -> int:
    async with engine.connect() as conn, AsyncSession(bind=conn) as session, session.begin():
        return await audit.append(session, casework_tables.audit, actor="t", action="roles.test", subject="s")


async def test_casework_reads_and_writes_its_own_tables_at_runtime(roles_db) -> None:
    engine = roles_db.engine("casework")
    try:
        async with engine.begin() as conn:
            event_id = await conn.scalar(text(
                "INSERT INTO casework.outbox_event (event_id, topic, key, event_type, envelope) "
                "VALUES (:id, 't', 'k', 'e', '{}') RETURNING id"), {"id": uuid.uuid4()})  # its sequence
            await conn.execute(text("UPDATE casework.outbox_event SET attempts = 1 WHERE id = :id"), {"id": event_id})
            assert await conn.scalar(text("SELECT pg_try_advisory_xact_lock(4242)")) is True
            await conn.execute(text("LISTEN casework_outbox"))
            await conn.execute(text("SELECT pg_notify('casework_outbox', '')"))
            await conn.execute(text("UNLISTEN *"))
            await conn.execute(text("DELETE FROM casework.outbox_event WHERE id = :id"), {"id": event_id})
        assert await append_audit_entry(engine) >= 1  # advisory lock, select, insert
    finally:
        await engine.dispose()


@pytest.mark.parametrize(("sql", "match"), [
    ("SELECT count(*) FROM registry.outbox_event", "permission denied for schema registry"),
    ("SELECT count(*) FROM selection.audit_log", "permission denied for schema selection"),
    ("CREATE TABLE casework.mine (x int)", "permission denied for schema casework"),
    ("CREATE TABLE public.mine (x int)", "permission denied for schema public"),
    ("CREATE TEMP TABLE mine (x int)", "permission denied to create temporary tables"),
    ("CREATE SCHEMA mine", "permission denied for database"),
    ("ALTER TABLE casework.audit_log DISABLE TRIGGER ALL", "must be owner of table audit_log"),
    ("ALTER TABLE casework.audit_log DISABLE TRIGGER audit_log_append_only", "must be owner of table audit_log"),
    ("DROP TRIGGER audit_log_append_only ON casework.audit_log", "must be owner of (table|relation) audit_log"),
    ("CREATE OR REPLACE FUNCTION casework.audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql "
     "AS $$ BEGIN RETURN NULL; END $$", "(permission denied for schema casework|must be owner of function)"),
    ("SET session_replication_role = replica", "permission denied to set parameter"),
    ("SET LOCAL session_replication_role = replica", "permission denied to set parameter"),
    ("TRUNCATE casework.audit_log", "permission denied for table audit_log"),
    ("DELETE FROM casework.audit_log", "append-only"),
    ("UPDATE casework.audit_log SET actor = 'mallory'", "append-only"),
    ("SET ROLE supervision_owner", "permission denied to set role"),
])
async def test_casework_cannot_reach_other_schemas_run_ddl_or_bypass_the_audit_log(roles_db, sql, match) -> None:
    engine = roles_db.engine("casework")
    try:
        if "audit_log" in sql:  # something to refuse to change
            await append_audit_entry(engine)
        await refused(engine, sql, match)
    finally:
        await engine.dispose()


async def test_every_service_role_runs_its_periodic_jobs_on_the_scheduler_without_ddl(roles_db) -> None:
    """Issue 14: the scheduler's job tables (schema `scheduler`, shared/scheduler.py) were made by the migrations
    as the owner; each service role defers and runs its jobs there (procrastinate, over psycopg) and may not
    create anything in that schema."""
    from shared.app import PeriodicJob
    from shared.scheduler import Scheduler

    for role in ROLES:
        ran: list[str] = []

        async def probe(job, role=role, ran=ran) -> None:
            ran.append(role)

        scheduler = Scheduler(role, roles_db.postgres.url_for(role, roles_db.passwords[role]),
                              [PeriodicJob("probe", 60, probe)], probe, shutdown_seconds=2)
        worker = asyncio.create_task(scheduler.run())
        try:
            await asyncio.wait_for(scheduler.ready.wait(), 30)
            assert (await scheduler.defer(f"{role}.probe")).job_id is not None
            for _ in range(300):
                if ran:
                    break
                await asyncio.sleep(0.1)
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
        assert ran == [role], role
        await refused(roles_db.engine(role), "CREATE TABLE scheduler.mine (id int)", "permission denied")

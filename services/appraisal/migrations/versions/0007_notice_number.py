"""notice.number: a result notice's (R39.1) and commendation's (R38.1) 文号, given when finalizing issued it

Before, the number was taken when the notice was first printed, so notices were numbered in the order someone
opened them. Notices issued before this revision keep that way (their number is taken, or was taken, at their
first print and kept by the archive); new ones carry theirs from the start.

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
    op.add_column('notice', sa.Column('number', sa.Text(), nullable=True), schema='appraisal')


def downgrade() -> None:
    op.drop_column('notice', 'number', schema='appraisal')

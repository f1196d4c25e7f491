"""participant.defence_number, appraisal_round.notice_number: the 告知书's (R35.1) and the public notice's
(R34.1(5)) 文号, taken when the notice is sent or the public notice begins

As 0007 did for the result notices: before, the number was taken at the paper's first print. Papers issued before
this revision keep theirs (the archive keeps a subject's 文号 through its versions).

Revision ID: 0008
Revises: 0007
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | Sequence[str] | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('participant', sa.Column('defence_number', sa.Text(), nullable=True), schema='appraisal')
    op.add_column('appraisal_round', sa.Column('notice_number', sa.Text(), nullable=True), schema='appraisal')


def downgrade() -> None:
    op.drop_column('appraisal_round', 'notice_number', schema='appraisal')
    op.drop_column('participant', 'defence_number', schema='appraisal')

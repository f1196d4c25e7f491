"""roster: a confirmed supervisor recorded absent by the bureau after the activity began

`absent` beside `confirmed` and `released`: the person stays on the roster as drawn, is no longer a
signer of the feedback form (R17.1) and gets no subsidy; the reason and time come from selection's
`SupervisorAbsenceRecorded`.

Revision ID: 0003
Revises: 0002
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('roster', sa.Column('absent_at', sa.DateTime(timezone=True), nullable=True), schema='casework')
    op.add_column('roster', sa.Column('absence_reason', sa.Text(), nullable=True), schema='casework')
    op.drop_constraint(op.f('ck_roster_status_valid'), 'roster', schema='casework', type_='check')
    op.create_check_constraint(op.f('ck_roster_status_valid'), 'roster',
                               "status IN ('confirmed', 'released', 'absent')", schema='casework')


def downgrade() -> None:
    op.execute("UPDATE casework.roster SET status = 'confirmed' WHERE status = 'absent'")
    op.drop_constraint(op.f('ck_roster_status_valid'), 'roster', schema='casework', type_='check')
    op.create_check_constraint(op.f('ck_roster_status_valid'), 'roster', "status IN ('confirmed', 'released')",
                               schema='casework')
    op.drop_column('roster', 'absence_reason', schema='casework')
    op.drop_column('roster', 'absent_at', schema='casework')

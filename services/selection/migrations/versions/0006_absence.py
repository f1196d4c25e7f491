"""absence: a confirmed supervisor who did not attend, recorded by the bureau after the activity began

The roster keeps them (the seat was theirs; nobody is drawn in their place after the fact), and
`SupervisorAbsenceRecorded` tells casework (no signature, no subsidy) and appraisal (the ledger, R28.1).

Revision ID: 0006
Revises: 0005
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | Sequence[str] | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'absence',
        sa.Column('request_id', sa.Uuid(), nullable=False),
        sa.Column('supervisor_id', sa.Uuid(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('recorded_by', sa.Text(), nullable=False),
        sa.Column('recorded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('request_id', 'supervisor_id', name=op.f('pk_absence')),
        schema='selection',
    )


def downgrade() -> None:
    op.drop_table('absence', schema='selection')

"""audit_witness: the highest audit-log head this service saw of each other service

Every service publishes its audit head (AuditHeadPublished on platform.audit); the others keep the
highest one here and record an alarm when a head goes back (shared/audit_watch.py, issue 16).

Revision ID: 0005
Revises: 0004
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_witness',
    sa.Column('service', sa.Text(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('alarm', sa.Text(), nullable=True),
    sa.Column('alarm_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('service', name=op.f('pk_audit_witness')),
    schema='registry'
    )


def downgrade() -> None:
    op.drop_table('audit_witness', schema='registry')

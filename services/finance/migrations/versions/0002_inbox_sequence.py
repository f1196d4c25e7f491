"""inbox_sequence: the highest producer sequence each consumer applied per (source, topic, subject)

Signed events carry the producer's sequence (`seq` header = its outbox id); an event older than
what the consumer already applied of its subject is recorded in the inbox as `stale` and not
applied (shared/events/inbox.py, define_inbox_sequence_table).

Revision ID: 0002
Revises: 0001
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('inbox_sequence',
    sa.Column('consumer', sa.Text(), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('topic', sa.Text(), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('consumer', 'source', 'topic', 'subject', name=op.f('pk_inbox_sequence')),
    schema='finance'
    )


def downgrade() -> None:
    op.drop_table('inbox_sequence', schema='finance')

"""Indexes of the bureau's work lists (issue 14): requests by activity time, recusals by age, pool freshness

- `ix_request_starts_at` (starts_at, id): `GET /requests` pages by activity time (keyset, id breaks ties)
  and filters on an activity date range.
- `ix_recusal_inbox` (requested_at, id) of the pending ones: `GET /recusals?status=pending`, oldest first.
- `ix_inbox_event_topic_received` (topic, received_at): `GET /pool/status` asks when the last registry
  event was applied without reading the whole inbox (the platform table is defined in shared/, so this
  index lives in the migration only).

Revision ID: 0009
Revises: 0008
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | Sequence[str] | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_request_starts_at', 'request', ['starts_at', 'id'], unique=False, schema='selection')
    op.create_index('ix_recusal_inbox', 'recusal', ['requested_at', 'id'], unique=False, schema='selection',
                    postgresql_where=sa.text("status = 'pending'"))
    op.create_index('ix_inbox_event_topic_received', 'inbox_event', ['topic', 'received_at'], unique=False,
                    schema='selection')


def downgrade() -> None:
    op.drop_index('ix_inbox_event_topic_received', table_name='inbox_event', schema='selection')
    op.drop_index('ix_recusal_inbox', table_name='recusal', schema='selection')
    op.drop_index('ix_request_starts_at', table_name='request', schema='selection')

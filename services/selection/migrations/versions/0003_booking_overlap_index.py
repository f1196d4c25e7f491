"""booking: an index for "booked at an overlapping time" (the draw's exclusions)

A draw excludes everyone with an active booking overlapping its window:
`active AND starts_at < window end AND ends_at > window start`. Without an index PostgreSQL read every
booking of every year (7 ms per draw at 30 000 bookings). Bookings that end after the window starts are
the few upcoming activities, so an index on `ends_at` of the active bookings finds them directly.

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
    op.create_index('ix_booking_active_ends_at', 'booking', ['ends_at'], unique=False, schema='selection',
                    postgresql_where=sa.text('active'))


def downgrade() -> None:
    op.drop_index('ix_booking_active_ends_at', table_name='booking', schema='selection',
                  postgresql_where=sa.text('active'))

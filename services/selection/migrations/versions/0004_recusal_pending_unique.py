"""recusal: at most one pending request per (request, supervisor, source)

`request_recusal` checked for a pending one, then inserted: two deliveries of the same application
applied at once (a procuratorate's POST and its event, or two consumers) could both insert, and the
bureau would see the application twice. The partial unique index makes the second insert wait for
the first and then do nothing (ON CONFLICT DO NOTHING), so it returns the first one's id.

Revision ID: 0004
Revises: 0003
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('uq_recusal_pending', 'recusal', ['request_id', 'supervisor_id', 'source'], unique=True,
                    schema='selection', postgresql_where=sa.text("status = 'pending'"))


def downgrade() -> None:
    op.drop_index('uq_recusal_pending', table_name='recusal', schema='selection',
                  postgresql_where=sa.text("status = 'pending'"))

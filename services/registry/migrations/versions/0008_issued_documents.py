"""issued_document + document_number: each issued paper stored once (sha256, who, when), 文号 per kind and year

The selection certificate (R5.1), the four dismissal notices and the public announcement (R9.1) are served from
here once issued: the same content asked for again is the same bytes; a notice and an announcement carry a 文号 of
their own kind's per-year sequence (shared/documents/archive.py, issue 18).

Revision ID: 0008
Revises: 0007
"""
from collections.abc import Sequence

from alembic import op

from shared.documents.archive import create_tables_v1, drop_tables_v1

revision: str = '0008'
down_revision: str | Sequence[str] | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_tables_v1(op, 'registry')


def downgrade() -> None:
    drop_tables_v1(op, 'registry')

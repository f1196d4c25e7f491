"""issued_document + document_number: each issued PDF stored once (sha256, who, when), 文号 per kind and year

The feedback form (R17.1) and the monthly transmittal (R20.2) are served from here once issued: the same content
asked for again is the same bytes (shared/documents/archive.py, issue 18).

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
    create_tables_v1(op, 'casework')


def downgrade() -> None:
    drop_tables_v1(op, 'casework')

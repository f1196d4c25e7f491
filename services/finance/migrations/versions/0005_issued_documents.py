"""issued_document + document_number: each issued PDF stored once (sha256, who, when), 文号 per kind and year

The issued monthly table 《威海市人民监督员履职补助发放表》 (R42.1, masked) is served from here: the same content
asked for again is the same bytes (shared/documents/archive.py, issue 18).

Revision ID: 0005
Revises: 0004
"""
from collections.abc import Sequence

from alembic import op

from shared.documents.archive import create_tables_v1, drop_tables_v1

revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_tables_v1(op, 'finance')


def downgrade() -> None:
    drop_tables_v1(op, 'finance')

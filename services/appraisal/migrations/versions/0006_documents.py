"""issued_document + document_number (issue 18); notices and the public notice kept as documents

- notice.document: a result notice (R39.1) or commendation (R38.1) as title, addressee, paragraphs, issuer, date —
  printed in the GB/T 9704 layout with its 文号 (威司〔年〕n号).
- appraisal_round.notice_document: the public notice (R34.1(5)) the same way.
- issued_document / document_number: each issued PDF stored once (sha256, who, when), served byte-identical.

Revision ID: 0006
Revises: 0005
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.documents.archive import create_tables_v1, drop_tables_v1

revision: str = '0006'
down_revision: str | Sequence[str] | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('notice', sa.Column('document', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
                  schema='appraisal')
    op.add_column('appraisal_round', sa.Column('notice_document', postgresql.JSONB(astext_type=sa.Text()),
                                               nullable=True), schema='appraisal')
    create_tables_v1(op, 'appraisal')


def downgrade() -> None:
    drop_tables_v1(op, 'appraisal')
    op.drop_column('appraisal_round', 'notice_document', schema='appraisal')
    op.drop_column('notice', 'document', schema='appraisal')

"""ledger_entry: kind `absence` (a confirmed supervisor who did not attend, recorded by the bureau; R28.1, R32.1)

Revision ID: 0002
Revises: 0001
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = "'activity', 'training', 'conduct', 'other', 'late_change_report'"


def upgrade() -> None:
    op.drop_constraint(op.f('ck_ledger_entry_kind_valid'), 'ledger_entry', schema='appraisal', type_='check')
    op.create_check_constraint(op.f('ck_ledger_entry_kind_valid'), 'ledger_entry',
                               f"kind IN ({KINDS}, 'absence')", schema='appraisal')


def downgrade() -> None:
    op.execute("DELETE FROM appraisal.ledger_entry WHERE kind = 'absence'")
    op.drop_constraint(op.f('ck_ledger_entry_kind_valid'), 'ledger_entry', schema='appraisal', type_='check')
    op.create_check_constraint(op.f('ck_ledger_entry_kind_valid'), 'ledger_entry', f"kind IN ({KINDS})",
                               schema='appraisal')

"""issue 12: forms per (form, signer), frozen monthly tables, paid/rejected, budget excess, rate approval

- feedback_form keyed by (form_id, supervisor_id): casework sends one FeedbackSigned per signer with the
  same form_id (R42.1 reconciliation).
- disbursement_table / _row / _item: the issued 《威海市人民监督员履职补助发放表》 (batch number, versions).
- covering_letter: the procuratorate's 履职情况反馈函 of a month (R42.1, checked before paying).
- subsidy_line / travel_claim: paid_by/paid_at, rejected (with reason), table_id, budget excess approval
  (R41.1); claims: approved in part, attended activity, district (R43.1).
- plan_row.seats (R41.1: the plan is in supervisor-activities); rate.status (N-RATE second approval).

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

S = 'finance'
NEW_STATES = "status IN ('draft', 'checked', 'approved', 'paid', 'rejected')"
OLD_STATES = "status IN ('draft', 'checked', 'approved', 'paid')"


def _payment_columns(table: str) -> None:
    op.add_column(table, sa.Column('paid_by', sa.Text(), nullable=True), schema=S)
    op.add_column(table, sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True), schema=S)
    op.add_column(table, sa.Column('rejected_by', sa.Text(), nullable=True), schema=S)
    op.add_column(table, sa.Column('rejected_at', sa.DateTime(timezone=True), nullable=True), schema=S)
    op.add_column(table, sa.Column('reject_reason', sa.Text(), nullable=True), schema=S)
    op.add_column(table, sa.Column('table_id', sa.Uuid(), nullable=True), schema=S)
    op.create_foreign_key(op.f(f'fk_{table}_table_id_disbursement_table'), table, 'disbursement_table',
                          ['table_id'], ['id'], source_schema=S, referent_schema=S)
    op.create_index(op.f(f'ix_finance_{table}_table_id'), table, ['table_id'], unique=False, schema=S)
    op.add_column(table, sa.Column('excess_approved_by', sa.Text(), nullable=True), schema=S)
    op.add_column(table, sa.Column('excess_approved_at', sa.DateTime(timezone=True), nullable=True), schema=S)
    op.add_column(table, sa.Column('excess_reason', sa.Text(), nullable=True), schema=S)
    op.drop_constraint(op.f(f'ck_{table}_status_valid'), table, schema=S, type_='check')
    op.create_check_constraint(op.f(f'ck_{table}_status_valid'), table, NEW_STATES, schema=S)


def upgrade() -> None:
    op.drop_constraint(op.f('pk_feedback_form'), 'feedback_form', schema=S, type_='primary')
    op.create_primary_key(op.f('pk_feedback_form'), 'feedback_form', ['form_id', 'supervisor_id'], schema=S)
    op.create_index('ix_feedback_form_signature_hash', 'feedback_form', ['signature_hash'], unique=False, schema=S)

    op.create_table('disbursement_table',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('month', sa.Integer(), nullable=False),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('batch_no', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('supersedes_id', sa.Uuid(), nullable=True),
    sa.Column('correction_reason', sa.Text(), nullable=True),
    sa.Column('issued_by', sa.Text(), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('superseded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('row_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('total_activities', sa.Integer(), server_default='0', nullable=False),
    sa.Column('total_subsidy_fen', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('total_travel_fen', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('total_fen', sa.BigInteger(), server_default='0', nullable=False),
    sa.CheckConstraint("status IN ('issued', 'superseded')", name=op.f('ck_disbursement_table_status_valid')),
    sa.CheckConstraint('month BETWEEN 1 AND 12', name=op.f('ck_disbursement_table_month_range')),
    sa.ForeignKeyConstraint(['supersedes_id'], ['finance.disbursement_table.id'],
                            name=op.f('fk_disbursement_table_supersedes_id_disbursement_table')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_disbursement_table')),
    sa.UniqueConstraint('batch_no', 'version', name='uq_disbursement_table_batch_version'),
    schema=S
    )
    op.create_index('uq_disbursement_table_current', 'disbursement_table', ['year', 'month', 'scope'], unique=True,
                    schema=S, postgresql_where=sa.text("status = 'issued'"))
    op.create_table('disbursement_row',
    sa.Column('table_id', sa.Uuid(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('supervisor_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('district', sa.Text(), nullable=False),
    sa.Column('activities', sa.Integer(), nullable=False),
    sa.Column('subsidy_fen', sa.BigInteger(), nullable=False),
    sa.Column('travel_fen', sa.BigInteger(), nullable=False),
    sa.Column('total_fen', sa.BigInteger(), nullable=False),
    sa.Column('bank_name', sa.Text(), nullable=False),
    sa.Column('bank_account_masked', sa.Text(), nullable=False),
    sa.Column('bank_account_encrypted', sa.Text(), nullable=True),
    sa.Column('remark', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['table_id'], ['finance.disbursement_table.id'], ondelete='CASCADE',
                            name=op.f('fk_disbursement_row_table_id_disbursement_table')),
    sa.PrimaryKeyConstraint('table_id', 'seq', name=op.f('pk_disbursement_row')),
    schema=S
    )
    op.create_table('disbursement_item',
    sa.Column('table_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('item_id', sa.Uuid(), nullable=False),
    sa.Column('supervisor_id', sa.Uuid(), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.CheckConstraint("kind IN ('line', 'claim')", name=op.f('ck_disbursement_item_kind_valid')),
    sa.ForeignKeyConstraint(['table_id'], ['finance.disbursement_table.id'], ondelete='CASCADE',
                            name=op.f('fk_disbursement_item_table_id_disbursement_table')),
    sa.PrimaryKeyConstraint('table_id', 'kind', 'item_id', name=op.f('pk_disbursement_item')),
    schema=S
    )
    op.create_table('covering_letter',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('month', sa.Integer(), nullable=False),
    sa.Column('district', sa.Text(), nullable=True),
    sa.Column('reference', sa.Text(), nullable=False),
    sa.Column('recorded_by', sa.Text(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('month BETWEEN 1 AND 12', name=op.f('ck_covering_letter_month_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_covering_letter')),
    schema=S
    )
    op.create_index('ix_covering_letter_period', 'covering_letter', ['year', 'month'], unique=False, schema=S)

    _payment_columns('subsidy_line')
    _payment_columns('travel_claim')
    op.add_column('travel_claim', sa.Column('approved_fen', sa.BigInteger(), nullable=True), schema=S)
    op.add_column('travel_claim', sa.Column('approval_note', sa.Text(), nullable=True), schema=S)
    op.add_column('travel_claim', sa.Column('activity_id', sa.Uuid(), nullable=True), schema=S)
    op.add_column('travel_claim', sa.Column('district', sa.Text(), nullable=True), schema=S)

    op.add_column('plan_row', sa.Column('seats', sa.Integer(), server_default='1', nullable=False), schema=S)
    op.create_check_constraint(op.f('ck_plan_row_seats_positive'), 'plan_row', 'seats >= 1', schema=S)
    op.add_column('rate', sa.Column('status', sa.Text(), server_default='approved', nullable=False), schema=S)
    op.add_column('rate', sa.Column('approved_by', sa.Text(), nullable=True), schema=S)
    op.add_column('rate', sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True), schema=S)
    op.create_check_constraint(op.f('ck_rate_status_valid'), 'rate', "status IN ('pending', 'approved')", schema=S)


def downgrade() -> None:
    op.drop_constraint(op.f('ck_rate_status_valid'), 'rate', schema=S, type_='check')
    for column in ('approved_at', 'approved_by', 'status'):
        op.drop_column('rate', column, schema=S)
    op.drop_constraint(op.f('ck_plan_row_seats_positive'), 'plan_row', schema=S, type_='check')
    op.drop_column('plan_row', 'seats', schema=S)
    for table, extra in (('travel_claim', ('approved_fen', 'approval_note', 'activity_id', 'district')),
                         ('subsidy_line', ())):
        op.drop_constraint(op.f(f'ck_{table}_status_valid'), table, schema=S, type_='check')
        op.execute(f"UPDATE finance.{table} SET status = 'draft' WHERE status = 'rejected'")
        op.create_check_constraint(op.f(f'ck_{table}_status_valid'), table, OLD_STATES, schema=S)
        op.drop_index(op.f(f'ix_finance_{table}_table_id'), table_name=table, schema=S)
        op.drop_constraint(op.f(f'fk_{table}_table_id_disbursement_table'), table, schema=S, type_='foreignkey')
        for column in ('paid_by', 'paid_at', 'rejected_by', 'rejected_at', 'reject_reason', 'table_id',
                       'excess_approved_by', 'excess_approved_at', 'excess_reason', *extra):
            op.drop_column(table, column, schema=S)
    op.drop_index('ix_covering_letter_period', table_name='covering_letter', schema=S)
    op.drop_table('covering_letter', schema=S)
    op.drop_table('disbursement_item', schema=S)
    op.drop_table('disbursement_row', schema=S)
    op.drop_index('uq_disbursement_table_current', table_name='disbursement_table', schema=S)
    op.drop_table('disbursement_table', schema=S)
    op.drop_index('ix_feedback_form_signature_hash', table_name='feedback_form', schema=S)
    op.drop_constraint(op.f('pk_feedback_form'), 'feedback_form', schema=S, type_='primary')
    op.create_primary_key(op.f('pk_feedback_form'), 'feedback_form', ['form_id'], schema=S)

"""draw protocol v4 (DRAW.md version 2): commit–reveal, frozen inputs at acceptance, one chain of acceptances, draws and cancellations

- request: the procuratorate's commitment and revealed nonce (or why not), short notice and the
  bureau's decision on it (R10.2), a receipt time stated by a bureau user for a paper/phone request,
  the acceptance (time, frozen snapshot manifest and params with their hashes, reveal deadline), the
  beacon named at acceptance and its value once entered, cancellation; the requester no longer
  chooses a public value or the lead-time consent (columns dropped); one live request per activity.
- chain_entry: the one hash chain every acceptance, draw receipt and cancellation is appended to.
- supervisor: term start/end, so eligibility is judged on the activity's date (R4.1).
- contact_log: the clerk who recorded an outcome (for the auditors' report; not in the public entry).
- notice: what was recorded for a supervisor by someone else (DRAW.md "Contact"), until the
  notification path exists.
- draw.snapshot (algorithm v1 only) dropped; receipts of v1–v3 exist only in development databases.

Revision ID: 0005
Revises: 0004
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = 'selection'
JSONB = postgresql.JSONB(astext_type=sa.Text())


def upgrade() -> None:
    for name, type_ in (
        ('procuratorate_commitment', sa.Text()), ('procuratorate_nonce_reason', sa.Text()),
        ('short_notice', JSONB), ('short_notice_decision', JSONB), ('received_claim', JSONB),
        ('accepted_at', sa.DateTime(timezone=True)), ('reveal_deadline', sa.DateTime(timezone=True)),
        ('snapshot', JSONB), ('params', JSONB), ('snapshot_hash', sa.Text()), ('params_hash', sa.Text()),
        ('beacon', JSONB), ('cancellation', JSONB),
    ):
        op.add_column('request', sa.Column(name, type_, nullable=True), schema=S)
    op.drop_column('request', 'public_value', schema=S)
    op.drop_column('request', 'lead_time_consent', schema=S)
    # before v4 an activity could have several live requests (free re-rolls): keep the newest live one,
    # close the others (and any accepted-but-undrawn request of v3, which has no acceptance to draw from)
    op.execute("""
        UPDATE selection.request r SET status = 'cancelled',
               cancellation = '{"reason": "draw protocol v4 migration", "by": "system"}'::jsonb
        WHERE r.status NOT IN ('refused', 'cancelled')
          AND (r.status NOT IN ('drawn', 'staffed') OR EXISTS (
                SELECT 1 FROM selection.request n
                WHERE n.activity_id = r.activity_id AND n.status IN ('drawn', 'staffed')
                  AND (n.created_at, n.id) > (r.created_at, r.id)))
    """)
    op.create_index('uq_request_live_activity', 'request', ['activity_id'], unique=True, schema=S,
                    postgresql_where=sa.text("status NOT IN ('refused', 'cancelled')"))
    op.create_index('ix_request_reveal_due', 'request', ['reveal_deadline'], schema=S,
                    postgresql_where=sa.text("status = 'accepted'"))
    op.create_table(
        'chain_entry',
        sa.Column('seq', sa.BigInteger(), nullable=False),
        sa.Column('kind', sa.Text(), nullable=False),
        sa.Column('request_id', sa.Uuid(), nullable=False),
        sa.Column('draw_id', sa.Uuid(), nullable=True),
        sa.Column('hash', sa.Text(), nullable=False),
        sa.Column('prev_hash', sa.Text(), nullable=False),
        sa.Column('body', JSONB, nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.CheckConstraint("kind IN ('acceptance', 'draw', 'cancellation')", name=op.f('ck_chain_entry_kind')),
        sa.PrimaryKeyConstraint('seq', name=op.f('pk_chain_entry')),
        sa.UniqueConstraint('hash', name=op.f('uq_chain_entry_hash')),
        schema=S,
    )
    op.create_index('ix_chain_entry_request', 'chain_entry', ['request_id'], schema=S)
    # the draws already made become the start of the one chain, in their order
    op.execute("INSERT INTO selection.chain_entry (seq, kind, request_id, draw_id, hash, prev_hash, body) "
               "SELECT chain_seq, 'draw', request_id, id, receipt_hash, prev_receipt_hash, "
               "jsonb_build_object('draw_id', id, 'receipt_hash', receipt_hash) FROM selection.draw")
    op.drop_column('draw', 'snapshot', schema=S)
    op.add_column('supervisor', sa.Column('term_start', sa.Date(), nullable=True), schema=S)
    op.add_column('supervisor', sa.Column('term_end', sa.Date(), nullable=True), schema=S)
    op.add_column('contact_log', sa.Column('actor', sa.Text(), nullable=True), schema=S)
    op.create_table(
        'notice',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('supervisor_id', sa.Uuid(), nullable=False),
        sa.Column('request_id', sa.Uuid(), nullable=False),
        sa.Column('kind', sa.Text(), nullable=False),
        sa.Column('body', JSONB, nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notice')),
        schema=S,
    )
    op.create_index('ix_notice_supervisor', 'notice', ['supervisor_id', 'created_at'], schema=S)


def downgrade() -> None:
    op.drop_index('ix_notice_supervisor', table_name='notice', schema=S)
    op.drop_table('notice', schema=S)
    op.drop_column('contact_log', 'actor', schema=S)
    op.drop_column('supervisor', 'term_end', schema=S)
    op.drop_column('supervisor', 'term_start', schema=S)
    op.add_column('draw', sa.Column('snapshot', sa.LargeBinary(), nullable=True), schema=S)
    op.drop_index('ix_chain_entry_request', table_name='chain_entry', schema=S)
    op.drop_table('chain_entry', schema=S)
    op.drop_index('ix_request_reveal_due', table_name='request', schema=S)
    op.drop_index('uq_request_live_activity', table_name='request', schema=S)
    op.add_column('request', sa.Column('lead_time_consent', JSONB, nullable=True), schema=S)
    op.add_column('request', sa.Column('public_value', sa.Text(), nullable=True), schema=S)
    for name in ('cancellation', 'beacon', 'params_hash', 'snapshot_hash', 'params', 'snapshot', 'reveal_deadline',
                 'accepted_at', 'received_claim', 'short_notice_decision', 'short_notice',
                 'procuratorate_nonce_reason', 'procuratorate_commitment'):
        op.drop_column('request', name, schema=S)

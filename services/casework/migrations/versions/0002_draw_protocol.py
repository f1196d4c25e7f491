"""draw protocol people-supervisor-draw/4 (DRAW.md v2, EVENTS.md v2): casework's side

supervision_request:
- the procuratorate nonce is kept encrypted at rest (`procuratorate_nonce_encrypted`, FieldCipher context
  `casework.request.procuratorate_nonce`) and only its commitment sha256(n_P) is sent with the request; the
  plaintext column `procuratorate_nonce` goes (its values were 16-byte nonces already published in v1 events,
  so nothing secret is lost; such legacy requests have no commitment and never reveal);
- `seats_local` and `lead_time_consent` go: the seat split is the bureau's policy (R11.1) and consent is
  recorded by a bureau user in selection (R10.2); a short-notice request carries `short_notice {reason}`;
- the acceptance (once), the reveal time, the shortfall, the contact-log head, the cancellation;
- statuses `awaiting_consent`, `accepted`, `short`, `cancelled` beside the old ones;
- one live request per activity (not refused, not cancelled) by a partial unique index, so two concurrent
  POSTs cannot both pass; older duplicates (none expected: the API checked) are cancelled first.

draw_check: each draw round selection announced (DrawCompleted) and casework's check of its receipt
(DRAW.md protocol step 5), claimed by the periodic job with FOR UPDATE SKIP LOCKED.

Revision ID: 0002
Revises: 0001
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ('requested', 'awaiting_consent', 'accepted', 'drawn', 'short', 'staffed', 'refused', 'cancelled')
OLD_STATUSES = ('requested', 'drawn', 'staffed', 'refused')
LIVE = sa.text("status NOT IN ('refused', 'cancelled')")
DUE = sa.text("status = 'pending'")


def _in(values: tuple[str, ...]) -> str:
    return "status IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    t = 'supervision_request'
    add = lambda column: op.add_column(t, column, schema='casework')  # noqa: E731
    add(sa.Column('short_notice', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    add(sa.Column('calendar_provisional', sa.Boolean(), server_default='false', nullable=False))
    add(sa.Column('procuratorate_nonce_encrypted', sa.Text(), nullable=True))
    add(sa.Column('procuratorate_commitment', sa.Text(), nullable=True))
    add(sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True))
    add(sa.Column('bureau_commitment', sa.Text(), nullable=True))
    add(sa.Column('snapshot_hash', sa.Text(), nullable=True))
    add(sa.Column('params_hash', sa.Text(), nullable=True))
    add(sa.Column('beacon', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    add(sa.Column('short_notice_consent', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    add(sa.Column('revealed_at', sa.DateTime(timezone=True), nullable=True))
    add(sa.Column('shortfall', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False))
    add(sa.Column('contact_log_head', sa.Text(), nullable=True))
    add(sa.Column('cancel_reason', sa.Text(), nullable=True))
    add(sa.Column('cancelled_by', sa.Text(), nullable=True))
    add(sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True))
    op.drop_column(t, 'procuratorate_nonce', schema='casework')
    op.drop_column(t, 'seats_local', schema='casework')
    op.drop_column(t, 'lead_time_consent', schema='casework')
    op.drop_constraint(op.f('ck_supervision_request_status_valid'), t, schema='casework', type_='check')
    op.create_check_constraint(op.f('ck_supervision_request_status_valid'), t, _in(STATUSES), schema='casework')
    # older duplicates of a live request (only possible by a race the API did not close) are cancelled
    op.execute("""
        UPDATE casework.supervision_request r
           SET status = 'cancelled', cancel_reason = 'duplicate live request (migration 0002)',
               cancelled_by = 'migration-0002', cancelled_at = now(), updated_at = now()
         WHERE r.status NOT IN ('refused', 'cancelled')
           AND EXISTS (SELECT 1 FROM casework.supervision_request n
                        WHERE n.activity_id = r.activity_id AND n.status NOT IN ('refused', 'cancelled')
                          AND (n.requested_at, n.id) > (r.requested_at, r.id))""")
    op.create_index('uq_supervision_request_live_activity', t, ['activity_id'], unique=True, schema='casework',
                    postgresql_where=LIVE)

    op.create_table('draw_check',
    sa.Column('draw_id', sa.Uuid(), nullable=False),
    sa.Column('request_id', sa.Uuid(), nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('receipt_hash', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), server_default='pending', nullable=False),
    sa.Column('failed_checks', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'ok', 'mismatch')", name=op.f('ck_draw_check_status_valid')),
    sa.ForeignKeyConstraint(['request_id'], ['casework.supervision_request.id'],
                            name=op.f('fk_draw_check_request_id_supervision_request')),
    sa.PrimaryKeyConstraint('draw_id', name=op.f('pk_draw_check')),
    schema='casework'
    )
    op.create_index(op.f('ix_casework_draw_check_request_id'), 'draw_check', ['request_id'], unique=False,
                    schema='casework')
    op.create_index('ix_draw_check_due', 'draw_check', ['next_attempt_at'], unique=False, schema='casework',
                    postgresql_where=DUE)


def downgrade() -> None:
    """Back to 0001: new statuses are mapped to the nearest old one (cancelled → refused)."""
    t = 'supervision_request'
    op.drop_index('ix_draw_check_due', table_name='draw_check', schema='casework', postgresql_where=DUE)
    op.drop_index(op.f('ix_casework_draw_check_request_id'), table_name='draw_check', schema='casework')
    op.drop_table('draw_check', schema='casework')
    op.drop_index('uq_supervision_request_live_activity', table_name=t, schema='casework', postgresql_where=LIVE)
    op.drop_constraint(op.f('ck_supervision_request_status_valid'), t, schema='casework', type_='check')
    op.execute("""
        UPDATE casework.supervision_request SET
            refusal_code = CASE WHEN status = 'cancelled' THEN 'cancelled' ELSE refusal_code END,
            refusal_detail = CASE WHEN status = 'cancelled' THEN cancel_reason ELSE refusal_detail END,
            status = CASE status WHEN 'awaiting_consent' THEN 'requested' WHEN 'accepted' THEN 'requested'
                                 WHEN 'short' THEN 'drawn' WHEN 'cancelled' THEN 'refused' ELSE status END""")
    op.create_check_constraint(op.f('ck_supervision_request_status_valid'), t, _in(OLD_STATUSES),
                               schema='casework')
    op.add_column(t, sa.Column('lead_time_consent', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
                  schema='casework')
    op.add_column(t, sa.Column('seats_local', sa.Integer(), nullable=True), schema='casework')
    op.add_column(t, sa.Column('procuratorate_nonce', sa.Text(), nullable=True), schema='casework')
    for name in ('cancelled_at', 'cancelled_by', 'cancel_reason', 'contact_log_head', 'shortfall', 'revealed_at',
                 'short_notice_consent', 'beacon', 'params_hash', 'snapshot_hash', 'bureau_commitment',
                 'accepted_at', 'procuratorate_commitment', 'procuratorate_nonce_encrypted',
                 'calendar_provisional', 'short_notice'):
        op.drop_column(t, name, schema='casework')

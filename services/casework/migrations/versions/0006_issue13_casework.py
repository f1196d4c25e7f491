"""issue 13 (casework): opinion history, activity cancel/reschedule, N-MUST matter, transmittal items

- activity: `hearing_matter` (N-MUST: the matter of a public review / hearing the measures name), the
  cancellation (`cancel_reason`, `cancelled_by`, `cancelled_at`, status `cancelled`: it did not take place),
  an index on `ends_at` (R20.1: the overdue query filters on the end); `activity_reschedule` records each new
  time with the request it cancelled and the one that replaced it;
- supervision_request.rescheduled_from: the request a reschedule replaced;
- opinion: `source` (supervisor | procuratorate_record; NULL for opinions recorded before this revision) and
  `version`; `opinion_version` keeps every version, append-only (trigger), existing opinions copied as version 1
  (R16.1: the supervisor's words are never lost nor silently overwritten);
- transmittal_item: each signature in exactly one monthly transmittal (R20.2: a form signed after a month's
  transmittal goes in the next one); the signatures of forms already transmitted are copied.

Revision ID: 0006
Revises: 0005
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | Sequence[str] | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SOURCES = "source IN ('supervisor', 'procuratorate_record')"
GUARD = [
    '''CREATE FUNCTION casework.refuse_opinion_version_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'R16.1: opinion versions are append-only' USING ERRCODE = 'check_violation';
END $$''',
    '''CREATE TRIGGER opinion_version_append_only BEFORE UPDATE OR DELETE ON casework.opinion_version
       FOR EACH ROW EXECUTE FUNCTION casework.refuse_opinion_version_change()''',
]


def upgrade() -> None:
    add = lambda table, column: op.add_column(table, column, schema='casework')  # noqa: E731
    add('activity', sa.Column('hearing_matter', sa.Text(), nullable=True))
    add('activity', sa.Column('cancel_reason', sa.Text(), nullable=True))
    add('activity', sa.Column('cancelled_by', sa.Text(), nullable=True))
    add('activity', sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True))
    op.drop_constraint(op.f('ck_activity_status_valid'), 'activity', schema='casework', type_='check')
    op.create_check_constraint(op.f('ck_activity_status_valid'), 'activity',
                               "status IN ('open', 'held', 'cancelled')", schema='casework')
    op.create_index('ix_activity_ends_at', 'activity', ['ends_at'], unique=False, schema='casework')
    op.create_table('activity_reschedule',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('activity_id', sa.Uuid(), nullable=False),
    sa.Column('previous_starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('previous_ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('cancelled_request_id', sa.Uuid(), nullable=True),
    sa.Column('request_id', sa.Uuid(), nullable=True),
    sa.Column('rescheduled_by', sa.Text(), nullable=False),
    sa.Column('rescheduled_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['activity_id'], ['casework.activity.id'],
                            name=op.f('fk_activity_reschedule_activity_id_activity')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity_reschedule')),
    schema='casework'
    )
    op.create_index(op.f('ix_casework_activity_reschedule_activity_id'), 'activity_reschedule', ['activity_id'],
                    unique=False, schema='casework')
    add('supervision_request', sa.Column('rescheduled_from', sa.Uuid(), nullable=True))

    add('opinion', sa.Column('source', sa.Text(), nullable=True))
    add('opinion', sa.Column('version', sa.Integer(), server_default='1', nullable=False))
    op.create_check_constraint(op.f('ck_opinion_source_valid'), 'opinion', SOURCES, schema='casework')
    op.create_table('opinion_version',
    sa.Column('activity_id', sa.Uuid(), nullable=False),
    sa.Column('supervisor_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('source', sa.Text(), nullable=True),
    sa.Column('recorded_by', sa.Text(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(SOURCES, name=op.f('ck_opinion_version_source_valid')),
    sa.ForeignKeyConstraint(['activity_id'], ['casework.activity.id'],
                            name=op.f('fk_opinion_version_activity_id_activity')),
    sa.PrimaryKeyConstraint('activity_id', 'supervisor_id', 'version', name=op.f('pk_opinion_version')),
    schema='casework'
    )
    op.execute("""
        INSERT INTO casework.opinion_version (activity_id, supervisor_id, version, text, source, recorded_by,
                                              recorded_at)
        SELECT activity_id, supervisor_id, 1, text, NULL, recorded_by, recorded_at FROM casework.opinion""")
    for statement in GUARD:
        op.execute(statement)

    op.create_table('transmittal_item',
    sa.Column('form_id', sa.Uuid(), nullable=False),
    sa.Column('supervisor_id', sa.Uuid(), nullable=False),
    sa.Column('transmittal_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['form_id'], ['casework.feedback_form.id'],
                            name=op.f('fk_transmittal_item_form_id_feedback_form')),
    sa.ForeignKeyConstraint(['transmittal_id'], ['casework.transmittal.id'],
                            name=op.f('fk_transmittal_item_transmittal_id_transmittal')),
    sa.PrimaryKeyConstraint('form_id', 'supervisor_id', name=op.f('pk_transmittal_item')),
    schema='casework'
    )
    op.create_index(op.f('ix_casework_transmittal_item_transmittal_id'), 'transmittal_item', ['transmittal_id'],
                    unique=False, schema='casework')
    op.execute("""
        INSERT INTO casework.transmittal_item (form_id, supervisor_id, transmittal_id)
        SELECT s.form_id, s.supervisor_id, t.id
          FROM casework.transmittal t
         CROSS JOIN LATERAL jsonb_array_elements_text(t.form_ids) AS f(id)
          JOIN casework.signature s ON s.form_id = f.id::uuid
        ON CONFLICT DO NOTHING""")


def downgrade() -> None:
    op.drop_index(op.f('ix_casework_transmittal_item_transmittal_id'), table_name='transmittal_item',
                  schema='casework')
    op.drop_table('transmittal_item', schema='casework')
    op.execute('DROP FUNCTION IF EXISTS casework.refuse_opinion_version_change() CASCADE')
    op.drop_table('opinion_version', schema='casework')
    op.drop_constraint(op.f('ck_opinion_source_valid'), 'opinion', schema='casework', type_='check')
    op.drop_column('opinion', 'version', schema='casework')
    op.drop_column('opinion', 'source', schema='casework')
    op.drop_column('supervision_request', 'rescheduled_from', schema='casework')
    op.drop_index(op.f('ix_casework_activity_reschedule_activity_id'), table_name='activity_reschedule',
                  schema='casework')
    op.drop_table('activity_reschedule', schema='casework')
    op.drop_index('ix_activity_ends_at', table_name='activity', schema='casework')
    op.drop_constraint(op.f('ck_activity_status_valid'), 'activity', schema='casework', type_='check')
    op.execute("UPDATE casework.activity SET status = 'open' WHERE status = 'cancelled'")
    op.create_check_constraint(op.f('ck_activity_status_valid'), 'activity', "status IN ('open', 'held')",
                               schema='casework')
    for name in ('cancelled_at', 'cancelled_by', 'cancel_reason', 'hearing_matter'):
        op.drop_column('activity', name, schema='casework')

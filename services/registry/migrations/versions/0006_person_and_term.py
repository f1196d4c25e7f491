"""person and term: birth date not kept (R3.1), term level and end (N-TERM, N-BAN), exclusions with notes
(N-EXCL), appraisal results received (R8.1 ground 5)

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


def upgrade() -> None:
    # R3.1: digits 7-14 of the id in clear beside its masked form rebuild it; derivable from the encrypted id
    op.alter_column('supervisor', 'birth_date', existing_type=sa.Date(), nullable=True, schema='registry')
    op.execute("UPDATE registry.supervisor SET birth_date = NULL WHERE birth_date IS NOT NULL")
    op.add_column('appointment', sa.Column('level', sa.Text(), server_default='city', nullable=False),
                  schema='registry')
    op.add_column('appointment', sa.Column('ended_on', sa.Date(), nullable=True), schema='registry')
    op.add_column('appointment', sa.Column('end_reason', sa.Text(), nullable=True), schema='registry')
    op.create_check_constraint(op.f('ck_appointment_level'), 'appointment', "level IN ('provincial','city')", schema='registry')
    op.create_check_constraint(op.f('ck_appointment_end_reason'), 'appointment', "end_reason IN ('term_ended','resigned','dismissed')",
                               schema='registry')
    # terms that already ended: early by a confirmed dismissal/resignation, or at their end
    op.execute("""UPDATE registry.appointment a SET ended_on = (d.decided_at AT TIME ZONE 'Asia/Shanghai')::date,
                      end_reason = CASE WHEN d.ground = 1 THEN 'resigned' ELSE 'dismissed' END
                  FROM registry.dismissal d
                  WHERE d.supervisor_id = a.supervisor_id AND d.status = 'confirmed'
                    AND (d.decided_at AT TIME ZONE 'Asia/Shanghai')::date BETWEEN a.term_start AND a.term_end""")
    op.execute("""UPDATE registry.appointment a SET ended_on = a.term_end, end_reason = 'term_ended'
                  FROM registry.supervisor s
                  WHERE s.id = a.supervisor_id AND a.ended_on IS NULL
                    AND (s.status = 'term_ended' OR a.term_end < s.term_start)""")
    op.create_table('exclusion',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('supervisor_id', sa.Uuid(), nullable=False),
    sa.Column('person_hash', sa.Text(), nullable=False),
    sa.Column('ground', sa.Text(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('recorded_by', sa.Text(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('lifted_by', sa.Text(), nullable=True),
    sa.Column('lifted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lift_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['supervisor_id'], ['registry.supervisor.id'],
                            name=op.f('fk_exclusion_supervisor_id_supervisor')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exclusion')),
    schema='registry'
    )
    op.create_index(op.f('ix_exclusion_supervisor_id'), 'exclusion', ['supervisor_id'], schema='registry')
    op.create_index(op.f('ix_exclusion_person_hash'), 'exclusion', ['person_hash'], schema='registry')
    op.create_index('uq_exclusion_in_force', 'exclusion', ['supervisor_id'], unique=True, schema='registry',
                    postgresql_where=sa.text('lifted_at IS NULL'))
    # exclusions recorded before (the note was not kept then)
    op.execute("""INSERT INTO registry.exclusion (id, supervisor_id, person_hash, ground, note, recorded_by)
                  SELECT gen_random_uuid(), id, id_number_hash, excluded_ground, '（迁移前记录，未保存说明）', 'migration'
                  FROM registry.supervisor WHERE excluded_ground IS NOT NULL""")
    op.create_table('appraisal_result',
    sa.Column('round_id', sa.Uuid(), nullable=False),
    sa.Column('supervisor_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('period', sa.Text(), nullable=False),
    sa.Column('grade', sa.Text(), nullable=False),
    sa.Column('finalized_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('event_id', sa.Uuid(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('round_id', 'supervisor_id', name=op.f('pk_appraisal_result')),
    schema='registry'
    )


def downgrade() -> None:
    op.drop_table('appraisal_result', schema='registry')
    op.drop_index('uq_exclusion_in_force', table_name='exclusion', schema='registry')
    op.drop_index(op.f('ix_exclusion_person_hash'), table_name='exclusion', schema='registry')
    op.drop_index(op.f('ix_exclusion_supervisor_id'), table_name='exclusion', schema='registry')
    op.drop_table('exclusion', schema='registry')
    op.drop_constraint(op.f('ck_appointment_end_reason'), 'appointment', schema='registry')
    op.drop_constraint(op.f('ck_appointment_level'), 'appointment', schema='registry')
    op.drop_column('appointment', 'end_reason', schema='registry')
    op.drop_column('appointment', 'ended_on', schema='registry')
    op.drop_column('appointment', 'level', schema='registry')
    # the birth dates cannot be restored without the field key; the column stays nullable


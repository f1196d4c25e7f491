"""Rounds that always finish (issue 12): R30.1 justification on the round, round_history, result versions,
district_consultation (R34.1(3)), the R31.1 checklist, the R35.1 告知书 and statements received on paper

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

GRADES = "'excellent', 'qualified', 'basically_qualified', 'unqualified'"
ROUND_COLUMNS = [('cap_justification', sa.Text()), ('cap_justified_count', sa.Integer()),
                 ('cap_justified_by', sa.Text()), ('cap_justified_at', sa.DateTime(timezone=True)),
                 ('cap_approved_by', sa.Text()), ('cap_approved_at', sa.DateTime(timezone=True))]
PARTICIPANT_COLUMNS = [('excellent_criteria', postgresql.JSONB(astext_type=sa.Text())),
                       ('defence_notice_text', sa.Text()), ('statement_by', sa.Text()),
                       ('statement_received_on', sa.Date()), ('result_version', sa.Integer())]


def upgrade() -> None:
    for name, type_ in ROUND_COLUMNS:
        op.add_column('appraisal_round', sa.Column(name, type_, nullable=True), schema='appraisal')
    for name, type_ in PARTICIPANT_COLUMNS:
        op.add_column('participant', sa.Column(name, type_, nullable=True), schema='appraisal')
    op.create_table('round_history',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('round_id', sa.Uuid(), nullable=False),
    sa.Column('supervisor_id', sa.Uuid(), nullable=True),
    sa.Column('action', sa.Text(), nullable=False),
    sa.Column('from_state', sa.Text(), nullable=True),
    sa.Column('to_state', sa.Text(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('details', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['round_id'], ['appraisal.appraisal_round.id'], name=op.f('fk_round_history_round_id_appraisal_round'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_round_history')),
    schema='appraisal'
    )
    op.create_index('ix_round_history_round', 'round_history', ['round_id', 'id'], unique=False, schema='appraisal')
    op.create_table('result',
    sa.Column('round_id', sa.Uuid(), nullable=False),
    sa.Column('supervisor_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('grade', sa.Text(), nullable=False),
    sa.Column('grounds', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('decided_by', sa.Text(), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.CheckConstraint(f"grade IN ({GRADES})", name=op.f('ck_result_grade_valid')),
    sa.CheckConstraint('version >= 1', name=op.f('ck_result_version_positive')),
    sa.ForeignKeyConstraint(['round_id'], ['appraisal.appraisal_round.id'], name=op.f('fk_result_round_id_appraisal_round'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('round_id', 'supervisor_id', 'version', name=op.f('pk_result')),
    schema='appraisal'
    )
    op.create_table('district_consultation',
    sa.Column('round_id', sa.Uuid(), nullable=False),
    sa.Column('district', sa.Text(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('recorded_by', sa.Text(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['round_id'], ['appraisal.appraisal_round.id'], name=op.f('fk_district_consultation_round_id_appraisal_round'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('round_id', 'district', name=op.f('pk_district_consultation')),
    schema='appraisal'
    )
    # results finalized before this revision are their version 1
    op.execute("""
        INSERT INTO appraisal.result (round_id, supervisor_id, version, grade, grounds, decided_by, decided_at)
        SELECT p.round_id, p.supervisor_id, 1, p.final_grade, p.grounds, coalesce(s.actor, r.created_by),
               coalesce(s.at, r.created_at)
        FROM appraisal.participant p
        JOIN appraisal.appraisal_round r ON r.id = p.round_id
        LEFT JOIN appraisal.round_step s ON s.round_id = p.round_id AND s.state = 'finalized'
        WHERE p.final_grade IS NOT NULL""")
    op.execute("UPDATE appraisal.participant SET result_version = 1 WHERE final_grade IS NOT NULL")


def downgrade() -> None:
    op.drop_table('district_consultation', schema='appraisal')
    op.drop_table('result', schema='appraisal')
    op.drop_index('ix_round_history_round', table_name='round_history', schema='appraisal')
    op.drop_table('round_history', schema='appraisal')
    for name, _ in reversed(PARTICIPANT_COLUMNS):
        op.drop_column('participant', name, schema='appraisal')
    for name, _ in reversed(ROUND_COLUMNS):
        op.drop_column('appraisal_round', name, schema='appraisal')

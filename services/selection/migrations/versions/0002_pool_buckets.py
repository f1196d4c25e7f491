"""selection: the pool as content-addressed buckets, kept current by triggers (draw algorithm v2)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 11:20:00

`pool_change` is written by statement triggers on `supervisor` and `booking` in the writer's own
transaction, so no write path can forget to mark the pool changed; the next draw consumes the rows
and rebuilds only those buckets (services/selection/pool/snapshot.py). Draws of algorithm v1 keep
their stored snapshot (`draw.snapshot`), which becomes nullable: v2 draws name buckets instead.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGGERS = [
    '''CREATE FUNCTION selection.pool_change_from_supervisor() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO selection.pool_change (prefix) SELECT DISTINCT left(id::text, 2) FROM old_rows;
    ELSE
        INSERT INTO selection.pool_change (prefix) SELECT DISTINCT left(id::text, 2) FROM new_rows;
    END IF;
    RETURN NULL;
END $$''',
    '''CREATE FUNCTION selection.pool_change_from_booking() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO selection.pool_change (prefix, year)
        SELECT DISTINCT left(supervisor_id::text, 2), year FROM old_rows;
    ELSE
        INSERT INTO selection.pool_change (prefix, year)
        SELECT DISTINCT left(supervisor_id::text, 2), year FROM new_rows;
    END IF;
    RETURN NULL;
END $$''',
]
for table, fn in (('supervisor', 'pool_change_from_supervisor'), ('booking', 'pool_change_from_booking')):
    for event, alias in (('INSERT', 'NEW TABLE AS new_rows'), ('UPDATE', 'NEW TABLE AS new_rows'),
                         ('DELETE', 'OLD TABLE AS old_rows')):
        TRIGGERS.append(f'''CREATE TRIGGER {table}_pool_{event.lower()} AFTER {event} ON selection.{table}
       REFERENCING {alias} FOR EACH STATEMENT EXECUTE FUNCTION selection.{fn}()''')


def upgrade() -> None:
    op.create_table(
        'pool_bucket',
        sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('prefix', sa.Text(), nullable=False),
        sa.Column('hash', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('year', 'prefix', name=op.f('pk_pool_bucket')),
        schema='selection',
    )
    op.create_table(
        'pool_blob',
        sa.Column('hash', sa.Text(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('hash', name=op.f('pk_pool_blob')),
        schema='selection',
    )
    op.create_table(
        'pool_change',
        sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column('prefix', sa.Text(), nullable=False),
        sa.Column('year', sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_pool_change')),
        schema='selection',
    )
    op.alter_column('draw', 'snapshot', existing_type=sa.LargeBinary(), nullable=True, schema='selection')
    for statement in TRIGGERS:
        op.execute(statement)
    # everything already in the pool counts as changed (the first draw of a year builds it anyway)
    op.execute("INSERT INTO selection.pool_change (prefix) "
               "SELECT DISTINCT left(id::text, 2) FROM selection.supervisor")


def downgrade() -> None:
    for table in ('supervisor', 'booking'):
        for event in ('insert', 'update', 'delete'):
            op.execute(f'DROP TRIGGER IF EXISTS {table}_pool_{event} ON selection.{table}')
    op.execute('DROP FUNCTION IF EXISTS selection.pool_change_from_supervisor()')
    op.execute('DROP FUNCTION IF EXISTS selection.pool_change_from_booking()')
    # never drop a draw: revision 0001 cannot hold a v2 draw, so refuse while one exists
    op.execute('''DO $$ BEGIN
        IF EXISTS (SELECT 1 FROM selection.draw WHERE snapshot IS NULL) THEN
            RAISE EXCEPTION 'draws of algorithm v2 exist; downgrading below 0002 would lose them';
        END IF; END $$''')
    op.alter_column('draw', 'snapshot', existing_type=sa.LargeBinary(), nullable=False, schema='selection')
    op.drop_table('pool_change', schema='selection')
    op.drop_table('pool_blob', schema='selection')
    op.drop_table('pool_bucket', schema='selection')

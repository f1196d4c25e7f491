"""supervisor tally: exact counts per district, status and eligibility, kept by triggers

Revision ID: 0002
Revises: 0001
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = """CREATE FUNCTION registry.supervisor_tally_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE registry.supervisor_tally SET n = n - 1
        WHERE district = OLD.district AND status = OLD.status AND eligible = OLD.eligible;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO registry.supervisor_tally AS t (district, status, eligible, n)
        VALUES (NEW.district, NEW.status, NEW.eligible, 1)
        ON CONFLICT (district, status, eligible) DO UPDATE SET n = t.n + 1;
    END IF;
    RETURN NULL;
END
$$"""


def upgrade() -> None:
    op.create_table('supervisor_tally',
    sa.Column('district', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('eligible', sa.Boolean(), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('district', 'status', 'eligible', name=op.f('pk_supervisor_tally')),
    schema='registry'
    )
    op.execute(FUNCTION)
    op.execute("CREATE TRIGGER supervisor_tally_insert_delete AFTER INSERT OR DELETE ON registry.supervisor "
               "FOR EACH ROW EXECUTE FUNCTION registry.supervisor_tally_apply()")
    op.execute("CREATE TRIGGER supervisor_tally_update AFTER UPDATE OF district, status, eligible "
               "ON registry.supervisor FOR EACH ROW WHEN (OLD.district IS DISTINCT FROM NEW.district "
               "OR OLD.status IS DISTINCT FROM NEW.status OR OLD.eligible IS DISTINCT FROM NEW.eligible) "
               "EXECUTE FUNCTION registry.supervisor_tally_apply()")
    # rows written before this migration (the lock keeps writers out until the tally is complete)
    op.execute("LOCK TABLE registry.supervisor IN SHARE MODE")
    op.execute("INSERT INTO registry.supervisor_tally (district, status, eligible, n) "
               "SELECT district, status, eligible, count(*) FROM registry.supervisor GROUP BY 1, 2, 3")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS supervisor_tally_update ON registry.supervisor")
    op.execute("DROP TRIGGER IF EXISTS supervisor_tally_insert_delete ON registry.supervisor")
    op.execute("DROP FUNCTION IF EXISTS registry.supervisor_tally_apply()")
    op.drop_table('supervisor_tally', schema='registry')

"""feedback_form.number: the form's 编号 is given when it is completed (its last signature), not when first read

R17.1 (issue 18): the number 威检监反〔年〕n号 was taken from the per-year sequence by the first GET of the form's PDF —
a read that issued, numbering forms in the order someone happened to print them (an unfinished form included).
Now the signature that completes the form takes the next number of the year it was completed in
(`document_number`, kind `feedback_form`) and stores it here; the PDF only prints it.

- `number` (text, null until the form is completed); once set it never changes: `refuse_form_change` (R17.1) now
  refuses that too.
- Existing forms: one already printed keeps the number its archived PDF carries; a completed form never printed
  takes the next numbers of its year in order of completion (the sequence continues after them).

Revision ID: 0010
Revises: 0009
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | Sequence[str] | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GUARD = '''CREATE OR REPLACE FUNCTION casework.refuse_form_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.id IS DISTINCT FROM OLD.id OR NEW.activity_id IS DISTINCT FROM OLD.activity_id
       OR NEW.request_id IS DISTINCT FROM OLD.request_id OR NEW.content IS DISTINCT FROM OLD.content
       OR NEW.content_hash IS DISTINCT FROM OLD.content_hash OR NEW.frozen_at IS DISTINCT FROM OLD.frozen_at
       OR (OLD.completed_at IS NOT NULL AND NEW.completed_at IS DISTINCT FROM OLD.completed_at)
       OR (OLD.number IS NOT NULL AND NEW.number IS DISTINCT FROM OLD.number) THEN
        RAISE EXCEPTION 'R17.1: feedback form % is signed and cannot be changed', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$'''

# the function as 0001 wrote it (downgrade)
GUARD_0001 = '''CREATE OR REPLACE FUNCTION casework.refuse_form_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.id IS DISTINCT FROM OLD.id OR NEW.activity_id IS DISTINCT FROM OLD.activity_id
       OR NEW.request_id IS DISTINCT FROM OLD.request_id OR NEW.content IS DISTINCT FROM OLD.content
       OR NEW.content_hash IS DISTINCT FROM OLD.content_hash OR NEW.frozen_at IS DISTINCT FROM OLD.frozen_at
       OR (OLD.completed_at IS NOT NULL AND NEW.completed_at IS DISTINCT FROM OLD.completed_at) THEN
        RAISE EXCEPTION 'R17.1: feedback form % is signed and cannot be changed', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$'''

FROM_ARCHIVE = '''UPDATE casework.feedback_form f SET number = (
    SELECT d.number FROM casework.issued_document d
    WHERE d.kind = 'feedback_form' AND d.subject = f.activity_id::text AND d.number IS NOT NULL
    ORDER BY d.issued_at LIMIT 1)
WHERE f.completed_at IS NOT NULL AND f.number IS NULL'''

# completed, never printed: the next numbers of the year of completion (Asia/Shanghai), in order of completion
NEVER_PRINTED = '''WITH todo AS (
    SELECT id, extract(year FROM completed_at AT TIME ZONE 'Asia/Shanghai')::int AS year,
           row_number() OVER (PARTITION BY extract(year FROM completed_at AT TIME ZONE 'Asia/Shanghai')
                              ORDER BY completed_at, id) AS n
    FROM casework.feedback_form WHERE completed_at IS NOT NULL AND number IS NULL),
base AS (
    SELECT y.year, coalesce((SELECT last FROM casework.document_number d
                             WHERE d.kind = 'feedback_form' AND d.year = y.year), 0) AS last
    FROM (SELECT DISTINCT year FROM todo) y),
numbered AS (
    UPDATE casework.feedback_form f SET number = '威检监反〔' || todo.year || '〕' || (base.last + todo.n) || '号'
    FROM todo JOIN base USING (year) WHERE f.id = todo.id
    RETURNING todo.year, base.last + todo.n AS sequence)
INSERT INTO casework.document_number (kind, year, last)
SELECT 'feedback_form', year, max(sequence) FROM numbered GROUP BY year
ON CONFLICT (kind, year) DO UPDATE SET last = excluded.last'''


def upgrade() -> None:
    op.add_column('feedback_form', sa.Column('number', sa.Text(), nullable=True), schema='casework')
    op.execute(GUARD)
    op.execute(FROM_ARCHIVE)
    op.execute(NEVER_PRINTED)


def downgrade() -> None:
    op.execute(GUARD_0001)
    op.drop_column('feedback_form', 'number', schema='casework')

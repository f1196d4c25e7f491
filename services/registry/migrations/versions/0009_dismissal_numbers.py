"""dismissal numbers: the 文号 of the four notices and the announcement are given by the decision (R9.1)

Until now (0008) a notice or the announcement took its number from its kind's per-year sequence when its PDF was
first read — a read that issued, numbering papers in the order someone happened to print them. Now the decision
(`dismissals/service._execute_dismissal`) numbers them: each notice record (`dismissal.notices`, JSON) carries its
`number`, the announcement's is `dismissal.announcement_number`.

Existing confirmed dismissals: a paper already archived keeps the number its PDF carries; the others take the next
numbers of their year (the notice's `issued_on`, the decision's day in Asia/Shanghai for the announcement) in
order of decision (notices in the order recorded: person, employer, recommending body, procuratorate), and the
sequences continue after them.

Revision ID: 0009
Revises: 0008
"""
import json
from collections.abc import Sequence
from datetime import date
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | Sequence[str] | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOTICE, ANNOUNCEMENT = 'registry_dismissal_notice', 'registry_dismissal_announcement'
CODES = {NOTICE: '威司免', ANNOUNCEMENT: '威司公告'}  # as services/registry/papers.py had them when written
SHANGHAI = ZoneInfo('Asia/Shanghai')


def upgrade() -> None:
    op.add_column('dismissal', sa.Column('announcement_number', sa.Text(), nullable=True), schema='registry')
    bind = op.get_bind()
    archived = {(kind, subject): number for kind, subject, number in bind.execute(sa.text(
        "SELECT DISTINCT ON (kind, subject) kind, subject, number FROM registry.issued_document "
        "WHERE kind IN (:n, :a) AND number IS NOT NULL ORDER BY kind, subject, issued_at"),
        {"n": NOTICE, "a": ANNOUNCEMENT})}
    last = {(kind, year): n for kind, year, n in bind.execute(sa.text(
        "SELECT kind, year, last FROM registry.document_number WHERE kind IN (:n, :a)"),
        {"n": NOTICE, "a": ANNOUNCEMENT})}

    def number(kind: str, year: int) -> str:
        last[(kind, year)] = last.get((kind, year), 0) + 1
        return f"{CODES[kind]}〔{year}〕{last[(kind, year)]}号"

    rows = bind.execute(sa.text(
        "SELECT id, notices, decided_at FROM registry.dismissal WHERE status = 'confirmed' AND decided_at IS NOT NULL "
        "ORDER BY decided_at, id")).all()
    for dismissal_id, notices, decided_at in rows:
        records = []
        for record in notices or []:
            if not record.get("number"):
                year = date.fromisoformat(record["issued_on"]).year if record.get("issued_on") else \
                    decided_at.astimezone(SHANGHAI).year
                record = {**record, "number": archived.get((NOTICE, f"{dismissal_id}:{record['recipient_kind']}"))
                          or number(NOTICE, year)}
            records.append(record)
        announced = archived.get((ANNOUNCEMENT, str(dismissal_id))) or \
            number(ANNOUNCEMENT, decided_at.astimezone(SHANGHAI).year)
        bind.execute(sa.text("UPDATE registry.dismissal SET notices = CAST(:notices AS jsonb), "
                             "announcement_number = :announced WHERE id = :id"),
                     {"notices": json.dumps(records, ensure_ascii=False), "announced": announced, "id": dismissal_id})
    for (kind, year), n in last.items():
        bind.execute(sa.text(
            "INSERT INTO registry.document_number (kind, year, last) VALUES (:k, :y, :n) "
            "ON CONFLICT (kind, year) DO UPDATE SET last = excluded.last"), {"k": kind, "y": year, "n": n})


def downgrade() -> None:
    op.execute("UPDATE registry.dismissal SET notices = (SELECT coalesce(jsonb_agg(n - 'number' ORDER BY i), '[]') "
               "FROM jsonb_array_elements(notices) WITH ORDINALITY AS e(n, i)) WHERE notices IS NOT NULL")
    op.drop_column('dismissal', 'announcement_number', schema='registry')

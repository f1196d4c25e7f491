"""Append-only, hash-chained audit log, one `audit_log` table per service schema (R3.1).

Each row's hash covers the previous row's hash and its own fields, so an edited, deleted,
inserted or reordered row breaks the chain and `verify` names the first bad seq. Callers
put identifiers in `subject` and `details` (ids, field names, counts), never personal data
such as names, id numbers or phones: the log cannot be edited later to remove them.

Limits: an attacker with database superuser rights can bypass the trigger and rewrite the
whole chain consistently, or delete its newest rows. Both are caught only against a head
kept outside the database: publish `head()` periodically and pass it as `expected_head`.
"""

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    MetaData,
    Table,
    Text,
    bindparam,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from shared import clock

GENESIS_HASH = "0" * 64
VERIFY_BATCH = 1000


def define_audit_table(metadata: MetaData) -> Table:
    """The `audit_log` table in `metadata`'s schema."""
    return Table(
        "audit_log",
        metadata,
        # Assigned by `append` as last + 1 under a lock: a database sequence would leave gaps
        # on rollback, and gaps are how deletions are detected.
        Column("seq", BigInteger, primary_key=True, autoincrement=False),
        Column("at", DateTime(timezone=True), nullable=False),
        Column("actor", Text, nullable=False),
        Column("action", Text, nullable=False),
        Column("subject", Text, nullable=False),
        Column("details", JSONB, nullable=False),
        Column("correlation_id", Text, nullable=True),
        Column("prev_hash", Text, nullable=False),
        Column("hash", Text, nullable=False),
    )


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def append_only_ddl(schema: str, table: str = "audit_log") -> list[str]:
    """Statements (for a migration) that make PostgreSQL refuse UPDATE, DELETE and TRUNCATE."""
    qualified = f"{_quote(schema)}.{_quote(table)}"
    function = f"{_quote(schema)}.{_quote(table + '_refuse_change')}"
    return [
        f"""CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit log %.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
    RETURN NULL;
END
$$""",
        f"CREATE TRIGGER {_quote(table + '_append_only')} BEFORE UPDATE OR DELETE ON {qualified} "
        f"FOR EACH ROW EXECUTE FUNCTION {function}()",
        # Row triggers do not fire on TRUNCATE; a statement trigger does.
        f"CREATE TRIGGER {_quote(table + '_no_truncate')} BEFORE TRUNCATE ON {qualified} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
    ]


def _lock_key(table: Table) -> int:
    """Stable signed 64-bit advisory lock id for this schema + table."""
    digest = hashlib.sha256(f"audit_log:{table.schema or ''}.{table.name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _row_hash(
    prev_hash: str,
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    details: Any,
    correlation_id: str | None,
) -> str:
    """sha256 hex of the previous hash followed by the canonical JSON of the row's fields."""
    fields = {
        "seq": seq,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "subject": subject,
        "details": details,
        "correlation_id": correlation_id,
    }
    return hashlib.sha256((prev_hash + _canonical_json(fields)).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One entry to append: who did what to which subject (ids, field names, counts: no personal data)."""

    actor: str
    action: str
    subject: str
    details: dict[str, Any] | None = None
    correlation_id: str | None = None


# Takes the table's lock, then hands back each entry's details as PostgreSQL stores them (JSONB renormalizes
# numbers: 1e16 comes back as an int; default=str turned dates and UUIDs into strings first), in their order.
_LOCK_AND_NORMALIZE = text(
    "SELECT pg_advisory_xact_lock(:key) AS locked, (SELECT jsonb_agg(d::jsonb ORDER BY n) "
    "FROM unnest(CAST(:details AS text[])) WITH ORDINALITY AS u(d, n)) AS details"
).bindparams(bindparam("key", type_=BigInteger), bindparam("details", type_=ARRAY(Text))
             ).columns(locked=Text, details=JSONB)


async def append(
    session: AsyncSession,
    table: Table,
    *,
    actor: str,
    action: str,
    subject: str,
    details: dict[str, Any] | None = None,
    correlation_id: str | None = None,
) -> int:
    """Append one entry in the caller's transaction (never commits); returns its seq (`append_many` of one)."""
    return (await append_many(session, table, [Entry(actor, action, subject, details, correlation_id)]))[0]


async def append_many(session: AsyncSession, table: Table, entries: Sequence[Entry]) -> list[int]:
    """Append `entries` in this order in the caller's transaction (never commits); returns their seqs.

    The chain is the one appending them one by one at the same moment would give: each row's hash covers the
    previous row's (`_row_hash`), whatever the batch; three round trips for any number of entries.
    Use READ COMMITTED (the default): the last row is read after taking the lock, and a
    snapshot taken earlier in the transaction would miss rows committed meanwhile.
    """
    if not entries:
        return []
    texts = [_canonical_json(e.details if e.details is not None else {}) for e in entries]
    # The lock serializes appenders until the caller's transaction ends, so seq has no gaps.
    stored = (await session.execute(_LOCK_AND_NORMALIZE, {"key": _lock_key(table), "details": texts})).one()
    last = (
        await session.execute(select(table.c.seq, table.c.hash).order_by(table.c.seq.desc()).limit(1))
    ).first()
    prev_seq, prev_hash = (last[0], last[1]) if last else (0, GENESIS_HASH)
    at = clock.now()
    rows = []
    for offset, (entry, details) in enumerate(zip(entries, stored.details, strict=True), start=1):
        row = {"seq": prev_seq + offset, "at": at, "actor": entry.actor, "action": entry.action,
               "subject": entry.subject, "details": details, "correlation_id": entry.correlation_id}
        row_hash = _row_hash(prev_hash, **row)
        rows.append({**row, "prev_hash": prev_hash, "hash": row_hash})
        prev_hash = row_hash
    await session.execute(table.insert(), rows)
    return [r["seq"] for r in rows]


async def head(session: AsyncSession, table: Table) -> tuple[int, str]:
    """(seq, hash) of the newest entry, (0, GENESIS_HASH) if empty: anchor it outside the DB."""
    last = (
        await session.execute(select(table.c.seq, table.c.hash).order_by(table.c.seq.desc()).limit(1))
    ).first()
    return (last[0], last[1]) if last else (0, GENESIS_HASH)


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of `verify`: rows checked and, if broken, the first bad seq and why."""

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None


async def verify(
    session: AsyncSession,
    table: Table,
    *,
    expected_head: tuple[int, str] | None = None,
    batch_size: int = VERIFY_BATCH,
) -> VerifyResult:
    """Recompute the chain in seq order, in keyset pages, and report the first break.

    Without `expected_head` deleted newest rows go unnoticed (the rest is still a valid
    chain); with it, the chain must reach that seq with that hash.
    """
    columns = [
        table.c.seq,
        table.c.at,
        table.c.actor,
        table.c.action,
        table.c.subject,
        table.c.details,
        table.c.correlation_id,
        table.c.prev_hash,
        table.c.hash,
    ]
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    head_hash_seen: str | None = GENESIS_HASH if expected_head and expected_head[0] == 0 else None
    while True:
        # Keyset pages keep memory flat and each page is an index range scan on the primary key.
        # The first page has no lower bound so that rows slipped in below seq 1 are seen too.
        query = select(*columns).order_by(table.c.seq).limit(batch_size)
        if checked:
            query = query.where(table.c.seq >= expected_seq)
        page = (await session.execute(query)).all()
        for seq, at, actor, action, subject, details, correlation_id, row_prev, row_hash in page:
            if seq != expected_seq:
                return VerifyResult(
                    False, checked, expected_seq, f"seq {expected_seq} missing (next is {seq})"
                )
            if row_prev != prev_hash:
                return VerifyResult(False, checked, seq, "prev_hash does not match the previous entry's hash")
            computed = _row_hash(
                prev_hash,
                seq=seq,
                at=at,
                actor=actor,
                action=action,
                subject=subject,
                details=details,
                correlation_id=correlation_id,
            )
            if computed != row_hash:
                return VerifyResult(False, checked, seq, "hash mismatch: entry was altered")
            if expected_head and seq == expected_head[0]:
                head_hash_seen = row_hash
            prev_hash, expected_seq, checked = row_hash, seq + 1, checked + 1
        if len(page) < batch_size:
            break

    if expected_head is not None:
        head_seq, head_hash = expected_head
        if checked < head_seq:
            return VerifyResult(
                False,
                checked,
                checked + 1,
                f"chain ends at seq {checked} but the anchored head is seq {head_seq}",
            )
        if head_hash_seen != head_hash:
            return VerifyResult(
                False, checked, head_seq, "hash differs from the anchored head: chain rewritten"
            )
    return VerifyResult(True, checked)

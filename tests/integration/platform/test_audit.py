"""R3.1 audit log on real PostgreSQL: gapless hash chain, tamper detection, append-only trigger."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Table, delete, func, select, text, update
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql import Executable

from shared import clock
from shared.audit import (
    GENESIS_HASH,
    Entry,
    VerifyResult,
    append,
    append_many,
    append_only_ddl,
    define_audit_table,
    head,
    verify,
)
from shared.db import service_metadata


@dataclass
class AuditDb:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    table: Table
    schema: str

    async def append_one(self, n: int, **extra: object) -> int:
        """One entry in its own committed transaction."""
        async with self.sessions() as session, session.begin():
            return await append(
                session,
                self.table,
                actor=f"user-{n % 3}",
                action="supervisor.read_unmasked",
                subject=f"supervisor:{n}",
                details={"n": n, "fields": ["id_number"], **extra},
                correlation_id=f"req-{n}",
            )

    async def verify(self, **kwargs: Any) -> VerifyResult:
        async with self.sessions() as session:
            return await verify(session, self.table, **kwargs)

    async def head(self) -> tuple[int, str]:
        async with self.sessions() as session:
            return await head(session, self.table)

    async def as_attacker(self, *statements: Executable) -> None:
        """Run statements the way a DB superuser would: with the append-only triggers disabled."""
        async with self.engine.begin() as conn:
            await conn.execute(text(f'ALTER TABLE "{self.schema}".audit_log DISABLE TRIGGER USER'))
            for statement in statements:
                await conn.execute(statement)
            await conn.execute(text(f'ALTER TABLE "{self.schema}".audit_log ENABLE TRIGGER USER'))

    async def seqs(self) -> list[int]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(select(self.table.c.seq).order_by("seq"))).scalars())


@pytest.fixture
async def audit_db(database_url: str, fresh_schema: str) -> AsyncIterator[AuditDb]:
    """An audit_log table with the append-only triggers installed, in a schema of its own."""
    engine = create_async_engine(database_url)
    table = define_audit_table(service_metadata(fresh_schema))
    async with engine.begin() as conn:
        await conn.run_sync(table.metadata.create_all)
        for statement in append_only_ddl(fresh_schema):
            await conn.execute(text(statement))
    try:
        yield AuditDb(engine, async_sessionmaker(engine, expire_on_commit=False), table, fresh_schema)
    finally:
        await engine.dispose()


async def fill(db: AuditDb, count: int = 50, workers: int = 5) -> list[int]:
    """`count` entries from `workers` concurrent appenders, each entry its own transaction."""

    async def worker(w: int) -> list[int]:
        return [await db.append_one(n) for n in range(w, count, workers)]

    return sorted(s for seqs in await asyncio.gather(*map(worker, range(workers))) for s in seqs)


async def test_r3_1_concurrent_appenders_build_gapless_valid_chain(audit_db: AuditDb) -> None:
    returned = await fill(audit_db, 50, workers=5)

    assert returned == list(range(1, 51))
    assert await audit_db.seqs() == list(range(1, 51))
    result = await audit_db.verify()
    assert (result.ok, result.checked, result.first_bad_seq, result.reason) == (True, 50, None, None)


async def test_r3_1_chain_links_and_fields(audit_db: AuditDb) -> None:
    await fill(audit_db, 3, workers=1)
    async with audit_db.engine.connect() as conn:
        rows = (await conn.execute(select(audit_db.table).order_by("seq"))).mappings().all()
    assert rows[0]["prev_hash"] == GENESIS_HASH
    assert [r["prev_hash"] for r in rows[1:]] == [r["hash"] for r in rows[:-1]]
    assert rows[1]["action"] == "supervisor.read_unmasked"
    assert rows[1]["subject"] == "supervisor:1"
    assert rows[1]["correlation_id"] == "req-1"
    assert rows[1]["details"] == {"n": 1, "fields": ["id_number"]}
    assert all(r["at"].utcoffset().total_seconds() == 0 for r in rows)
    assert await audit_db.head() == (3, rows[2]["hash"])


async def test_r3_1_details_survive_jsonb_normalization(audit_db: AuditDb) -> None:
    # JSONB rewrites 1e16 as an integer and reorders keys; the chain must still verify.
    await audit_db.append_one(
        1, amount=1e16, ratio=0.1, at=datetime(2025, 1, 2, tzinfo=UTC), ref=uuid.uuid4(), 名称="威海"
    )
    async with audit_db.sessions() as session, session.begin():
        await append(session, audit_db.table, actor="system", action="x", subject="y")
    assert (await audit_db.verify()).ok


def sample_entries(count: int) -> list[Entry]:
    """Entries of every shape: details that JSONB renormalizes, none at all, a correlation id or not."""
    return [
        Entry(f"user-{n % 3}", "supervisor.appoint", f"supervisor:{n}",
              None if n % 7 == 0 else {"n": n, "amount": 1e16, "ratio": 0.1, "on": datetime(2026, 1, 2, tzinfo=UTC),
                                       "ref": uuid.UUID(int=n), "名称": "威海", "ids": [str(uuid.UUID(int=n))] * 3},
              f"req-{n}" if n % 2 else None)
        for n in range(count)
    ]


async def test_r3_1_append_many_builds_the_chain_appending_one_by_one_would(audit_db: AuditDb) -> None:
    """The same entries at the same moment: one `append` per entry (each its own transaction) in one table,
    `append_many` in batches in another; the two logs are identical row for row, and both verify."""
    other_schema = audit_db.schema + "_many"
    other = define_audit_table(service_metadata(other_schema))
    async with audit_db.engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{other_schema}"'))
        await conn.run_sync(other.metadata.create_all)
        for statement in append_only_ddl(other_schema):
            await conn.execute(text(statement))
    entries = sample_entries(40)
    with clock.frozen(datetime(2026, 12, 6, 9, 30, tzinfo=clock.SHANGHAI)):
        for e in entries:
            async with audit_db.sessions() as session, session.begin():
                await append(session, audit_db.table, actor=e.actor, action=e.action, subject=e.subject,
                             details=e.details, correlation_id=e.correlation_id)
        seqs = []
        for batch in (entries[:1], entries[1:25], entries[25:]):  # a batch continues the chain where it stands
            async with audit_db.sessions() as session, session.begin():
                seqs += await append_many(session, other, batch)
    assert seqs == list(range(1, 41))
    async with audit_db.engine.connect() as conn:
        one_by_one = (await conn.execute(select(audit_db.table).order_by("seq"))).all()
        in_bulk = (await conn.execute(select(other).order_by("seq"))).all()
    assert len(one_by_one) == 40 and in_bulk == one_by_one
    async with audit_db.sessions() as session:
        assert (await verify(session, other, expected_head=(40, one_by_one[-1].hash))).ok
    assert (await audit_db.verify(expected_head=(40, one_by_one[-1].hash))).ok


async def test_r3_1_append_many_of_nothing_writes_nothing(audit_db: AuditDb) -> None:
    async with audit_db.sessions() as session, session.begin():
        assert await append_many(session, audit_db.table, []) == []
    assert await audit_db.head() == (0, GENESIS_HASH)


async def test_r3_1_append_never_commits(audit_db: AuditDb) -> None:
    async with audit_db.sessions() as session:
        async with session.begin():
            assert await append(session, audit_db.table, actor="a", action="b", subject="c") == 1
            await session.rollback()
    assert await audit_db.seqs() == []
    # A rolled-back append leaves no gap behind.
    assert await audit_db.append_one(1) == 1
    assert (await audit_db.verify()).ok


async def test_r3_1_empty_log_verifies(audit_db: AuditDb) -> None:
    assert await audit_db.head() == (0, GENESIS_HASH)
    result = await audit_db.verify(expected_head=(0, GENESIS_HASH))
    assert (result.ok, result.checked) == (True, 0)


async def test_r3_1_verify_pages_through_the_chain(audit_db: AuditDb) -> None:
    await fill(audit_db, 50)
    for batch_size in (1, 7, 50, 51):
        result = await audit_db.verify(batch_size=batch_size)
        assert (result.ok, result.checked) == (True, 50)


async def test_r3_1_edited_row_is_detected(audit_db: AuditDb) -> None:
    await fill(audit_db, 50)
    table = audit_db.table
    await audit_db.as_attacker(update(table).where(table.c.seq == 17).values(details={"n": 17, "fields": []}))

    result = await audit_db.verify()
    assert not result.ok
    assert result.first_bad_seq == 17
    assert result.checked == 16
    assert "hash mismatch" in (result.reason or "")


async def test_r3_1_edited_timestamp_is_detected(audit_db: AuditDb) -> None:
    await fill(audit_db, 10)
    table = audit_db.table
    await audit_db.as_attacker(
        update(table).where(table.c.seq == 4).values(at=table.c.at - text("interval '1 day'"))
    )
    result = await audit_db.verify()
    assert (result.ok, result.first_bad_seq) == (False, 4)


async def test_r3_1_deleted_middle_row_is_detected(audit_db: AuditDb) -> None:
    await fill(audit_db, 50)
    table = audit_db.table
    await audit_db.as_attacker(delete(table).where(table.c.seq == 20))

    result = await audit_db.verify()
    assert not result.ok
    assert result.first_bad_seq == 20
    assert "missing" in (result.reason or "")


async def test_r3_1_deleted_and_renumbered_rows_are_detected(audit_db: AuditDb) -> None:
    await fill(audit_db, 50)
    table = audit_db.table
    # Close the gap by renumbering: the hashes still link seq 19 to the deleted row.
    await audit_db.as_attacker(
        delete(table).where(table.c.seq == 20),
        update(table).where(table.c.seq > 20).values(seq=-table.c.seq),
        update(table).where(table.c.seq < 0).values(seq=-table.c.seq - 1),
    )
    assert await audit_db.seqs() == list(range(1, 50))

    result = await audit_db.verify()
    assert (result.ok, result.first_bad_seq) == (False, 20)
    assert "prev_hash" in (result.reason or "")


async def test_r3_1_reordered_rows_are_detected(audit_db: AuditDb) -> None:
    await fill(audit_db, 10)
    table = audit_db.table
    await audit_db.as_attacker(
        update(table).where(table.c.seq == 5).values(seq=-5),
        update(table).where(table.c.seq == 6).values(seq=5),
        update(table).where(table.c.seq == -5).values(seq=6),
    )
    result = await audit_db.verify()
    assert (result.ok, result.first_bad_seq) == (False, 5)


async def test_r3_1_inserted_rows_are_detected(audit_db: AuditDb) -> None:
    await fill(audit_db, 10)
    table = audit_db.table
    _, last_hash = await audit_db.head()
    forged = {
        "at": datetime.now(UTC),
        "actor": "attacker",
        "action": "supervisor.read_unmasked",
        "subject": "supervisor:1",
        "details": {},
        "correlation_id": None,
    }
    await audit_db.as_attacker(table.insert().values(seq=11, prev_hash=last_hash, hash="f" * 64, **forged))
    result = await audit_db.verify()
    assert (result.ok, result.first_bad_seq) == (False, 11)

    # A row slipped in before the genesis entry is found as well.
    await audit_db.as_attacker(
        delete(table).where(table.c.seq == 11),
        table.insert().values(seq=0, prev_hash=GENESIS_HASH, hash="f" * 64, **forged),
    )
    result = await audit_db.verify()
    assert (result.ok, result.first_bad_seq) == (False, 1)


async def test_r3_1_deleted_tail_is_detected_only_with_expected_head(audit_db: AuditDb) -> None:
    await fill(audit_db, 50)
    anchor = await audit_db.head()
    table = audit_db.table
    await audit_db.as_attacker(delete(table).where(table.c.seq > 47))

    # What is left is still a valid chain: the database alone cannot tell.
    unanchored = await audit_db.verify()
    assert (unanchored.ok, unanchored.checked) == (True, 47)

    anchored = await audit_db.verify(expected_head=anchor)
    assert not anchored.ok
    assert anchored.first_bad_seq == 48
    assert "anchored head" in (anchored.reason or "")


async def test_r3_1_rewritten_tail_is_detected_with_expected_head(audit_db: AuditDb) -> None:
    await fill(audit_db, 50)
    anchor = await audit_db.head()
    table = audit_db.table
    # Drop the newest entries and re-append look-alikes: a consistent chain of the same length.
    await audit_db.as_attacker(delete(table).where(table.c.seq > 45))
    for n in range(45, 50):
        await audit_db.append_one(n)

    assert (await audit_db.verify()).ok
    result = await audit_db.verify(expected_head=anchor)
    assert (result.ok, result.first_bad_seq) == (False, 50)
    assert "rewritten" in (result.reason or "")


async def test_r3_1_older_anchor_still_verifies_after_new_entries(audit_db: AuditDb) -> None:
    await fill(audit_db, 20)
    anchor = await audit_db.head()
    await fill(audit_db, 5)
    result = await audit_db.verify(expected_head=anchor)
    assert (result.ok, result.checked) == (True, 25)


async def test_r3_1_database_refuses_update_delete_truncate(audit_db: AuditDb) -> None:
    await fill(audit_db, 5)
    table = audit_db.table
    refused = [
        update(table).where(table.c.seq == 2).values(actor="someone else"),
        delete(table).where(table.c.seq == 5),
        text(f'TRUNCATE "{audit_db.schema}".audit_log'),
    ]
    for statement in refused:
        with pytest.raises(ProgrammingError) as caught:
            async with audit_db.engine.begin() as conn:
                await conn.execute(statement)
        assert "append-only" in str(caught.value)
        assert caught.value.orig.sqlstate == "42501"  # type: ignore[union-attr]  # insufficient_privilege

    async with audit_db.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(table))).scalar_one() == 5
    # Appending is still allowed and the chain is intact.
    assert await audit_db.append_one(6) == 6
    assert (await audit_db.verify()).ok

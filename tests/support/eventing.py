"""Helpers for platform event tests: a schema with outbox/inbox and an effect table, and waiting."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import Column, Integer, MetaData, Table, Text, text
from sqlalchemy.dialects.postgresql import insert

from shared.db import Database, service_metadata
from shared.events.inbox import define_inbox_table
from shared.events.outbox import Outbox, define_outbox_table


@dataclass
class EventSchema:
    metadata: MetaData
    outbox_table: Table
    inbox: Table
    effect: Table
    outbox: Outbox


def event_schema(schema: str, source: str = "registry") -> EventSchema:
    """Tables of a pretend service: outbox, inbox and an `effect` counter per subject.

    The pretend producer publishes registry's events as `registry` (the publisher the consumers
    accept on those topics) and signs with registry's test key (settings_env)."""
    metadata = service_metadata(schema)
    outbox_table = define_outbox_table(metadata)
    inbox = define_inbox_table(metadata)
    effect = Table(
        "effect", metadata,
        Column("subject", Text, primary_key=True),
        Column("applied", Integer, nullable=False),
    )
    return EventSchema(metadata, outbox_table, inbox, effect, Outbox(outbox_table, source=source))


async def create_tables(db: Database, schema: EventSchema) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema.metadata.schema}"'))
        await conn.run_sync(schema.metadata.create_all)


def counting_handler(effect: Table):
    """A handler whose effect counts applications per subject: exactly-once means every count is 1."""

    async def handle(session, event, envelope) -> None:
        stmt = insert(effect).values(subject=envelope.subject, applied=1)
        await session.execute(
            stmt.on_conflict_do_update(index_elements=["subject"], set_={"applied": effect.c.applied + 1})
        )

    return handle


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float = 60.0,
                     interval: float = 0.1) -> None:
    """Poll an async predicate until true; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not reached within {timeout}s")

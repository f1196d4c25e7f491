"""A database outage loses nothing: the consumer waits (no dead letters), the relay resumes."""

import asyncio
import contextlib
import tempfile
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select

from shared.db import Database
from shared.devstack import infra
from shared.events import topics
from shared.events.contracts import EligibilityChanged
from shared.events.envelope import Envelope
from shared.events.inbox import InboxConsumer
from shared.events.kafka import ensure_topics
from shared.events.outbox import OutboxRelay
from shared.settings import CommonSettings
from tests.support.eventing import counting_handler, create_tables, event_schema, wait_until
from tests.support.signing import publish


@pytest.fixture
def own_postgres():
    postgres = infra.start_postgres(Path(tempfile.mkdtemp(prefix="outage-")) / "pg", cleanup="delete")
    yield postgres
    with contextlib.suppress(Exception):
        postgres.resume()
    postgres.stop()


def envelope_event(subject: uuid.UUID) -> EligibilityChanged:
    return EligibilityChanged(supervisor_id=subject, eligible=True, reasons=[])


def envelope_of(subject: uuid.UUID) -> Envelope:
    event = envelope_event(subject)
    return Envelope(type=event.TYPE, version=1, source="registry", correlation_id="c", subject=str(subject),
                    data=event.model_dump(mode="json"))


async def test_events_arriving_during_a_database_outage_are_applied_once_after_it(
    own_postgres, settings_env, unique_name
):
    broker = infra.start_broker(infra.free_port())
    values = {k.lower(): v for k, v in settings_env.items()}
    settings = CommonSettings(**{**values, "database_url": own_postgres.url,
                                 "kafka_bootstrap_servers": broker.bootstrap, "outbox_poll_seconds": 0.5})
    db = Database(own_postgres.url, pool_size=3)
    schema = event_schema("outage")
    await create_tables(db, schema)
    relay = OutboxRelay(db, schema.outbox_table, settings, name=unique_name)
    consumer = InboxConsumer(name=unique_name, db=db, inbox=schema.inbox, settings=settings,
                             handlers={EligibilityChanged: counting_handler(schema.effect)})
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(consumer.run())]
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    await ensure_topics(settings)

    async def applied() -> dict[str, int]:
        async with db.transaction() as session:
            rows = await session.execute(select(schema.effect.c.subject, schema.effect.c.applied))
            return dict(rows.all())

    try:
        before = [uuid.uuid4() for _ in range(50)]
        for subject in before:
            async with db.transaction() as session:
                await schema.outbox.add(session, envelope_event(subject))

        async def first_batch_applied() -> bool:
            return len(await applied()) == 50
        await wait_until(first_batch_applied)

        await asyncio.to_thread(own_postgres.pause)
        during = [uuid.uuid4() for _ in range(50)]
        for subject in during:  # another service keeps publishing while our database is down
            await publish(producer, envelope_of(subject), topic=topics.REGISTRY_SUPERVISORS)  # signed
        await asyncio.sleep(3)  # the consumer fails to apply them and must wait, not dead-letter
        assert consumer.dead_lettered_total == 0
        await asyncio.to_thread(own_postgres.resume)

        after = [uuid.uuid4() for _ in range(50)]
        async def write_after() -> bool:
            try:
                for subject in after[len(written):]:
                    async with db.transaction() as session:
                        await schema.outbox.add(session, envelope_event(subject))
                    written.append(subject)
            except Exception:
                return False  # pooled connections from before the restart are being replaced
            return True
        written: list[uuid.UUID] = []
        await wait_until(write_after, timeout=30)

        async def all_applied() -> bool:
            return len(await applied()) == 150
        await wait_until(all_applied, timeout=90)
        assert await applied() == {str(s): 1 for s in before + during + after}
        assert consumer.dead_lettered_total == 0
        async with db.transaction() as session:
            assert await session.scalar(
                select(func.count()).select_from(schema.outbox_table)
                .where(schema.outbox_table.c.published_at.is_(None))
            ) == 0
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await relay.close()
        await consumer.close()
        await producer.stop()
        await db.dispose()
        broker.stop()

"""Outbox and inbox against real PostgreSQL and a real broker: nothing lost, everything applied once."""

import asyncio
import contextlib
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import func, select

from shared.db import Database
from shared.devstack import infra
from shared.events import topics
from shared.events.contracts import EligibilityChanged, TrainingRecorded
from shared.events.envelope import Envelope
from shared.events.inbox import InboxConsumer
from shared.events.outbox import OutboxRelay
from shared.events.signing import EventVerifier
from shared.settings import CommonSettings
from tests.support.eventing import counting_handler, create_tables, event_schema, wait_until
from tests.support.signing import next_seq, publish, signed_headers


@pytest.fixture
def broker_port() -> int:
    return infra.free_port()


@pytest.fixture
def settings(settings_env: dict[str, str], broker_port: int) -> CommonSettings:
    values = {k.lower(): v for k, v in settings_env.items()}
    values["kafka_bootstrap_servers"] = f"127.0.0.1:{broker_port}"
    values["outbox_poll_seconds"] = 0.5
    return CommonSettings(**values)


@pytest.fixture
async def db(database_url: str):
    database = Database(database_url, pool_size=5)
    yield database
    await database.dispose()


def eligibility(subject: uuid.UUID) -> EligibilityChanged:
    return EligibilityChanged(supervisor_id=subject, eligible=True, reasons=[])


async def commit_events(db: Database, schema, n: int) -> list[uuid.UUID]:
    """n separate transactions, each a state change with its event (here: only the event)."""
    subjects = [uuid.uuid4() for _ in range(n)]
    for subject in subjects:
        async with db.transaction() as session:
            await schema.outbox.add(session, eligibility(subject))
    return subjects


async def effect_counts(db: Database, schema) -> dict[str, int]:
    async with db.transaction() as session:
        rows = await session.execute(select(schema.effect.c.subject, schema.effect.c.applied))
        return dict(rows.all())


async def unpublished(db: Database, schema) -> int:
    async with db.transaction() as session:
        return await session.scalar(
            select(func.count()).select_from(schema.outbox_table)
            .where(schema.outbox_table.c.published_at.is_(None))
        )


def start(coro) -> asyncio.Task:
    return asyncio.create_task(coro)


async def stop(*tasks: asyncio.Task) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_events_committed_while_broker_is_down_all_arrive_exactly_once(
    db, settings, broker_port, fresh_schema, unique_name
):
    schema = event_schema(fresh_schema)
    await create_tables(db, schema)
    relay = OutboxRelay(db, schema.outbox_table, settings, name=unique_name)
    consumer = InboxConsumer(name=unique_name, db=db, inbox=schema.inbox, settings=settings,
                             handlers={EligibilityChanged: counting_handler(schema.effect)})
    tasks = [start(relay.run()), start(consumer.run())]
    try:
        subjects = await commit_events(db, schema, 500)  # the broker is not running at all
        await asyncio.sleep(1.0)
        assert await unpublished(db, schema) == 500

        broker = infra.start_broker(broker_port)
        try:
            async def all_applied() -> bool:
                return len(await effect_counts(db, schema)) == 500
            await wait_until(all_applied, timeout=90)
            counts = await effect_counts(db, schema)
            assert counts == {str(s): 1 for s in subjects}
            assert await unpublished(db, schema) == 0
        finally:
            await stop(*tasks)
            await relay.close()
            await consumer.close()
            broker.stop()
    finally:
        await stop(*tasks)


class CrashingProducer:
    """Wraps a producer: sends `survive` messages, then hangs as a process does when it is killed."""

    def __init__(self, inner: AIOKafkaProducer, survive: int) -> None:
        self.inner, self.left = inner, survive

    async def send(self, *args, **kwargs):
        if self.left == 0:
            await asyncio.Event().wait()  # hang until the task is cancelled (the "kill")
        self.left -= 1
        return await self.inner.send(*args, **kwargs)

    async def stop(self) -> None:
        await self.inner.stop()


class FailingOnceProducer:
    """Wraps a producer: the `fail_at`-th send (1-based) raises once, as a full buffer or a dropped
    connection does; every other send goes through."""

    def __init__(self, inner: AIOKafkaProducer, fail_at: int) -> None:
        self.inner, self.calls, self.fail_at = inner, 0, fail_at

    async def send(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.fail_at:
            raise ConnectionError("send failed")
        return await self.inner.send(*args, **kwargs)

    async def stop(self) -> None:
        await self.inner.stop()


async def test_a_failed_send_holds_back_the_rest_of_the_batch_so_one_subjects_events_stay_in_order(
    db, settings, broker_port, fresh_schema, unique_name
):
    schema = event_schema(fresh_schema)
    await create_tables(db, schema)
    broker = infra.start_broker(broker_port)
    subject = uuid.uuid4()
    try:
        for _ in range(20):  # 20 changes of one subject, committed in order (and 5 more below)
            async with db.transaction() as session:
                await schema.outbox.add(session, eligibility(subject))
        relay = OutboxRelay(db, schema.outbox_table, settings, name=unique_name)
        relay._producer = FailingOnceProducer(await relay._producer_ready(), fail_at=5)
        try:
            first = await relay.publish_batch()
            assert first == 4  # the 5th failed: it and everything after it wait for the next attempt
            for _ in range(5):  # committed during the backoff: due at once, yet they must wait their turn
                async with db.transaction() as session:
                    await schema.outbox.add(session, eligibility(subject))
            assert await relay.publish_batch() == 0
            while await unpublished(db, schema):
                await relay.publish_batch()
                await asyncio.sleep(0.05)
        finally:
            await relay.close()
        async with db.transaction() as session:
            committed = [str(e) for e in (await session.scalars(select(schema.outbox_table.c.event_id)
                                                                .order_by(schema.outbox_table.c.id))).all()]
        records = await read_all(broker.bootstrap, topics.REGISTRY_SUPERVISORS, expected=25)
        delivered = [str(Envelope.from_bytes(r.value).id) for r in records]
        assert delivered == committed  # in commit order, none twice, none missing
    finally:
        broker.stop()


async def test_relay_killed_mid_batch_loses_nothing_and_consumers_apply_once(
    db, settings, broker_port, fresh_schema, unique_name
):
    schema = event_schema(fresh_schema)
    await create_tables(db, schema)
    broker = infra.start_broker(broker_port)
    try:
        subjects = await commit_events(db, schema, 500)
        doomed = OutboxRelay(db, schema.outbox_table, settings, name=unique_name)
        doomed._producer = CrashingProducer(await doomed._producer_ready(), survive=120)
        task = start(doomed.run())
        await asyncio.sleep(2.0)
        await stop(task)  # killed mid-batch: 120 messages reached the broker, none marked sent
        assert await unpublished(db, schema) == 500
        await doomed.close()

        relay = OutboxRelay(db, schema.outbox_table, settings, name=unique_name)
        consumer = InboxConsumer(name=unique_name, db=db, inbox=schema.inbox, settings=settings,
                                 handlers={EligibilityChanged: counting_handler(schema.effect)})
        tasks = [start(relay.run()), start(consumer.run())]
        try:
            async def all_applied() -> bool:
                return len(await effect_counts(db, schema)) == 500
            await wait_until(all_applied, timeout=60)
            await asyncio.sleep(0.5)  # let any duplicate deliveries arrive too
            assert await effect_counts(db, schema) == {str(s): 1 for s in subjects}
            assert await unpublished(db, schema) == 0
        finally:
            await stop(*tasks)
            await relay.close()
            await consumer.close()
    finally:
        broker.stop()


async def read_all(bootstrap: str, topic: str, expected: int, timeout: float = 20.0) -> list:
    """Every record of a topic from offset 0 (a replay)."""
    reader = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                              enable_auto_commit=False, group_id=None)
    await reader.start()
    records: list = []
    try:
        async def enough() -> bool:
            batch = await reader.getmany(timeout_ms=200)
            records.extend(r for rs in batch.values() for r in rs)
            return len(records) >= expected
        await wait_until(enough, timeout=timeout, interval=0)
    finally:
        await reader.stop()
    return records


async def test_duplicate_delivery_and_replay_from_offset_zero_change_nothing(
    db, settings, broker_port, fresh_schema, unique_name
):
    schema = event_schema(fresh_schema)
    await create_tables(db, schema)
    broker = infra.start_broker(broker_port)
    consumer = InboxConsumer(name=unique_name, db=db, inbox=schema.inbox, settings=settings,
                             handlers={EligibilityChanged: counting_handler(schema.effect)})
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    task = None
    try:
        await producer.start()
        await infra_topics(settings)
        subjects = [uuid.uuid4() for _ in range(20)]
        for subject in subjects:
            envelope = Envelope(type="EligibilityChanged", version=1, source="registry",
                                correlation_id="c", subject=str(subject),
                                data=eligibility(subject).model_dump(mode="json"))
            seq = next_seq()
            for _ in range(2):  # the same event delivered twice (as the relay re-sends it: same seq)
                await publish(producer, envelope, topic=topics.REGISTRY_SUPERVISORS, seq=seq)
        task = start(consumer.run())

        async def all_applied() -> bool:
            return len(await effect_counts(db, schema)) == 20
        await wait_until(all_applied)
        before = await effect_counts(db, schema)
        assert before == {str(s): 1 for s in subjects}

        records = await read_all(broker.bootstrap, topics.REGISTRY_SUPERVISORS, 40)
        await consumer.process(records)  # the whole topic replayed from offset 0
        assert await effect_counts(db, schema) == before
    finally:
        if task:
            await stop(task)
        await consumer.close()
        await producer.stop()
        broker.stop()


async def infra_topics(settings: CommonSettings) -> None:
    from shared.events.kafka import ensure_topics
    await ensure_topics(settings)


async def test_poison_messages_go_to_the_dead_letter_topic_and_the_partition_keeps_flowing(
    db, settings, broker_port, fresh_schema, unique_name
):
    schema = event_schema(fresh_schema)
    await create_tables(db, schema)
    broker = infra.start_broker(broker_port)
    refuse = uuid.uuid4()
    count = counting_handler(schema.effect)

    async def picky(session, event, envelope):
        if event.supervisor_id == refuse:
            raise ValueError("this supervisor cannot be applied")
        await count(session, event, envelope)

    consumer = InboxConsumer(name=unique_name, db=db, inbox=schema.inbox, settings=settings,
                             handlers={TrainingRecorded: picky})
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    key = b"same-partition"

    def training(subject: uuid.UUID) -> bytes:
        event = TrainingRecorded(supervisor_id=subject, session_id=uuid.uuid4(), kind="initial",
                                 format="lecture", date=date(2026, 3, 1), hours=4, attended=True,
                                 exam_passed=True)
        return Envelope(type=event.TYPE, version=1, source="registry", correlation_id="c",
                        subject=str(subject), data=event.model_dump(mode="json")).to_bytes()

    broken_payload = Envelope(type="TrainingRecorded", version=1, source="registry", correlation_id="c",
                              subject="x", data={"supervisor_id": "not-a-uuid"}).to_bytes()
    first, last = uuid.uuid4(), uuid.uuid4()
    messages = [training(first), b"{not json", broken_payload, training(refuse), training(last)]
    task = None
    try:
        await producer.start()
        await infra_topics(settings)
        for value in messages:  # signed as registry's relay signs (the broken ones are poison for their content)
            await producer.send_and_wait(topics.REGISTRY_TRAINING, value, key=key,
                                         headers=signed_headers(topics.REGISTRY_TRAINING, value, source="registry"))
        task = start(consumer.run())

        async def both_applied() -> bool:
            return set(await effect_counts(db, schema)) == {str(first), str(last)}
        await wait_until(both_applied)

        dead = await read_all(broker.bootstrap, topics.dead_letter(topics.REGISTRY_TRAINING), 3)
        assert [r.value for r in dead] == [messages[1], messages[2], messages[3]]
        for record in dead:
            headers = dict(record.headers)
            assert headers["dlq.consumer"] == unique_name.encode()
            assert headers["dlq.topic"] == topics.REGISTRY_TRAINING.encode()
            assert headers["dlq.error"]
        assert b"cannot be applied" in dict(dead[2].headers)["dlq.error"]
        async with db.transaction() as session:
            status = await session.scalar(
                select(schema.inbox.c.status).where(schema.inbox.c.status == "dead_lettered")
            )
        assert status == "dead_lettered"
    finally:
        if task:
            await stop(task)
        await consumer.close()
        await producer.stop()
        broker.stop()


async def test_the_relay_publishes_the_stored_envelope_unchanged_with_key_and_headers(
    db, settings, broker_port, fresh_schema, unique_name
):
    """The relay sends the outbox row's JSON as it is (no re-serializing): what arrives is the staged
    envelope, field for field, non-ASCII text and fractional numbers included."""
    schema = event_schema(fresh_schema)
    await create_tables(db, schema)
    broker = infra.start_broker(broker_port)
    relay = OutboxRelay(db, schema.outbox_table, settings, name=unique_name)
    try:
        subject = uuid.uuid4()
        event = TrainingRecorded(supervisor_id=subject, session_id=uuid.uuid4(), kind="annual",
                                 format="线上培训", date=date(2026, 3, 1), hours=2.75, attended=True,
                                 exam_passed=None)
        async with db.transaction() as session:
            staged = await schema.outbox.add(session, event, correlation_id="关联-1")
        assert await relay.publish_batch() == 1
        [record] = await read_all(broker.bootstrap, topics.REGISTRY_TRAINING, 1)
        assert Envelope.from_bytes(record.value) == staged
        assert TrainingRecorded.model_validate(Envelope.from_bytes(record.value).data) == event
        assert record.key == str(subject).encode()
        headers = list(record.headers)
        assert headers[:3] == staged.kafka_headers()
        assert [name for name, _ in headers[3:]] == ["source", "seq", "sig"]  # signed (test_signed_events)
        assert EventVerifier.from_settings(settings).verify(record.topic, headers, record.value).source == "registry"
        assert await unpublished(db, schema) == 0
    finally:
        await relay.close()
        broker.stop()


async def test_two_relay_replicas_publish_everything_once_and_keep_each_subjects_order(
    db, settings, broker_port, fresh_schema, unique_name
):
    from sqlalchemy import BigInteger, Column, Identity, Table, Text

    schema = event_schema(fresh_schema)
    log = Table("applied_log", schema.metadata, Column("seq", BigInteger, Identity(), primary_key=True),
                Column("subject", Text), Column("event_id", Text))
    await create_tables(db, schema)

    async def record(session, event, envelope):
        await session.execute(log.insert().values(subject=envelope.subject, event_id=str(envelope.id)))

    broker = infra.start_broker(broker_port)
    subjects = [uuid.uuid4() for _ in range(5)]
    relays = [OutboxRelay(db, schema.outbox_table, settings, name=f"{unique_name}-{i}") for i in range(2)]
    consumer = InboxConsumer(name=unique_name, db=db, inbox=schema.inbox, settings=settings,
                             handlers={EligibilityChanged: record})
    tasks = [start(r.run()) for r in relays] + [start(consumer.run())]
    try:
        for i in range(100):  # 500 events, interleaved over 5 subjects, while both replicas relay
            async with db.transaction() as session:
                await schema.outbox.add(session, eligibility(subjects[i % 5]))

        async def all_applied() -> bool:
            async with db.transaction() as session:
                return await session.scalar(select(func.count()).select_from(log)) == 100
        await wait_until(all_applied, timeout=60)
        async with db.transaction() as session:
            applied = (await session.execute(select(log.c.subject, log.c.event_id).order_by(log.c.seq))).all()
            outbox = schema.outbox_table
            committed = (await session.execute(select(outbox.c.key, outbox.c.event_id).order_by(outbox.c.id))).all()
        assert len({e for _, e in applied}) == 100
        for subject in subjects:
            in_commit_order = [str(e) for k, e in committed if k == str(subject)]
            assert [e for s, e in applied if s == str(subject)] == in_commit_order
        assert sum(r.published_total for r in relays) >= 100
        assert await unpublished(db, schema) == 0
    finally:
        await stop(*tasks)
        for relay in relays:
            await relay.close()
        await consumer.close()
        broker.stop()


async def test_published_rows_are_purged_after_the_retention_period_and_unpublished_never(
    db, settings, fresh_schema, unique_name
):
    from sqlalchemy import update

    schema = event_schema(fresh_schema)
    await create_tables(db, schema)
    await commit_events(db, schema, 3)
    outbox = schema.outbox_table
    async with db.transaction() as session:
        ids = list((await session.scalars(select(outbox.c.id).order_by(outbox.c.id))).all())
        old = datetime.now(UTC) - timedelta(days=settings.outbox_retention_days + 1)
        await session.execute(update(outbox).where(outbox.c.id == ids[0]).values(published_at=old))
        await session.execute(update(outbox).where(outbox.c.id == ids[1]).values(published_at=datetime.now(UTC)))
    relay = OutboxRelay(db, outbox, settings, name=unique_name)
    assert await relay.purge_published() == 1
    async with db.transaction() as session:
        assert list((await session.scalars(select(outbox.c.id).order_by(outbox.c.id))).all()) == ids[1:]


async def test_a_cancelled_relay_always_stops_even_when_cancelled_as_it_wakes(db, settings, fresh_schema, unique_name):
    """Regression: asyncio.wait_for on 3.11 could swallow the cancellation and hang the shutdown."""
    schema = event_schema(fresh_schema)
    await create_tables(db, schema)
    fast = settings.model_copy(update={"outbox_poll_seconds": 0.001})
    for attempt in range(150):
        relay = OutboxRelay(db, schema.outbox_table, fast, name=f"{unique_name}-{attempt}")
        task = start(relay.run())
        await asyncio.sleep(0.005 * (attempt % 7))
        relay._wake.set()  # a wake-up racing with the cancellation
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=5)
        assert task in done, f"relay did not stop on attempt {attempt}"
        await relay.close()

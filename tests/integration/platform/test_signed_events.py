"""Authentic events on a real broker: forged ones are dead-lettered, stale ones ignored, sealed ones
decrypted only on the way out, and no log line or dead letter repeats a database error's values."""

import asyncio
import contextlib
import logging
import uuid
from datetime import UTC, date, datetime

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy import Column, Integer, MetaData, Table, Text, func, select, text
from sqlalchemy.dialects.postgresql import insert

from shared.crypto import FieldCipher
from shared.db import Database
from shared.devstack import infra
from shared.errors import install_problem_handlers
from shared.events import topics
from shared.events.contracts import (
    EligibilityChanged,
    FeedbackSigned,
    SupervisorAppointed,
    SupervisorDismissed,
    SupervisorDrawn,
    TrainingRecorded,
)
from shared.events.envelope import Envelope
from shared.events.inbox import InboxConsumer
from shared.events.kafka import ensure_topics
from shared.events.outbox import Outbox, OutboxRelay
from shared.events.signing import EventSigner, EventVerifier, generate_keypair
from shared.settings import CommonSettings
from tests.integration.platform.test_outbox_inbox import read_all, start, stop
from tests.support.eventing import counting_handler, create_tables, event_schema, wait_until
from tests.support.signing import SIGNERS, envelope_for, publish, signed_headers

SECRET_NONCE = "nonce-7f3a9c1e-SECRET-do-not-log"
CHINESE_NAME = "欧阳娜娜"


@pytest.fixture
def broker():
    broker = infra.start_broker(infra.free_port())
    yield broker
    broker.stop()


@pytest.fixture
def settings(settings_env: dict[str, str], broker) -> CommonSettings:
    values = {k.lower(): v for k, v in settings_env.items()}
    return CommonSettings(**{**values, "kafka_bootstrap_servers": broker.bootstrap, "outbox_poll_seconds": 0.2})


@pytest.fixture
async def db(database_url: str):
    database = Database(database_url, pool_size=5)
    yield database
    await database.dispose()


@pytest.fixture
async def producer(broker, settings):
    await ensure_topics(settings)
    p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", enable_idempotence=False)
    await p.start()
    yield p
    await p.stop()


def training(subject: uuid.UUID) -> TrainingRecorded:
    return TrainingRecorded(supervisor_id=subject, session_id=uuid.uuid4(), kind="initial", format="lecture",
                            date=date(2026, 3, 1), hours=4, attended=True, exam_passed=True)


def feedback(subject: uuid.UUID) -> FeedbackSigned:
    return FeedbackSigned(form_id=uuid.uuid4(), activity_id=subject, request_id=uuid.uuid4(),
                          supervisor_id=uuid.uuid4(), activity_type="public_hearing", activity_date=date(2026, 3, 2),
                          district="环翠区", adopted=None, signed_at=datetime.now(UTC), signature_hash="ab" * 32)


async def send_raw(producer: AIOKafkaProducer, topic: str, envelope: Envelope, headers=None, value=None) -> None:
    """Publish outside any relay: how a forger (or a misconfigured client) would."""
    await producer.send_and_wait(topic, value if value is not None else envelope.to_bytes(),
                                 key=envelope.subject.encode(), headers=headers or [])


async def effects(db: Database, schema) -> dict[str, int]:
    async with db.transaction() as session:
        return dict((await session.execute(select(schema.effect.c.subject, schema.effect.c.applied))).all())


# --- forged events ------------------------------------------------------------------------------

async def test_unsigned_wrongly_signed_and_unauthorized_events_are_dead_lettered_with_no_effect(
    db, settings, broker, producer, fresh_schema, unique_name
):
    schema = event_schema(fresh_schema)
    await create_tables(db, schema)
    count = counting_handler(schema.effect)
    consumer = InboxConsumer(name=unique_name, db=db, inbox=schema.inbox, settings=settings,
                             handlers={EligibilityChanged: count, TrainingRecorded: count, FeedbackSigned: count})
    attacker = EventSigner.from_b64(generate_keypair()[0])
    legit = [uuid.uuid4() for _ in range(3)]
    forged = {}  # subject -> what was wrong, each must end in a dead-letter topic with no effect

    def forged_subject(why: str) -> uuid.UUID:
        subject = uuid.uuid4()
        forged[str(subject)] = why
        return subject

    task = start(consumer.run())
    try:
        # the one FeedbackSigned that may create a subsidy line: from casework, signed by casework
        await publish(producer, feedback(legit[0]))
        await publish(producer, EligibilityChanged(supervisor_id=legit[1], eligible=True, reasons=[]))
        await publish(producer, training(legit[2]))

        # 1. unsigned (the forgery: any client that reaches the broker)
        env = envelope_for(feedback(forged_subject("unsigned")))
        await send_raw(producer, topics.CASEWORK_FEEDBACK, env, env.kafka_headers())
        # 2. claims to be casework, signed with somebody else's key
        env = envelope_for(feedback(forged_subject("bad signature")))
        value = env.to_bytes()
        await send_raw(producer, topics.CASEWORK_FEEDBACK, env,
                       attacker.headers(source="casework", topic=topics.CASEWORK_FEEDBACK, seq=5, value=value))
        # 3. a real service's valid signature, but selection may not publish on casework.feedback
        env = envelope_for(feedback(forged_subject("not a publisher of the topic")), source="selection")
        await publish(producer, env, topic=topics.CASEWORK_FEEDBACK)
        # 4. a source nobody configured a key for
        env = envelope_for(feedback(forged_subject("unknown source")), source="printer")
        await send_raw(producer, topics.CASEWORK_FEEDBACK, env,
                       attacker.headers(source="printer", topic=topics.CASEWORK_FEEDBACK, seq=1, value=env.to_bytes()))
        # 5. casework's valid signature over other bytes (the payload edited after signing)
        env = envelope_for(feedback(forged_subject("edited after signing")))
        headers = signed_headers(topics.CASEWORK_FEEDBACK, env.to_bytes(), source="casework", envelope=env)
        tampered = env.model_copy(update={"data": {**env.data, "district": "经区"}}).to_bytes()
        await send_raw(producer, topics.CASEWORK_FEEDBACK, env, headers, value=tampered)
        # 6. signed by registry (allowed on the topic), but the envelope says it is from selection
        env = envelope_for(EligibilityChanged(supervisor_id=forged_subject("source is not the signer"),
                                              eligible=True, reasons=[]), source="selection")
        value = env.to_bytes()
        await send_raw(producer, topics.REGISTRY_SUPERVISORS, env,
                       SIGNERS["registry"].headers(source="registry", topic=topics.REGISTRY_SUPERVISORS, seq=7,
                                                   value=value))
        # 7. registry's genuine message of registry.supervisors replayed onto registry.training
        env = envelope_for(EligibilityChanged(supervisor_id=forged_subject("replayed on another topic"),
                                              eligible=True, reasons=[]))
        value = env.to_bytes()
        await send_raw(producer, topics.REGISTRY_TRAINING, env,
                       signed_headers(topics.REGISTRY_SUPERVISORS, value, source="registry", envelope=env))

        async def legit_applied() -> bool:
            return set(await effects(db, schema)) == {str(s) for s in legit}
        await wait_until(legit_applied, timeout=60)

        dead = []
        expected = ((topics.CASEWORK_FEEDBACK, 5), (topics.REGISTRY_SUPERVISORS, 1), (topics.REGISTRY_TRAINING, 1))
        for topic, n in expected:
            dead += await read_all(broker.bootstrap, topics.dead_letter(topic), n)
        assert sorted(Envelope.from_bytes(r.value).subject for r in dead) == sorted(forged)
        for record in dead:
            error = dict(record.headers)["dlq.error"].decode()
            assert error.startswith(("not authentic", "envelope source")), error
        await asyncio.sleep(1.0)  # nothing forged arrives late either
        assert await effects(db, schema) == {str(s): 1 for s in legit}
        assert consumer.dead_lettered_total == len(forged)
    finally:
        await stop(task)
        await consumer.close()


async def test_a_relay_without_a_signing_key_publishes_nothing(db, settings, fresh_schema, unique_name):
    schema = event_schema(fresh_schema)
    await create_tables(db, schema)
    async with db.transaction() as session:
        await schema.outbox.add(session, EligibilityChanged(supervisor_id=uuid.uuid4(), eligible=True, reasons=[]))
    relay = OutboxRelay(db, schema.outbox_table, settings.model_copy(update={"event_signing_key": None}),
                        name=unique_name)
    try:
        assert await relay.publish_batch() == 0
        async with db.transaction() as session:
            row = (await session.execute(select(schema.outbox_table))).one()
        assert row.published_at is None and "EVENT_SIGNING_KEY" in row.last_error
    finally:
        await relay.close()


# --- stale events -------------------------------------------------------------------------------

def projection_handlers(table: Table):
    async def appointed(session, event, envelope) -> None:
        await session.execute(insert(table).values(supervisor_id=str(event.supervisor_id), status="active")
                              .on_conflict_do_update(index_elements=["supervisor_id"], set_={"status": "active"}))

    async def dismissed(session, event, envelope) -> None:
        await session.execute(insert(table).values(supervisor_id=str(event.supervisor_id), status="dismissed")
                              .on_conflict_do_update(index_elements=["supervisor_id"], set_={"status": "dismissed"}))

    return {SupervisorAppointed: appointed, SupervisorDismissed: dismissed}


def appointment(sid: uuid.UUID) -> SupervisorAppointed:
    return SupervisorAppointed(supervisor_id=sid, name="张三", gender="male", district="环翠区", specialties=[],
                               employer="某单位", recommending_body="某机关", term_start=date(2025, 1, 1),
                               term_end=date(2029, 12, 31), certificate_no="C1", work_card_no="W1", eligible=True)


def dismissal(sid: uuid.UUID) -> SupervisorDismissed:
    return SupervisorDismissed(supervisor_id=sid, ground=2, decided_at=datetime.now(UTC), permanent_ban=False)


async def test_an_old_appointment_resent_with_a_new_id_does_not_bring_a_dismissed_supervisor_back(
    db, settings, producer, fresh_schema, unique_name, caplog
):
    schema = event_schema(fresh_schema)
    state = Table("supervisor_state", schema.metadata, Column("supervisor_id", Text, primary_key=True),
                  Column("status", Text, nullable=False))
    await create_tables(db, schema)
    consumer = InboxConsumer(name=unique_name, db=db, inbox=schema.inbox, settings=settings,
                             handlers=projection_handlers(state))
    sid, other = uuid.uuid4(), uuid.uuid4()

    async def status(of: uuid.UUID) -> str | None:
        async with db.transaction() as session:
            return await session.scalar(select(state.c.status).where(state.c.supervisor_id == str(of)))

    task = start(consumer.run())
    try:
        with caplog.at_level(logging.INFO, logger="shared.events.inbox"):
            old = await publish(producer, appointment(sid), seq=10)
            await publish(producer, dismissal(sid), seq=11)

            async def dismissed() -> bool:
                return await status(sid) == "dismissed"
            await wait_until(dismissed)
            # the old appointment again: a new envelope id (the inbox has never seen it), its old seq 10
            again = old.model_copy(update={"id": uuid.uuid4()})
            await publish(producer, again, topic=topics.REGISTRY_SUPERVISORS, seq=10)
            # a lower seq of another subject is not stale: sequences are per (source, topic, subject)
            await publish(producer, appointment(other), seq=3)

            async def other_applied() -> bool:
                return await status(other) == "active"
            await wait_until(other_applied)
            inbox = schema.inbox

            async def recorded() -> bool:
                async with db.transaction() as session:
                    return await session.scalar(select(inbox.c.status).where(inbox.c.event_id == again.id)) == "stale"
            await wait_until(recorded)
        assert await status(sid) == "dismissed"  # the person stays dismissed
        assert consumer.stale_total == 1
        assert any(r.levelno == logging.INFO and "stale" in r.getMessage() and str(again.id) in r.getMessage()
                   for r in caplog.records)
        sequences = schema.inbox.info["sequence_table"]
        async with db.transaction() as session:
            highest = await session.scalar(select(sequences.c.seq).where(
                sequences.c.consumer == unique_name, sequences.c.subject == str(sid)))
        assert highest == 11
    finally:
        await stop(task)
        await consumer.close()


async def test_in_one_batch_an_older_event_after_a_newer_one_is_stale(db, settings, fresh_schema, unique_name):
    from tests.support.signing import signed_record

    schema = event_schema(fresh_schema)
    state = Table("supervisor_state", schema.metadata, Column("supervisor_id", Text, primary_key=True),
                  Column("status", Text, nullable=False))
    await create_tables(db, schema)
    consumer = InboxConsumer(name=unique_name, db=db, inbox=schema.inbox, settings=settings,
                             handlers=projection_handlers(state))
    sid = uuid.uuid4()
    topic = topics.REGISTRY_SUPERVISORS
    records = [signed_record(envelope_for(dismissal(sid)), topic, offset=1, seq=21),
               signed_record(envelope_for(appointment(sid)), topic, offset=2, seq=20)]
    await consumer.process(records)
    async with db.transaction() as session:
        assert await session.scalar(select(state.c.status)) == "dismissed"
        statuses = dict((await session.execute(select(schema.inbox.c.event_type, schema.inbox.c.status))).all())
    assert statuses == {"SupervisorDismissed": "applied", "SupervisorAppointed": "stale"}
    await consumer.close()


async def test_facts_of_one_subject_apply_in_any_order_only_states_go_stale(db, settings, fresh_schema, unique_name):
    """Two trainings of one supervisor (facts: both count) arriving newest first, as after a gap
    repair: both are applied; a stale check on them would lose the older one for good."""
    from tests.support.signing import signed_record

    schema = event_schema(fresh_schema)
    await create_tables(db, schema)
    trainings = {TrainingRecorded: counting_handler(schema.effect)}
    consumer = InboxConsumer(name=unique_name, db=db, inbox=schema.inbox, settings=settings, handlers=trainings)
    sid = uuid.uuid4()

    def training(day: int) -> TrainingRecorded:
        return TrainingRecorded(supervisor_id=sid, session_id=uuid.uuid4(), kind="initial", format="lecture",
                                date=date(2026, 3, day), hours=4, attended=True, exam_passed=True)
    topic = topics.REGISTRY_TRAINING
    await consumer.process([signed_record(envelope_for(training(2)), topic, offset=1, seq=41)])
    await consumer.process([signed_record(envelope_for(training(1)), topic, offset=2, seq=40)])
    async with db.transaction() as session:
        assert await session.scalar(select(schema.effect.c.applied)) == 2
        assert set(await session.scalars(select(schema.inbox.c.status))) == {"applied"}
    assert consumer.stale_total == 0
    await consumer.close()


# --- sealed personal data -----------------------------------------------------------------------

def drawn(request_id: uuid.UUID) -> SupervisorDrawn:
    return SupervisorDrawn(request_id=request_id, draw_id=uuid.uuid4(), supervisor_id=uuid.uuid4(), name=CHINESE_NAME,
                           phone="13912345678", district="环翠区", specialties=["法律"], group="local", draw_order=1,
                           confirmed_at=datetime.now(UTC))


async def test_personal_events_are_sealed_in_the_outbox_and_go_out_decrypted_and_signed(
    db, settings, broker, fresh_schema, unique_name
):
    schema = event_schema(fresh_schema, source="selection")
    await create_tables(db, schema)
    cipher = FieldCipher.from_settings(settings.field_encryption_key.get_secret_value(),
                                       settings.field_hash_key.get_secret_value())
    outbox = Outbox(schema.outbox_table, source="selection", cipher=cipher)
    request_id = uuid.uuid4()
    async with db.transaction() as session:
        staged = await outbox.add(session, drawn(request_id))
        plain = await outbox.add(session, EligibilityChanged(supervisor_id=uuid.uuid4(), eligible=True, reasons=[]))
    async with db.transaction() as session:
        rows = {r.event_id: r for r in (await session.execute(select(
            schema.outbox_table.c.event_id, schema.outbox_table.c.event_type,
            func.cast(schema.outbox_table.c.envelope, Text).label("text")))).all()}
    sealed_text = rows[staged.id].text
    assert "13912345678" not in sealed_text and CHINESE_NAME not in sealed_text
    assert '"sealed"' in sealed_text and '"type": "SupervisorDrawn"' in sealed_text  # still queryable by type
    assert '"sealed"' not in rows[plain.id].text  # other events keep the plain JSON

    with pytest.raises(RuntimeError, match="personal data"):  # never in clear: no cipher, no write
        async with db.transaction() as session:
            await Outbox(schema.outbox_table, source="selection").add(session, drawn(uuid.uuid4()))

    relay = OutboxRelay(db, schema.outbox_table, settings.model_copy(
        update={"event_signing_key": settings_key("selection")}), name=unique_name)
    try:
        assert await relay.publish_batch() == 2
    finally:
        await relay.close()
    [record] = await read_all(broker.bootstrap, topics.SELECTION_ASSIGNMENTS, 1)
    assert Envelope.from_bytes(record.value) == staged
    verified = EventVerifier.from_settings(settings).verify(record.topic, record.headers, record.value)
    assert verified.source == "selection" and verified.seq > 0


def settings_key(source: str):
    from pydantic import SecretStr

    from tests.support.signing import KEYS

    return SecretStr(KEYS[source][0])


# --- logs and dead letters without values -------------------------------------------------------

class Collect(logging.Handler):
    """Every record of every logger, formatted with its traceback, as a log file would hold it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def collected_logs():
    handler, root = Collect(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_failing_handlers_log_and_dead_letter_no_inserted_values(
    db, settings, broker, producer, fresh_schema, unique_name
):
    schema = event_schema(fresh_schema)
    guarded = Table("guarded", schema.metadata, Column("nonce", Text, unique=True), Column("name", Text),
                    Column("n", Integer))
    await create_tables(db, schema)
    async with db.engine.begin() as conn:
        await conn.execute(text(f'ALTER TABLE "{fresh_schema}".guarded ADD CHECK (length(nonce) < 200)'))
        await conn.execute(guarded.insert().values(nonce=SECRET_NONCE, name=CHINESE_NAME, n=1))

    async def failing(session, event, envelope) -> None:
        how = event.reasons[0] if event.reasons else "unique"
        if how == "suspended":  # a duplicate key: DETAIL "Key (nonce)=(…) already exists"
            await session.execute(guarded.insert().values(nonce=SECRET_NONCE, name=CHINESE_NAME, n=2))
        elif how == "resigned":  # a check constraint: DETAIL "Failing row contains (…, 欧阳娜娜, …)"
            await session.execute(guarded.insert().values(nonce=SECRET_NONCE * 9, name=CHINESE_NAME, n=3))
        else:  # the driver refuses the value itself: "invalid input for query argument $1: '…'"
            await session.execute(text(f'INSERT INTO "{fresh_schema}".guarded (nonce, n) VALUES (\'x\', :n)'),
                                  {"n": f"{SECRET_NONCE}{CHINESE_NAME}"})

    consumer = InboxConsumer(name=unique_name, db=db, inbox=schema.inbox, settings=settings,
                             handlers={EligibilityChanged: failing})
    subjects = [uuid.uuid4() for _ in range(3)]
    with collected_logs() as logs:
        task = start(consumer.run())
        try:
            for subject, reason in zip(subjects, ("suspended", "resigned", "term_ended"), strict=True):
                await publish(producer, EligibilityChanged(supervisor_id=subject, eligible=False, reasons=[reason]))
            dead = await read_all(broker.bootstrap, topics.dead_letter(topics.REGISTRY_SUPERVISORS), 3, timeout=60)
        finally:
            await stop(task)
            await consumer.close()
    assert sorted(Envelope.from_bytes(r.value).subject for r in dead) == sorted(map(str, subjects))
    errors = [dict(r.headers)["dlq.error"].decode() for r in dead]
    assert any("UniqueViolationError" in e and "uq_guarded_nonce" in e for e in errors), errors
    assert any("CheckViolationError" in e for e in errors), errors
    assert any("invalid input for query argument" in e for e in errors), errors
    async with db.transaction() as session:
        stored = list((await session.scalars(select(schema.inbox.c.error).where(
            schema.inbox.c.status == "dead_lettered"))).all())
    log_text = "\n".join(logs.lines)
    assert "failed (attempt" in log_text and "dead-lettered" in log_text  # the failures were logged
    for value in (SECRET_NONCE, CHINESE_NAME):
        assert value not in log_text
        for record in dead:
            for name, header in record.headers:
                assert value.encode() not in header, name
        assert not any(value in e for e in stored)


async def test_the_problem_handlers_log_database_errors_without_their_values(db, fresh_schema):
    guarded = Table("guarded", MetaData(schema=fresh_schema),
                    Column("nonce", Text, unique=True), Column("name", Text))
    async with db.engine.begin() as conn:
        await conn.run_sync(guarded.metadata.create_all)
        await conn.execute(guarded.insert().values(nonce=SECRET_NONCE, name=CHINESE_NAME))

    async def duplicate() -> None:
        async with db.transaction() as session:
            await session.execute(guarded.insert().values(nonce=SECRET_NONCE, name=CHINESE_NAME))

    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/conflict")
    async def conflict() -> None:
        await duplicate()  # a DBAPIError: 409, logged at INFO

    @app.post("/wrapped")
    async def wrapped() -> None:
        try:
            await duplicate()
        except Exception as exc:  # an unexpected error caused by it: 500, logged with a traceback
            raise RuntimeError("could not record the attendance") from exc

    with collected_logs() as logs:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.post("/conflict")).status_code == 409
            assert (await client.post("/wrapped")).status_code == 500
    log_text = "\n".join(logs.lines)
    assert "refused by the database" in log_text and "unhandled error" in log_text
    assert "Traceback" in log_text and "could not record the attendance" in log_text
    assert "UniqueViolationError" in log_text
    assert SECRET_NONCE not in log_text and CHINESE_NAME not in log_text

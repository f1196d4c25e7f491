"""Signed envelopes (shared/events/signing.py), their settings and dev keys, sealed outbox envelopes,
and exceptions described for logs without the values they were about."""

import base64
import json
import stat
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from pydantic import BaseModel, ValidationError

from shared.crypto import FieldCipher
from shared.devstack.__main__ import dev_secrets, dev_signing_env
from shared.errors import describe_exception, safe_traceback, scrub_message
from shared.events import topics
from shared.events.contracts import ALL_EVENTS, SupervisorAppointed, SupervisorDrawn, SupervisorUpdated
from shared.events.envelope import Envelope
from shared.events.outbox import outbox_headers, outbox_value, seal_envelope
from shared.events.signing import (
    BATCH_GROUP,
    EventSigner,
    EventVerifier,
    SignatureError,
    generate_keypair,
    public_key_of,
    signed_bytes,
)
from shared.settings import CommonSettings

KEYS = {name: generate_keypair() for name in ("registry", "casework", "selection")}
SIGNERS = {name: EventSigner.from_b64(private) for name, (private, _) in KEYS.items()}
VALUE = b'{"id": "x", "type": "FeedbackSigned", "source": "casework"}'


def verifier() -> EventVerifier:
    return EventVerifier.from_keys({name: public for name, (_, public) in KEYS.items()})


def signed(source: str, topic: str = topics.CASEWORK_FEEDBACK, seq: int = 7, value: bytes = VALUE):
    return SIGNERS[source].headers(source=source, topic=topic, seq=seq, value=value)


def test_a_signed_message_verifies_and_says_who_signed_it_and_its_sequence() -> None:
    verified = verifier().verify(topics.CASEWORK_FEEDBACK, signed("casework"), VALUE)
    assert (verified.source, verified.seq) == ("casework", 7)
    # the signature covers prefix, topic, seq and value, exactly
    headers = dict(signed("casework"))
    raw = base64.b64decode(headers["sig"])
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(KEYS["casework"][1]))
    key.verify(raw, b"people-supervisors/event/1\n" + b"casework.feedback\n7\n" + VALUE)
    assert signed_bytes("casework.feedback", 7, VALUE) == b"people-supervisors/event/1\ncasework.feedback\n7\n" + VALUE


@pytest.mark.parametrize(("headers", "value", "topic", "why"), [
    ([], VALUE, topics.CASEWORK_FEEDBACK, "unsigned"),
    (signed("casework"), VALUE + b" ", topics.CASEWORK_FEEDBACK, "bad signature"),
    ([*signed("casework", seq=8)[:1], ("seq", b"9"), *signed("casework", seq=8)[2:]], VALUE,
     topics.CASEWORK_FEEDBACK, "bad signature"),  # the sequence is signed too
    (signed("casework"), VALUE, topics.FINANCE_SUBSIDIES, "may not publish"),  # casework on finance's topic
    (signed("casework", topic=topics.CASEWORK_SUPERVISION_REQUESTS), VALUE, topics.CASEWORK_FEEDBACK,
     "bad signature"),  # replayed onto another of casework's topics
    (signed("selection"), VALUE, topics.CASEWORK_FEEDBACK, "may not publish"),
    ([("source", b"casework"), *signed("selection")[1:]], VALUE, topics.CASEWORK_FEEDBACK, "bad signature"),
    ([("source", b"mallory"), *signed("casework")[1:]], VALUE, topics.CASEWORK_FEEDBACK, "unknown source"),
    ([*signed("casework"), ("sig", b"AAAA")], VALUE, topics.CASEWORK_FEEDBACK, "twice"),
    ([signed("casework")[0], ("seq", b"07"), signed("casework")[2]], VALUE, topics.CASEWORK_FEEDBACK, "seq"),
    ([signed("casework")[0], ("seq", b"-1"), signed("casework")[2]], VALUE, topics.CASEWORK_FEEDBACK, "seq"),
    ([*signed("casework")[:2], ("sig", b"not base64!")], VALUE, topics.CASEWORK_FEEDBACK, "base64"),
    ([*signed("casework")[:2], ("sig", base64.b64encode(b"short"))], VALUE, topics.CASEWORK_FEEDBACK, "Ed25519"),
    ([("sig", signed("casework")[2][1])], VALUE, topics.CASEWORK_FEEDBACK, "without the 'source'"),
])
def test_forged_or_misrouted_messages_are_refused(headers, value, topic, why) -> None:
    with pytest.raises(SignatureError, match=why):
        verifier().verify(topic, headers, value)


def test_every_topic_has_its_contract_publishers_and_the_calendar_everyone() -> None:
    v = verifier()
    assert v.allowed(topics.CASEWORK_FEEDBACK) == {"casework"}
    assert v.allowed(topics.REGISTRY_SUPERVISORS) == {"registry"}
    assert "selection" in v.allowed(topics.PLATFORM_CALENDAR) and "registry" in v.allowed(topics.PLATFORM_CALENDAR)
    assert EventVerifier.from_keys({}).allowed(topics.SELECTION_ASSIGNMENTS) == {"selection"}
    with pytest.raises(SignatureError, match="unknown source"):  # no keys configured: nothing is accepted
        EventVerifier.from_keys({}).verify(topics.CASEWORK_FEEDBACK, signed("casework"), VALUE)


def batch(n: int, topic: str = topics.REGISTRY_SUPERVISORS) -> list[tuple[str, str, int, bytes]]:
    return [("registry", topic, 100 + i, f'{{"n": {i}}}'.encode()) for i in range(n)]


@pytest.mark.parametrize("n", [1, 2, 3, 5, BATCH_GROUP, BATCH_GROUP + 1, 200])
def test_batch_signed_messages_each_verify_alone_and_a_root_is_checked_once(n: int) -> None:
    messages = batch(n)
    headers = SIGNERS["registry"].sign_many(messages)
    assert len(headers) == n
    signatures = {dict(h)["sig"] for h in headers}
    assert len(signatures) == -(-n // BATCH_GROUP)  # one signature per group
    v = verifier()
    for (_, topic, seq, value), h in zip(messages, headers, strict=True):
        fresh = verifier()  # every message verifies on its own, without the others
        assert fresh.verify(topic, h, value).seq == seq
        assert v.verify(topic, h, value).seq == seq
    if n > 1:
        assert 0 < len(v._roots) <= -(-n // BATCH_GROUP)


def test_a_batch_message_with_another_value_seq_topic_or_path_is_refused() -> None:
    messages = batch(8)
    headers = SIGNERS["registry"].sign_many(messages)
    _, topic, seq, value = messages[3]
    h = headers[3]
    v = verifier()
    assert v.verify(topic, h, value).seq == seq  # the root is now remembered: the others must still fail
    for bad_topic, bad_headers, bad_value in (
        (topic, h, value + b" "),
        (topics.REGISTRY_TRAINING, h, value),
        (topic, [*h[:1], ("seq", str(seq + 1).encode()), *h[2:]], value),
        (topic, [*h[:3], ("sig.path", headers[4][3][1])], value),  # another message's path
        (topic, [*h[:3], ("sig.path", h[3][1][:-1])], value),
        (topic, [*h[:3], ("sig.path", b"\x02" + h[3][1][1:])], value),
        (topic, [*h[:2], ("sig", headers[4][2][1]), h[3]], messages[4][3]),  # right root, wrong leaf
    ):
        with pytest.raises(SignatureError):
            v.verify(bad_topic, bad_headers, bad_value)
    attacker = EventSigner.from_b64(generate_keypair()[0])  # a batch signed with another key
    forged = attacker.sign_many(messages)
    with pytest.raises(SignatureError, match="bad signature"):
        verifier().verify(topic, forged[3], value)


# --- settings and dev keys ----------------------------------------------------------------------

REQUIRED = {
    "database_url": "postgresql+asyncpg://u@h/db", "kafka_bootstrap_servers": "k:9092",
    "field_encryption_key": "a" * 43 + "=", "field_hash_key": "b" * 43 + "=",
}


def test_signing_settings_have_no_default_and_refuse_malformed_keys(monkeypatch) -> None:
    settings = CommonSettings(**REQUIRED)
    assert settings.environment == "production" and settings.event_signing_key is None
    assert settings.event_verify_keys == {}
    assert EventSigner.from_settings(settings) is None  # the relay publishes nothing
    private, public = generate_keypair()
    monkeypatch.setenv("EVENT_SIGNING_KEY", private)
    monkeypatch.setenv("EVENT_VERIFY_KEYS", json.dumps({"registry": public}))
    from_env = CommonSettings(**REQUIRED)
    assert from_env.event_verify_keys == {"registry": public}
    assert EventSigner.from_settings(from_env).public_key == public
    assert private not in repr(from_env)  # a secret
    as_kwargs = CommonSettings(**REQUIRED, event_verify_keys=json.dumps({"casework": public}))
    assert as_kwargs.event_verify_keys == {"casework": public}
    monkeypatch.delenv("EVENT_SIGNING_KEY")
    monkeypatch.delenv("EVENT_VERIFY_KEYS")
    for bad in ({"event_signing_key": "c2hvcnQ="}, {"event_verify_keys": {"registry": "not base64 !"}},
                {"event_verify_keys": {"registry": base64.b64encode(b"x" * 31).decode()}}):
        with pytest.raises(ValidationError):
            CommonSettings(**REQUIRED, **bad)
    assert public_key_of(private) == public


def test_dev_secrets_make_a_key_pair_per_service_once_and_keep_them(tmp_path) -> None:
    shared_env = dev_secrets(tmp_path, ["registry", "selection"])
    path = tmp_path / "dev-secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    verify_keys = json.loads(shared_env["EVENT_VERIFY_KEYS"])
    assert set(verify_keys) == {"registry", "selection"}
    for service in verify_keys:
        private = dev_signing_env(tmp_path, service)["EVENT_SIGNING_KEY"]
        assert public_key_of(private) == verify_keys[service]
    again = dev_secrets(tmp_path, ["registry", "selection", "casework"])  # a service added later
    assert json.loads(again["EVENT_VERIFY_KEYS"])["registry"] == verify_keys["registry"]
    assert set(json.loads(again["EVENT_VERIFY_KEYS"])) == {"registry", "selection", "casework"}
    assert again["FIELD_ENCRYPTION_KEY"] == shared_env["FIELD_ENCRYPTION_KEY"]
    assert all(isinstance(v, str) for v in again.values())  # all of it goes into the environment


def test_dev_secrets_upgrade_an_older_file_without_signing_keys(tmp_path) -> None:
    (tmp_path / "dev-secrets.json").write_text(json.dumps({"FIELD_ENCRYPTION_KEY": "k1", "FIELD_HASH_KEY": "k2"}))
    env = dev_secrets(tmp_path, ["registry"])
    assert env["FIELD_ENCRYPTION_KEY"] == "k1" and json.loads(env["EVENT_VERIFY_KEYS"]).keys() == {"registry"}


# --- sealed envelopes in the outbox ---------------------------------------------------------------

def test_only_the_events_with_names_and_phones_are_sealed() -> None:
    assert {e.TYPE for e in ALL_EVENTS if e.PERSONAL} == {
        SupervisorAppointed.TYPE, SupervisorUpdated.TYPE, SupervisorDrawn.TYPE}


def test_a_sealed_row_opens_to_the_envelope_and_is_signed_like_the_relay_signs() -> None:
    cipher = FieldCipher(b"k" * 32, b"h" * 32)
    event = SupervisorDrawn(request_id=uuid.uuid4(), draw_id=uuid.uuid4(), supervisor_id=uuid.uuid4(), name="李小龙",
                            phone="13812345678", district="环翠区", specialties=[], group="local", draw_order=1,
                            confirmed_at=datetime.now(UTC))
    envelope = Envelope(type=event.TYPE, version=1, source="selection", correlation_id="c", subject=event.subject,
                        data=event.model_dump(mode="json"))
    stored = seal_envelope(envelope, cipher, "selection.outbox_event")
    text = json.dumps(stored, ensure_ascii=False)
    assert "13812345678" not in text and "李小龙" not in text and stored["type"] == "SupervisorDrawn"
    row = SimpleNamespace(id=42, topic=topics.SELECTION_ASSIGNMENTS, envelope_json=text, type=event.TYPE,
                          version="1", correlation_id="c")  # selected without the relay's extra columns
    value = outbox_value(row, cipher, context="selection.outbox_event")
    assert Envelope.from_bytes(value) == envelope
    with pytest.raises(ValueError, match="sealed"):
        outbox_value(row)
    with pytest.raises(Exception, match=r"tampered|another context"):
        outbox_value(row, cipher, context="registry.outbox_event")  # a row copied to another table
    private, public = generate_keypair()
    headers = outbox_headers(row, EventSigner.from_b64(private), value=value)
    assert [name for name, _ in headers] == ["type", "version", "correlation_id", "source", "seq", "sig"]
    verified = EventVerifier.from_keys({"selection": public}).verify(row.topic, headers, value)
    assert (verified.source, verified.seq) == ("selection", 42)


# --- exceptions for logs and dead letters -------------------------------------------------------

@pytest.mark.parametrize(("message", "kept", "gone"), [
    ('duplicate key value violates unique constraint "uq_t_nonce"\nDETAIL:  Key (nonce)=(s3cr3t) already exists.',
     '"uq_t_nonce"', "s3cr3t"),
    ('new row for relation "t" violates check constraint "ck_t_len"\nDETAIL:  Failing row contains (s3cr3t, 张三).',
     '"ck_t_len"', "张三"),
    ('invalid input syntax for type integer: "s3cr3t"', "type integer", "s3cr3t"),
    ("invalid input for query argument $1: 's3cr3t张三' ('str' object cannot be interpreted as an integer)",
     "query argument $1", "张三"),
    ('null value in column "name" of relation "t" violates not-null constraint', '"name"', "s3cr3t"),
    ('invalid byte sequence for encoding "UTF8": 0xe5 0xbc', '"UTF8"', "0xe5"),
    ('value "12345678901" is out of range for type integer', "out of range", "12345678901"),
])
def test_driver_messages_keep_names_and_lose_values(message, kept, gone) -> None:
    scrubbed = scrub_message(message)
    assert kept in scrubbed and gone not in scrubbed
    assert "DETAIL" not in scrubbed


def test_validation_errors_are_described_without_the_input() -> None:
    class Person(BaseModel):
        phone: int

    with pytest.raises(ValidationError) as caught:
        Person.model_validate({"phone": "13812345678-secret"})
    described = describe_exception(caught.value)
    assert "phone" in described and "secret" not in described and "13812345678" not in described


def test_a_traceback_for_the_log_keeps_frames_and_drops_driver_details() -> None:
    class FakeDriverError(Exception):
        sqlstate = "23505"
        message = 'duplicate key value violates unique constraint "uq_x"'

        def __str__(self) -> str:
            return self.message + "\nDETAIL:  Key (nonce)=(s3cr3t) already exists."

    def inner() -> None:
        raise FakeDriverError()

    try:
        try:
            inner()
        except FakeDriverError as exc:
            raise RuntimeError("could not save") from exc
    except RuntimeError as exc:
        text = safe_traceback(exc)
    assert "inner()" in text and "could not save" in text and '"uq_x"' in text
    assert "s3cr3t" not in text and "DETAIL" not in text


def test_the_events_benchmark_compares_the_stock_pipeline_with_an_unsigned_one() -> None:
    from bench import bench_events
    from shared.db import Database
    from shared.events.inbox import InboxConsumer

    settings = bench_events.make_settings("postgresql+asyncpg://bench@/bench?host=/nonexistent", "127.0.0.1:1")
    signed = bench_events.Pipeline(Database(settings.database_url), settings, "t1")
    assert isinstance(signed.relay.signer, EventSigner) and isinstance(signed.consumer.verifier, EventVerifier)
    unsigned = bench_events.Pipeline(Database(settings.database_url), settings, "t2", signed=False)
    assert type(unsigned.consumer) is InboxConsumer  # the stock consumer, only its verifier swapped
    value = b"{}"
    [headers] = unsigned.relay.signer.sign_many([("bench", unsigned.topic, 5, value)])
    assert "sig" not in dict(headers)
    assert unsigned.consumer.verifier.verify(unsigned.topic, headers, value).seq == 5
    # the consumer process gets the public key only, and it verifies what the writer side signs
    child = bench_events.make_settings(settings.database_url, "127.0.0.1:1",
                                       verify_key=settings.event_verify_keys["bench"])
    assert child.event_signing_key is None
    [headers] = signed.relay.signer.sign_many([("bench", signed.topic, 5, value)])
    assert EventVerifier.from_settings(child).verify(signed.topic, headers, value).source == "bench"


def test_service_log_formatters_render_tracebacks_without_driver_details() -> None:
    import logging

    from shared.observability import JsonFormatter, PlainFormatter

    class FakeDriverError(Exception):
        sqlstate = "23514"
        message = 'new row for relation "t" violates check constraint "ck_t"'

        def __str__(self) -> str:
            return self.message + "\nDETAIL:  Failing row contains (s3cr3t, 欧阳娜娜)."

    try:
        raise FakeDriverError()
    except FakeDriverError:
        import sys
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "job failed", (), sys.exc_info())
    for formatter in (JsonFormatter("registry"), PlainFormatter("%(message)s")):
        text = formatter.format(record)
        assert '"ck_t"' in text or "ck_t" in text
        assert "s3cr3t" not in text and "欧阳娜娜" not in text and "Failing row" not in text

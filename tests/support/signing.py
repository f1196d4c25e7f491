"""Event signing keys of the test session, and messages signed as a producer's outbox relay signs them.

Every service name the tests use has a key pair made at import (like the JWT test key): the five
services and `sample` (tests/support/sample_service). Tests that publish by hand go through
`publish` (or `signed_record` for records handed to a consumer directly), which sign like a relay;
a test that forges an event on purpose sends with the producer itself, without these.
"""

import itertools
import json
import time
import uuid

from aiokafka import AIOKafkaProducer, ConsumerRecord

from shared.events.asyncapi import SERVICES, publishers
from shared.events.contracts import Event
from shared.events.envelope import Envelope
from shared.events.signing import EventSigner, generate_keypair

SOURCES = (*SERVICES, "sample")
KEYS: dict[str, tuple[str, str]] = {name: generate_keypair() for name in SOURCES}  # (private, public)
VERIFY_KEYS: dict[str, str] = {name: public for name, (_, public) in KEYS.items()}
SIGNERS: dict[str, EventSigner] = {name: EventSigner.from_b64(private) for name, (private, _) in KEYS.items()}

# Hand-published events of one session get increasing sequences, above any relay's outbox ids
# (microseconds since the epoch: also above those of an earlier session on a kept database).
_seq = itertools.count(time.time_ns() // 1000)


def next_seq() -> int:
    return next(_seq)


def signing_settings(source: str) -> dict:
    """Settings keyword arguments: `source`'s signing key and every test source's public key."""
    return {"event_signing_key": KEYS[source][0], "event_verify_keys": dict(VERIFY_KEYS)}


def signing_env(source: str) -> dict[str, str]:
    """The same as environment variables (EVENT_SIGNING_KEY, EVENT_VERIFY_KEYS)."""
    return {"EVENT_SIGNING_KEY": KEYS[source][0], "EVENT_VERIFY_KEYS": json.dumps(VERIFY_KEYS)}


def publisher_of(topic: str) -> str:
    """The service that publishes on `topic` (the first, for the calendar every service publishes)."""
    return publishers(topic)[0]


def envelope_for(event: Event, *, source: str | None = None, correlation_id: str = "test",
                 event_id: uuid.UUID | None = None) -> Envelope:
    """The envelope the topic's publisher's outbox would write for `event`."""
    return Envelope(**({"id": event_id} if event_id else {}), type=event.TYPE, version=event.VERSION,
                    source=source or publisher_of(event.TOPIC), correlation_id=correlation_id,
                    subject=event.subject, data=event.model_dump(mode="json"))


def signed_headers(topic: str, value: bytes, *, source: str, seq: int | None = None,
                   envelope: Envelope | None = None) -> list[tuple[str, bytes]]:
    """The headers a relay sends: type/version/correlation_id (from `envelope`) and the signature."""
    headers = envelope.kafka_headers() if envelope is not None else []
    return headers + SIGNERS[source].headers(source=source, topic=topic, seq=next_seq() if seq is None else seq,
                                             value=value)


async def publish(producer: AIOKafkaProducer, event: Event | Envelope, *, topic: str | None = None,
                  source: str | None = None, seq: int | None = None) -> Envelope:
    """Publish as the producer's outbox relay would: key = subject, signed by the envelope's source."""
    if isinstance(event, Envelope):
        if topic is None:
            raise ValueError("publishing an Envelope needs its topic")
        envelope = event
    else:
        envelope = envelope_for(event, source=source)
        topic = topic or event.TOPIC
    value = envelope.to_bytes()
    await producer.send_and_wait(topic, value, key=envelope.subject.encode(),
                                 headers=signed_headers(topic, value, source=envelope.source, seq=seq,
                                                        envelope=envelope))
    return envelope


def signed_record(envelope: Envelope, topic: str, *, offset: int, partition: int = 0,
                  seq: int | None = None) -> ConsumerRecord:
    """A consumer record of `envelope` as it comes off the broker, signed by its source."""
    value = envelope.to_bytes()
    return ConsumerRecord(topic=topic, partition=partition, offset=offset, timestamp=0, timestamp_type=0,
                          key=envelope.subject.encode(), value=value, checksum=None,
                          serialized_key_size=0, serialized_value_size=len(value),
                          headers=signed_headers(topic, value, source=envelope.source, seq=seq, envelope=envelope))

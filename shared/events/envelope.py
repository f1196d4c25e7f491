"""The envelope every message on the bus carries (EVENTS.md).

Who may trust an envelope: topic ACLs on the broker (TLS + SASL/SCRAM, only casework writes
`casework.feedback`, ...) are the first line; the second is the producer's Ed25519 signature,
sent by the outbox relay in the `sig` header over the topic, the producer's sequence (`seq`
header) and the exact message bytes, and verified by every consumer before it reads the envelope
(shared/events/signing.py). `source` is the signer: a consumer checks the signature with the
public key configured for `source`, and that `source` may publish on the topic.
"""

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """id is the idempotency key; subject (the aggregate id) is also the Kafka key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str
    version: int
    source: str  # the producing service, which signs the message (its key in EVENT_VERIFY_KEYS)
    occurred_at: datetime = Field(default_factory=utcnow)
    correlation_id: str
    subject: str
    data: dict[str, Any]

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> "Envelope":
        return cls.model_validate_json(raw)

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        """Headers repeat type, version and correlation id so brokers' tools can route without parsing."""
        return kafka_headers(self.type, self.version, self.correlation_id)


def kafka_headers(event_type: str, version: int | str, correlation_id: str) -> list[tuple[str, bytes]]:
    """The headers of an envelope, from its fields (the relay has them without the envelope object).

    The relay adds `source`, `seq` and `sig` (shared.events.signing.EventSigner.headers)."""
    return [
        ("type", event_type.encode()),
        ("version", str(version).encode()),
        ("correlation_id", correlation_id.encode()),
    ]

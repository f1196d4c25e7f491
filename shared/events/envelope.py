"""The envelope every message on the bus carries (EVENTS.md)."""

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
    source: str
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
    """The headers of an envelope, from its fields (the relay has them without the envelope object)."""
    return [
        ("type", event_type.encode()),
        ("version", str(version).encode()),
        ("correlation_id", correlation_id.encode()),
    ]

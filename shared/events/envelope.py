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
        return [
            ("type", self.type.encode()),
            ("version", str(self.version).encode()),
            ("correlation_id", self.correlation_id.encode()),
        ]

"""Helpers of the finance integration tests: events through the real inbox, unique months, tokens."""

import random
import uuid
from datetime import UTC, date, datetime

from aiokafka import ConsumerRecord
from fastapi import FastAPI

from shared.events.contracts import Event, FeedbackSigned
from shared.events.envelope import Envelope
from tests.support.apps import bearer
from tests.support.signing import publisher_of, signed_record

FIN_A = bearer("finance", subject="fin-alice")
FIN_B = bearer("finance", subject="fin-bob")
ADMIN = bearer("bureau_admin", subject="admin-carol")
_offset = iter(range(10**9))


def unique_month() -> tuple[int, int]:
    """A month far in the future that no other test uses (tests share one database)."""
    rng = random.Random(uuid.uuid4().int)
    return rng.randint(2200, 2899), rng.randint(1, 12)


def envelope_of(event: Event, *, source: str | None = None) -> Envelope:
    """The envelope of `event` from its topic's publisher (or `source`)."""
    return Envelope(type=event.TYPE, version=event.VERSION, source=source or publisher_of(event.TOPIC),
                    correlation_id=str(uuid.uuid4()), subject=event.subject, data=event.model_dump(mode="json"))


def record_of(envelope: Envelope, topic: str) -> ConsumerRecord:
    """The record as it comes off the broker: signed by the envelope's source, as its relay signs."""
    return signed_record(envelope, topic, offset=next(_offset))


async def deliver(app: FastAPI, event: Event, *, envelope: Envelope | None = None) -> Envelope:
    """Hand one event to the running app's inbox consumer (as if it came off the broker)."""
    envelope = envelope or envelope_of(event)
    await app.state.consumer.process([record_of(envelope, event.TOPIC)])
    return envelope


def feedback(*, supervisor_id: uuid.UUID | None = None, activity_id: uuid.UUID | None = None,
             activity_type: str = "public_hearing", activity_date: date, district: str = "环翠区",
             signature_hash: str | None = None) -> FeedbackSigned:
    return FeedbackSigned(
        form_id=uuid.uuid4(), activity_id=activity_id or uuid.uuid4(), request_id=uuid.uuid4(),
        supervisor_id=supervisor_id or uuid.uuid4(), activity_type=activity_type, activity_date=activity_date,
        district=district, adopted=None, signed_at=datetime.now(UTC),
        signature_hash=signature_hash if signature_hash is not None else uuid.uuid4().hex * 2,
    )


async def line_of(client, supervisor_id: uuid.UUID, period: str | None = None) -> list[dict]:
    params = {"supervisor_id": str(supervisor_id), "limit": 200}
    if period:
        params["period"] = period
    response = await client.get("/subsidy-lines", params=params, headers=FIN_A)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def approve(client, line_id: str, *, pay: bool = False) -> dict:
    """Drive a line through check (alice) and approve (bob), optionally pay."""
    r = await client.post(f"/subsidy-lines/{line_id}/check", headers=FIN_A)
    assert r.status_code == 200, r.text
    r = await client.post(f"/subsidy-lines/{line_id}/approve", headers=FIN_B)
    assert r.status_code == 200, r.text
    if pay:
        r = await client.post(f"/subsidy-lines/{line_id}/pay", headers=FIN_A,
                              json={"paid_on": "2026-11-30", "payment_reference": f"PAY-{line_id[:8]}"})
        assert r.status_code == 200, r.text
    return r.json()

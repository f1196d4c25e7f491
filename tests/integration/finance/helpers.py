"""Helpers of the finance integration tests: events through the real inbox, unique districts, tokens.

Tests use real dates (2025/2026) and freeze "today" where a rule depends on it; data of one test is kept
apart from the others' by a district of its own (tables, budgets and reconciliation are per district).
"""

import uuid
from datetime import date

from aiokafka import ConsumerRecord
from fastapi import FastAPI

from shared import clock
from shared.events.contracts import Event, FeedbackSigned
from shared.events.envelope import Envelope
from tests.support.apps import bearer
from tests.support.signing import publisher_of, signed_record

FIN_A = bearer("finance", subject="fin-alice")
FIN_B = bearer("finance", subject="fin-bob")
ADMIN = bearer("bureau_admin", subject="admin-carol")
_offset = iter(range(10**9))


def new_district() -> str:
    """A district no other test uses (tests share one database)."""
    return f"测试区{uuid.uuid4().hex[:8]}"


def procuratorate(office: str, district: str) -> dict[str, str]:
    return bearer("procuratorate", subject=f"proc-{office}", district=district, office=office)


async def fund(client, year: int, district: str, *, count: int = 100, seats: int = 3) -> None:
    """R41.1: a plan for the district's year large enough that the test's approvals stay within budget."""
    office = f"{district}人民检察院"
    rows = [{"month": 1, "activity_type": "public_hearing", "count": count, "seats": seats}]
    r = await client.put(f"/plans/{year}", headers=procuratorate(office, district), json={"rows": rows})
    assert r.status_code == 200, r.text


async def funded_district(client, year: int = 2026) -> str:
    district = new_district()
    await fund(client, year, district)
    return district


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
        district=district, adopted=None, signed_at=clock.now(),
        signature_hash=signature_hash if signature_hash is not None else uuid.uuid4().hex * 2,
    )


async def line_of(client, supervisor_id: uuid.UUID, period: str | None = None) -> list[dict]:
    params = {"supervisor_id": str(supervisor_id), "limit": 200}
    if period:
        params["period"] = period
    response = await client.get("/subsidy-lines", params=params, headers=FIN_A)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def approve(client, line_id: str) -> dict:
    """Drive a line through check (alice) and approve (bob)."""
    r = await client.post(f"/subsidy-lines/{line_id}/check", headers=FIN_A)
    assert r.status_code == 200, r.text
    r = await client.post(f"/subsidy-lines/{line_id}/approve", headers=FIN_B)
    assert r.status_code == 200, r.text
    return r.json()


async def issue(client, period: str, district: str) -> dict:
    """R42.1: issue the district's table of the month."""
    r = await client.post(f"/disbursements/{period}/issue", headers=FIN_A, params={"district": district})
    assert r.status_code == 200, r.text
    return r.json()


async def covering_letter(client, period: str, district: str) -> dict:
    """R42.1: record the procuratorate's covering letter of the month for the district."""
    r = await client.post("/covering-letters", headers=FIN_A, json={
        "period": period, "district": district, "reference": f"威检函〔{period[:4]}〕{uuid.uuid4().hex[:4]}号"})
    assert r.status_code == 201, r.text
    return r.json()


async def pay(client, line_id: str, reference: str | None = None):
    return await client.post(f"/subsidy-lines/{line_id}/pay", headers=FIN_A,
                             json={"payment_reference": reference or f"PAY-{line_id[:8]}"})

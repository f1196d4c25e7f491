"""Helpers of the appraisal integration tests: events through the real inbox, people, years, tokens."""

import uuid
from datetime import UTC, date, datetime

from aiokafka import ConsumerRecord
from fastapi import FastAPI

from shared import clock
from shared.events.contracts import Event, FeedbackSigned, SupervisorAppointed, TrainingRecorded
from shared.events.envelope import Envelope
from tests.support.apps import bearer
from tests.support.signing import publisher_of, signed_record

ADMIN = bearer("bureau_admin", subject="admin-appraisal")
SECOND = bearer("bureau_admin", subject="admin-appraisal-2")  # a second bureau user (R30.1 approvals)
AUDITOR = bearer("auditor", subject="auditor-appraisal")
_offset = iter(range(10**9))


def at(year: int, month: int, day: int, hour: int = 10) -> datetime:
    """A moment in Shanghai, to freeze the server's clock at (`with clock.frozen(at(2025, 12, 2)):`)."""
    return datetime(year, month, day, hour, tzinfo=clock.SHANGHAI)


def unique_district() -> str:
    """A district name no other test uses (the session database is shared; years are real years)."""
    return f"测试区{uuid.uuid4().hex[:8]}"


def district_token(district: str) -> dict[str, str]:
    return bearer("district_bureau", subject=f"db-{district}", district=district)


def self_token(supervisor_id: uuid.UUID) -> dict[str, str]:
    return bearer("supervisor", subject=f"sup-{supervisor_id}", supervisor_id=str(supervisor_id))


def envelope_of(event: Event, *, source: str | None = None) -> Envelope:
    """The envelope of `event` from its topic's publisher (or `source`)."""
    return Envelope(type=event.TYPE, version=event.VERSION, source=source or publisher_of(event.TOPIC),
                    correlation_id=str(uuid.uuid4()), subject=event.subject, data=event.model_dump(mode="json"))


def record_of(envelope: Envelope, topic: str) -> ConsumerRecord:
    """The record as it comes off the broker: signed by the envelope's source, as its relay signs."""
    return signed_record(envelope, topic, offset=next(_offset))


async def deliver(app: FastAPI, *events: Event, envelopes: list[Envelope] | None = None) -> list[Envelope]:
    """Hand events to the running app's inbox consumer (as if they came off the broker), in one batch."""
    envelopes = envelopes or [envelope_of(e) for e in events]
    await app.state.consumer.process([record_of(env, e.TOPIC) for env, e in zip(envelopes, events, strict=True)])
    return envelopes


def appointed(*, district: str = "环翠区", name: str = "王明", term_start: date = date(2025, 1, 1),
              term_end: date = date(2029, 12, 31)) -> SupervisorAppointed:
    sid = uuid.uuid4()
    return SupervisorAppointed(
        supervisor_id=sid, name=name, gender="male", district=district, specialties=[], employer="威海某公司",
        recommending_body="某街道办事处", term_start=term_start, term_end=term_end, certificate_no=f"C-{sid.hex[:8]}",
        work_card_no=f"W-{sid.hex[:8]}", eligible=True)


def signed(supervisor_id: uuid.UUID, on: date, *, adopted: bool | None = None,
           activity_id: uuid.UUID | None = None, district: str = "环翠区") -> FeedbackSigned:
    return FeedbackSigned(
        form_id=uuid.uuid4(), activity_id=activity_id or uuid.uuid4(), request_id=uuid.uuid4(),
        supervisor_id=supervisor_id, activity_type="public_hearing", activity_date=on, district=district,
        adopted=adopted, signed_at=datetime.now(UTC), signature_hash=uuid.uuid4().hex * 2)


def trained(supervisor_id: uuid.UUID, on: date, *, hours: float = 8.0, kind: str = "annual",
            attended: bool = True) -> TrainingRecorded:
    return TrainingRecorded(supervisor_id=supervisor_id, session_id=uuid.uuid4(), kind=kind, format="lecture",
                            date=on, hours=hours, attended=attended, exam_passed=None)

"""Helpers for casework tests: activity bodies, tokens, and selection's answers published as events."""

import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
from aiokafka import AIOKafkaProducer

from shared.calendar import default_calendar
from shared.events.contracts import Event, SupervisionStaffed, SupervisorDrawn
from shared.events.envelope import Envelope
from tests.support.apps import bearer
from tests.support.eventing import wait_until

SHANGHAI = ZoneInfo("Asia/Shanghai")
DISTRICT = "环翠区"
OFFICE = "威海市人民检察院"


def proc(office: str = OFFICE, district: str = DISTRICT) -> dict[str, str]:
    return bearer("procuratorate", subject=f"proc-{office}", district=district, office=office)


def supervisor(supervisor_id: object) -> dict[str, str]:
    return bearer("supervisor", subject=f"sup-{supervisor_id}", supervisor_id=str(supervisor_id))


def activity_window(working_days_ahead: int = 6, *, hour: int = 9, hours: int = 3,
                    start_day=None) -> tuple[datetime, datetime]:
    """(starts_at, ends_at): that many working days ahead of today (Shanghai), or on `start_day`."""
    day = start_day or default_calendar.add_working_days(datetime.now(UTC).astimezone(SHANGHAI).date(),
                                                         working_days_ahead).value
    starts = datetime.combine(day, time(hour), tzinfo=SHANGHAI)
    return starts, starts + timedelta(hours=hours)


def activity_body(working_days_ahead: int = 6, *, office: str = OFFICE, district: str = DISTRICT,
                  start_day=None, **extra) -> dict:
    starts, ends = activity_window(working_days_ahead, start_day=start_day)
    body = {"case_ref": f"威检刑诉〔2026〕{uuid.uuid4().hex[:6]}号", "activity_type": "public_hearing",
            "mandatory_invitation": False, "office": office, "district": district,
            "starts_at": starts.isoformat(), "ends_at": ends.isoformat(), "place": "第一听证室",
            "summary": "对拟不起诉案件举行公开听证。"}
    body.update(extra)
    return body


async def publish(producer: AIOKafkaProducer, event: Event, source: str = "selection") -> Envelope:
    """Publish an event as another service's outbox relay would (key = subject)."""
    envelope = Envelope(type=event.TYPE, version=event.VERSION, source=source, correlation_id="test",
                        subject=event.subject, data=event.model_dump(mode="json"))
    await producer.send_and_wait(event.TOPIC, envelope.to_bytes(), key=envelope.subject.encode(),
                                 headers=envelope.kafka_headers())
    return envelope


def drawn(request_id: str, supervisor_id: uuid.UUID, order: int, *, name: str = "王监督",
          phone: str = "13912345678") -> SupervisorDrawn:
    return SupervisorDrawn(request_id=uuid.UUID(request_id), draw_id=uuid.uuid4(), supervisor_id=supervisor_id,
                           name=name, phone=phone, district=DISTRICT, specialties=["法律"], group="local",
                           draw_order=order, confirmed_at=datetime.now(UTC))


async def staffed_activity(client: httpx.AsyncClient, producer: AIOKafkaProducer, *, n: int = 2,
                           office: str = OFFICE, start_day=None, **activity_extra) -> dict:
    """An activity whose request selection staffed with `n` supervisors (events published by the test)."""
    headers = proc(office)
    response = await client.post("/activities", headers=headers,
                                 json=activity_body(office=office, start_day=start_day, **activity_extra))
    assert response.status_code == 201, response.text
    activity = response.json()
    response = await client.post(f"/activities/{activity['id']}/supervision-requests", headers=headers,
                                 json={"seats": n})
    assert response.status_code == 201, response.text
    request_id = response.json()["request_id"]
    ids = [uuid.uuid4() for _ in range(n)]
    for i, sid in enumerate(ids, 1):
        await publish(producer, drawn(request_id, sid, i, name=f"监督员{i}", phone=f"1391234567{i}"))
    await publish(producer, SupervisionStaffed(request_id=uuid.UUID(request_id), supervisor_ids=ids,
                                               receipt_hash="ab" * 32))

    async def is_staffed() -> bool:
        view = (await client.get(f"/supervision-requests/{request_id}", headers=headers)).json()
        return view["status"] == "staffed" and len(view["roster"]) == n

    await wait_until(is_staffed, timeout=30)
    return {"activity_id": activity["id"], "request_id": request_id, "supervisors": [str(s) for s in ids],
            "headers": headers, "activity": activity}

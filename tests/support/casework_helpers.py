"""Helpers for casework tests: activity bodies, tokens, and selection's answers published as events."""

import contextlib
import hashlib
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy import update

from services.casework.models import activity as activity_table
from shared import clock
from shared.calendar import default_calendar
from shared.events.contracts import Event, SupervisionAccepted, SupervisionStaffed, SupervisorDrawn
from shared.events.envelope import Envelope
from tests.support.apps import bearer
from tests.support.eventing import wait_until
from tests.support.signing import publish as signed_publish

SHANGHAI = clock.SHANGHAI
DISTRICT = "环翠区"
OFFICE = "威海市人民检察院"


def proc(office: str = OFFICE, district: str = DISTRICT) -> dict[str, str]:
    return bearer("procuratorate", subject=f"proc-{office}", district=district, office=office)


def supervisor(supervisor_id: object) -> dict[str, str]:
    return bearer("supervisor", subject=f"sup-{supervisor_id}", supervisor_id=str(supervisor_id))


def today() -> date:
    return clock.today()


@contextlib.contextmanager
def during(activity: dict, *, after: timedelta = timedelta(hours=1)) -> Iterator[datetime]:
    """The server's clock frozen `after` the activity's start (holding and signing happen on site, R17.1)."""
    with clock.frozen(datetime.fromisoformat(activity["starts_at"]) + after) as moment:
        yield moment


def activity_window(working_days_ahead: int = 6, *, hour: int = 9, hours: int = 3,
                    start_day=None) -> tuple[datetime, datetime]:
    """(starts_at, ends_at): that many working days ahead of today (Shanghai), or on `start_day`.

    R10.1 counts [today, activity day): on a working day N ahead gives N working days, on a rest day N - 1.
    """
    day = start_day or default_calendar.add_working_days(today(), working_days_ahead).value
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


def envelope_of(event: Event, source: str = "selection") -> Envelope:
    return Envelope(type=event.TYPE, version=event.VERSION, source=source, correlation_id="test",
                    subject=event.subject, data=event.model_dump(mode="json"))


async def publish(producer: AIOKafkaProducer, event: Event, source: str = "selection") -> Envelope:
    """Publish an event as another service's outbox relay would (key = subject, signed by `source`)."""
    return await signed_publish(producer, envelope_of(event, source), topic=event.TOPIC)


async def feed(app: FastAPI, event: Event) -> None:
    """Apply one of selection's events with casework's own handler in a transaction (no broker, no inbox)."""
    handler = app.state.consumer.handlers[(event.TYPE, event.VERSION)]
    async with app.state.db.transaction() as session:
        await handler(session, event, envelope_of(event))


def commit_to(nonce: str) -> str:
    return hashlib.sha256(bytes.fromhex(nonce)).hexdigest()


def accepted(request_id: str, *, bureau_nonce: str | None = None, **overrides) -> tuple[SupervisionAccepted, str]:
    """selection's acceptance of a request (DRAW.md step 2) and the bureau nonce it commits to."""
    bureau_nonce = bureau_nonce or secrets.token_hex(32)
    values = dict(request_id=uuid.UUID(request_id), accepted_at=datetime.now(UTC),
                  bureau_commitment=commit_to(bureau_nonce), snapshot_hash=secrets.token_hex(32),
                  params_hash=secrets.token_hex(32), beacon=None, short_notice_consent=None)
    values.update(overrides)
    return SupervisionAccepted(**values), bureau_nonce


def receipt_for(request_id: object, draw_id: object, *, bureau_commitment: str, bureau_nonce: str,
                procuratorate_commitment: str | None, procuratorate_nonce: str | None, snapshot_hash: str,
                params_hash: str, round_no: int = 1, receipt_hash: str | None = None) -> dict:
    """A draw receipt in the v4 shape (people-supervisor-draw/4) with the fields casework checks (DRAW.md step 5).

    Only the parts casework compares are meaningful; the verifier itself is replaced in these tests.
    """
    return {
        "alg": "people-supervisor-draw/4", "draw_id": str(draw_id), "request_id": str(request_id), "round": round_no,
        "accepted_at": datetime.now(UTC).isoformat(), "drawn_at": datetime.now(UTC).isoformat(),
        "snapshot": {"buckets": {}}, "snapshot_hash": snapshot_hash, "params": {}, "params_hash": params_hash,
        "commitments": {"bureau": bureau_commitment, "procuratorate": procuratorate_commitment},
        "nonces": {"bureau": bureau_nonce, "procuratorate": procuratorate_nonce},
        "procuratorate_nonce_reason": None if procuratorate_nonce else "not revealed", "beacon": None,
        "seed": secrets.token_hex(32), "order": {"local": [], "cross": []}, "prev_receipt_hash": "0" * 64,
        "receipt_hash": receipt_hash or secrets.token_hex(32), "contact_log": [], "buckets": {},
    }


def drawn(request_id: str, supervisor_id: uuid.UUID, order: int, *, name: str = "王监督",
          phone: str = "13912345678", contact_log_head: str | None = None) -> SupervisorDrawn:
    return SupervisorDrawn(request_id=uuid.UUID(request_id), draw_id=uuid.uuid4(), supervisor_id=supervisor_id,
                           name=name, phone=phone, district=DISTRICT, specialties=["法律"], group="local",
                           draw_order=order, confirmed_at=datetime.now(UTC), contact_log_head=contact_log_head)


async def staffed_activity(client: httpx.AsyncClient, producer: AIOKafkaProducer, *, n: int = 2,
                           office: str = OFFICE, start_day=None, app: FastAPI | None = None,
                           district: str = DISTRICT, **activity_extra) -> dict:
    """An activity whose request selection accepted and staffed with `n` supervisors (events published here).

    With `start_day` in the past (R20 reports), pass `app`: a request can only be made ≥ 5 working days ahead
    (R10.1), so the activity is requested and staffed ahead, then its window is moved to `start_day` in SQL.
    """
    headers = proc(office, district)
    moved = start_day is not None and start_day <= default_calendar.add_working_days(today(), 6).value
    assert not moved or app is not None, "a past activity needs `app` to be moved back in time"
    response = await client.post("/activities", headers=headers,
                                 json=activity_body(office=office, district=district,
                                                    start_day=None if moved else start_day, **activity_extra))
    assert response.status_code == 201, response.text
    activity = response.json()
    response = await client.post(f"/activities/{activity['id']}/supervision-requests", headers=headers,
                                 json={"seats": n})
    assert response.status_code == 201, response.text
    request_id = response.json()["request_id"]
    await publish(producer, accepted(request_id)[0])
    ids = [uuid.uuid4() for _ in range(n)]
    for i, sid in enumerate(ids, 1):
        await publish(producer, drawn(request_id, sid, i, name=f"监督员{i}", phone=f"1391234567{i}"))
    await publish(producer, SupervisionStaffed(request_id=uuid.UUID(request_id), supervisor_ids=ids,
                                               receipt_hash="ab" * 32, contact_log_head="cd" * 32))

    async def is_staffed() -> bool:
        view = (await client.get(f"/supervision-requests/{request_id}", headers=headers)).json()
        return view["status"] == "staffed" and len(view["roster"]) == n

    await wait_until(is_staffed, timeout=30)
    if moved:
        starts, ends = activity_window(start_day=start_day)
        async with app.state.db.transaction() as session:
            await session.execute(update(activity_table).where(activity_table.c.id == uuid.UUID(activity["id"]))
                                  .values(starts_at=starts, ends_at=ends))
        activity = {**activity, "starts_at": starts.isoformat(), "ends_at": ends.isoformat()}
    return {"activity_id": activity["id"], "request_id": request_id, "supervisors": [str(s) for s in ids],
            "headers": headers, "activity": activity}

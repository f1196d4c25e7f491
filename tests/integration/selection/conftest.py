"""Selection integration fixtures: migrated schema, a running app with a fake registry, an event collector.

Isolation in a shared database: every test appoints its own people in districts and with a
specialty named after the test (`unique_name`), and filters the request by that specialty, so
other tests' supervisors never enter its draw.
"""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.selection.app import build
from services.selection.config import SelectionSettings
from services.selection.draw import algorithm as alg
from services.selection.pool import service as pool
from shared.calendar import default_calendar
from shared.clock import SHANGHAI
from shared.db.migrations import service_migrations, upgrade
from shared.events.contracts import Event, SupervisorAppointed
from shared.events.envelope import Envelope
from shared.events.kafka import ClientCancelled, bounded
from shared.events.topics import SELECTION_ASSIGNMENTS
from tests.support.apps import bearer, running, service_settings
from tests.support.signing import publish as signed_publish

ADMIN = bearer("bureau_admin", subject="bureau-1")


async def fake_contact(supervisor_id: uuid.UUID) -> dict:
    return {"name": "测试", "phone": "13800000000"}


def fake_phone(supervisor_id: uuid.UUID) -> str:
    """The fake registry's phone of a person: 139 + 8 digits of the id (one per person)."""
    return "139" + f"{supervisor_id.int % 10**8:08d}"


async def fake_masked_contact(ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    return {sid: fake_phone(sid)[:3] + "****" + fake_phone(sid)[-4:] for sid in ids}


@pytest.fixture(scope="session")
def selection_migrated(database_url: str) -> None:
    upgrade(service_migrations("selection"), database_url)


def selection_settings(settings_env, **overrides) -> SelectionSettings:
    """Test settings: the reveal timeout job looks often; "unreachable" needs attempts 1 s apart (not 10 min)."""
    overrides = {"outbox_poll_seconds": 0.2, "draw_job_seconds": 0.2, "unreachable_min_gap_seconds": 1,
                 **overrides}
    return service_settings(settings_env, SelectionSettings, **overrides)


@pytest.fixture(scope="session")
async def svc(selection_migrated, settings_env):
    """(app, client) of the one selection app (with its consumer) of the whole test session.

    One consumer in the `selection` group for the whole session: starting and stopping apps per
    module made the dev broker rebalance the group, and events waited for the dead member.
    """
    app = build(selection_settings(settings_env))
    app.state.contact_lookup = fake_contact
    app.state.masked_contact_lookup = fake_masked_contact
    async with running(app) as pair:
        yield pair


@contextlib.contextmanager
def overridden_settings(app, **overrides):
    """Run the HTTP side of the app with other settings for a while (e.g. a smaller yearly cap)."""
    original = app.state.settings
    app.state.settings = original.model_copy(update=overrides)
    try:
        yield app.state.settings
    finally:
        app.state.settings = original


class Collector:
    """Every envelope on selection.assignments since the fixture started (read from the beginning)."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    def of(self, request_id, type_: str | None = None) -> list[Envelope]:
        return [e for e in self.envelopes if e.subject == str(request_id) and (type_ is None or e.type == type_)]

    async def wait(self, request_id, type_: str, n: int = 1, timeout: float = 30) -> list[Envelope]:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            found = self.of(request_id, type_)
            if len(found) >= n:
                return found
            await asyncio.sleep(0.1)
        raise AssertionError(f"{type_} x{n} for {request_id} not received: {[e.type for e in self.of(request_id)]}")


@pytest.fixture(scope="session")
async def events(kafka_bootstrap) -> AsyncIterator[Collector]:
    collector = Collector()
    consumer = AIOKafkaConsumer(SELECTION_ASSIGNMENTS, bootstrap_servers=kafka_bootstrap,
                                group_id="casework-test-" + uuid.uuid4().hex[:8], auto_offset_reset="earliest",
                                enable_auto_commit=False, fetch_max_wait_ms=100)
    await consumer.start()

    async def run() -> None:
        async for record in consumer:
            with contextlib.suppress(Exception):
                collector.envelopes.append(Envelope.from_bytes(record.value))

    task = asyncio.create_task(run())
    yield collector
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    # at the session's end the broker may be gone first: aiokafka's stop() then re-raises the cancellation of its
    # own fetch tasks; bounded() makes that a ClientCancelled, which a test consumer's stop may end with
    with contextlib.suppress(ClientCancelled, TimeoutError):
        await bounded(consumer.stop(), 30, "the test consumer's stop")


@pytest.fixture(scope="session")
async def producer(kafka_bootstrap) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=False)
    await p.start()
    yield p
    await p.stop()


async def publish(producer: AIOKafkaProducer, event: Event) -> Envelope:
    """Publish an event as its producer's outbox relay would (key = subject, signed by the topic's publisher)."""
    return await signed_publish(producer, event)


def appointed(district: str, specialty: str, *, eligible: bool = True) -> SupervisorAppointed:
    return SupervisorAppointed(
        supervisor_id=uuid.uuid4(), name="张三", gender="female", district=district, specialties=[specialty],
        employer="某单位", recommending_body="某机关", term_start=datetime(2025, 1, 1).date(),
        term_end=datetime(2029, 12, 31).date(), certificate_no="C1", work_card_no="W1", eligible=eligible)


async def appoint(app, district: str, specialty: str, n: int, *, eligible: bool = True) -> list[uuid.UUID]:
    """Feed the pool by calling the consumer handler directly, in one transaction."""
    ids = []
    async with app.state.db.transaction() as session:
        for _ in range(n):
            event = appointed(district, specialty, eligible=eligible)
            await pool.on_appointed(session, event, None)
            ids.append(event.supervisor_id)
    return ids


def activity_window(working_days_ahead: int = 8, *, hour: int = 9, hours: int = 3,
                    requested_at: datetime | None = None) -> tuple[datetime, datetime, datetime]:
    """(requested_at, starts_at, ends_at) with the activity that many working days ahead (Shanghai)."""
    requested_at = requested_at or datetime.now(UTC)
    day = default_calendar.add_working_days(requested_at.astimezone(SHANGHAI).date(), working_days_ahead).value
    starts = datetime.combine(day, time(hour), tzinfo=SHANGHAI)
    return requested_at, starts, starts + timedelta(hours=hours)


def request_body(district: str, specialty: str, *, seats: int = 3, working_days_ahead: int = 8, hour: int = 9,
                 **extra) -> dict:
    """A request as a bureau user records it (paper or phone): POST /requests."""
    _, starts, ends = activity_window(working_days_ahead, hour=hour)
    body = {
        "request_id": str(uuid.uuid4()), "activity_id": str(uuid.uuid4()), "case_ref": "威检刑诉〔2026〕1号",
        "activity_type": "public_hearing", "office": "威海市人民检察院", "district": district,
        "starts_at": starts.isoformat(), "ends_at": ends.isoformat(), "place": "听证室",
        "seats": seats, "specialty": specialty,
    }
    body.update(extra)
    return body


async def new_request(svc, district: str, specialty: str, *, seats_local: int | None = None,
                      beacon: str = "2026年第100期 01 02 03 04 05 06 07", **kw) -> dict:
    """Record a request as the bureau does and draw it: POST /requests, then the beacon's value.

    `seats_local` sets the bureau's local share for this request (ceil(seats × share) = seats_local).
    """
    app, client = svc
    body = request_body(district, specialty, **kw)
    share = app.state.settings.local_share if seats_local is None else seats_local / body["seats"]
    with overridden_settings(app, local_share=share):
        response = await client.post("/requests", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    view = response.json()
    assert view["status"] == "accepted" and view["beacon"]["value"] is None, view
    drawn = await client.put(f"/requests/{view['request_id']}/beacon", json={"value": beacon}, headers=ADMIN)
    assert drawn.status_code == 200, drawn.text
    return drawn.json()


def attempts_for(outcome: str, *, gap_seconds: float = 1.0) -> list[dict]:
    """Evidence a clerk records (DRAW.md "Contact"): one call now, or for "unreachable" two calls gap apart."""
    now = datetime.now(UTC)
    if outcome == "unreachable":
        return [{"at": (now - timedelta(seconds=gap_seconds)).isoformat(), "channel": "phone"},
                {"at": now.isoformat(), "channel": "sms"}]
    return [{"at": now.isoformat(), "channel": "phone"}]


def drawable(receipt: dict) -> dict[str, dict]:
    """id → pool row of everyone the draw could pick (both groups), recomputed from the receipt."""
    members = alg.members_by_group(receipt["snapshot"], receipt["buckets"], receipt["params"])
    return {row["id"]: row for group in members.values() for row in group}


def excluded_for(receipt: dict, reason: str) -> set[str]:
    return {sid for sid, reasons in receipt["params"]["excluded"].items() if reason in reasons}


def window_of(view: dict, group: str | None = None) -> list[str]:
    """Pending candidates, in draw order."""
    return [c["supervisor_id"] for c in view["candidates"]
            if c["status"] == "pending" and (group is None or c["group"] == group)]

"""SMS through the Tencent Cloud SMS adapter (TC3-HMAC-SHA256 signed with httpx), against a local stand-in that
checks every signature: a gateway that times out, answers an error or a 500 is retried with backoff and recorded,
nothing is lost and the inbox message is there all along; quiet hours hold non-urgent SMS (21:00–08:00 Shanghai),
urgent ones go at once."""

import contextlib
import random
import re
import uuid
from datetime import UTC, datetime, timedelta

from services.notify import rules
from services.notify import service as svc
from services.notify.sms import TencentSms
from shared import clock
from tests.integration.notify.conftest import deliveries, supervisor_token
from tests.integration.notify.sms_standin import SECRET_ID, SECRET_KEY
from tests.integration.notify.test_inbox import drawn, inbox, request_known, requested, until_in_inbox
from tests.support.eventing import wait_until
from tests.support.signing import publish

FULL_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{16}[\dXx](?![0-9A-Za-z])")


@contextlib.contextmanager
def gateway_in_use(app, gateway, *, secret_key: str = SECRET_KEY, **settings):
    """The app's SMS go to the stand-in (Tencent adapter) with quick retries while the test runs."""
    sender, original = app.state.sms_sender, app.state.settings
    app.state.sms_sender = TencentSms(endpoint=gateway.endpoint, region="ap-guangzhou", secret_id=SECRET_ID,
                                      secret_key=secret_key, sdk_app_id="1400000001", sign_name="威海市司法局",
                                      timeout=0.5)
    app.state.settings = original.model_copy(update={"sms_template_id": "2000001", "sms_backoff_base_seconds": 0.2,
                                                     "sms_backoff_cap_seconds": 0.5, **settings})
    try:
        yield
    finally:
        app.state.sms_sender, app.state.settings = sender, original


async def drawn_soon(app, producer, phone: str) -> tuple[uuid.UUID, dict]:
    """A supervisor drawn for an activity tomorrow (urgent: no quiet hours), with this phone; their message."""
    supervisor_id = uuid.uuid4()
    request = requested(starts_in=timedelta(hours=20))
    await publish(producer, request)
    await request_known(app, request)
    event = drawn(request, supervisor_id).model_copy(update={"phone": phone})
    await publish(producer, event)
    [item] = await until_in_inbox(app.state.client, supervisor_token(supervisor_id))
    return supervisor_id, item


def a_phone() -> str:
    return "139" + f"{random.randrange(10**8):08d}"


async def sms_of(app, message_id: str):
    return {d.channel: d for d in await deliveries(app, message_id)}["sms"]


async def test_sms_goes_signed_to_the_gateway_and_is_recorded_sent(notify, producer, sms_gateway) -> None:
    app, client = notify
    app.state.client = client
    phone = a_phone()
    with gateway_in_use(app, sms_gateway):
        _, item = await drawn_soon(app, producer, phone)
        async def sent() -> bool:
            return (await sms_of(app, item["id"])).status == "sent"
        await wait_until(sent, timeout=30)
    delivery = await sms_of(app, item["id"])
    assert (delivery.provider, delivery.attempts) == ("tencent", 1) and delivery.provider_ref.startswith("standin-")
    [request] = [r for r in sms_gateway.received if r["PhoneNumberSet"] == [f"+86{phone}"]]
    assert (request["SmsSdkAppId"], request["SignName"], request["TemplateId"]) == ("1400000001", "威海市司法局",
                                                                                    "2000001")
    assert request["TemplateParamSet"][0] == item["title"] and "第一听证室" in request["TemplateParamSet"][1]
    assert not any(FULL_ID_NUMBER.search(p) for p in request["TemplateParamSet"])
    assert sms_gateway.refused == []


async def test_a_gateway_that_times_out_is_retried_with_backoff_and_nothing_is_lost(notify, producer,
                                                                                  sms_gateway) -> None:
    app, client = notify
    app.state.client = client
    phone = a_phone()
    sms_gateway.mode = "timeout"
    with gateway_in_use(app, sms_gateway):
        supervisor_id, item = await drawn_soon(app, producer, phone)
        async def retried() -> bool:
            d = await sms_of(app, item["id"])
            return d.status == "retrying" and d.attempts >= 2
        await wait_until(retried, timeout=30)
        delivery = await sms_of(app, item["id"])
        assert delivery.last_error.startswith("timeout") and delivery.next_attempt_at is not None
        # the in-app message was delivered all along
        assert (await inbox(client, supervisor_token(supervisor_id)))["total"] == 1
        sms_gateway.mode = "ok"
        async def sent() -> bool:
            return (await sms_of(app, item["id"])).status == "sent"
        await wait_until(sent, timeout=30)
    delivery = await sms_of(app, item["id"])
    assert delivery.attempts >= 3 and delivery.last_error is None
    assert len([r for r in sms_gateway.received if r["PhoneNumberSet"] == [f"+86{phone}"]]) == delivery.attempts


async def test_gateway_errors_and_500s_are_retried_then_failed_after_the_last_attempt(notify, producer,
                                                                                     sms_gateway) -> None:
    app, client = notify
    app.state.client = client
    for mode, error in (("error", "LimitExceeded.PhoneNumberDailyLimit"), ("http500", "HTTP 500")):
        sms_gateway.mode = mode
        with gateway_in_use(app, sms_gateway, sms_max_attempts=3):
            supervisor_id, item = await drawn_soon(app, producer, a_phone())
            async def failed(message_id=item["id"]) -> bool:
                return (await sms_of(app, message_id)).status == "failed"
            await wait_until(failed, timeout=30)
        delivery = await sms_of(app, item["id"])
        assert delivery.attempts == 3 and error in delivery.last_error, (mode, delivery)
        assert {d.channel: d.status for d in await deliveries(app, item["id"])}["inbox"] == "sent"
        assert (await inbox(client, supervisor_token(supervisor_id)))["total"] == 1


async def test_the_stand_in_refuses_a_wrong_signature(notify, producer, sms_gateway) -> None:
    app, client = notify
    app.state.client = client
    with gateway_in_use(app, sms_gateway, secret_key="not-the-secret-key"):
        _, item = await drawn_soon(app, producer, a_phone())
        async def refused() -> bool:
            return (await sms_of(app, item["id"])).status == "retrying"
        await wait_until(refused, timeout=30)
    assert "AuthFailure.SignatureFailure" in (await sms_of(app, item["id"])).last_error
    assert "signature mismatch" in sms_gateway.refused


async def test_quiet_hours_hold_non_urgent_sms_until_eight_and_urgent_ones_go(notify) -> None:
    app, _ = notify
    supervisor_id = uuid.uuid4()
    # a day ahead of the real clock, so that the app's own dispatch job (real clock) never finds it due
    day = clock.today() + timedelta(days=30)
    late_evening = datetime(day.year, day.month, day.day, 22, 30, tzinfo=clock.SHANGHAI)
    eight = datetime.combine(day + timedelta(days=1), datetime.min.time().replace(hour=8), tzinfo=clock.SHANGHAI)
    calm = rules.subsidy_approved(line_id=uuid.uuid4(), supervisor_id=supervisor_id, amount_fen=5000)
    soon = rules.supervisor_drawn(request_id=uuid.uuid4(), supervisor_id=supervisor_id, activity=None,
                                  now=late_evening)
    soon = rules.Draft(**{**soon.__dict__, "urgent": True})
    with clock.frozen(late_evening):
        async with app.state.db.transaction() as session:
            calm_id, = await svc.record(session, [calm], key_prefix=f"test:{uuid.uuid4()}", source="finance",
                                        settings=app.state.settings, cipher=app.state.cipher, phone=a_phone())
            soon_id, = await svc.record(session, [soon], key_prefix=f"test:{uuid.uuid4()}", source="selection",
                                        settings=app.state.settings, cipher=app.state.cipher, phone=a_phone())
        held, queued = await sms_of(app, calm_id), await sms_of(app, soon_id)
    assert held.status == "held"
    assert held.next_attempt_at == eight.astimezone(UTC)
    assert queued.status == "queued"
    # just before eight it still waits; at eight it goes (the dispatch job of any replica, or this call). Each
    # dispatch takes a batch of what is due: drain them all (the session's other SMS fall due in the future too)
    async def drain() -> None:
        for _ in range(100):
            outcome = await svc.dispatch_sms(app.state.db, sender=app.state.sms_sender, settings=app.state.settings,
                                             cipher=app.state.cipher, lookup_phone=app.state.phone_lookup)
            if not any(outcome.values()):
                return
        raise AssertionError("dispatch never drained the due SMS")

    with clock.frozen(eight - timedelta(minutes=1)):
        await drain()
        assert (await sms_of(app, calm_id)).status == "held"
    with clock.frozen(eight):
        await drain()
        async def sent() -> bool:  # another dispatcher may hold its lease on it a moment
            return (await sms_of(app, calm_id)).status == "sent"
        await wait_until(sent, timeout=30)

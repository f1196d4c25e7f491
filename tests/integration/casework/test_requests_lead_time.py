"""Supervision requests: lead time answered at once on the server's clock (R10.1, R10.2), bounded activity times,
one live request per activity (also under concurrency), cancellation."""

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from services.casework.models import activity, platform, supervision_request
from shared.lead_time import check_lead_time
from tests.support.casework_helpers import (
    activity_body,
    activity_window,
    during,
    proc,
    staffed_activity,
    supervisor,
    today,
)

SHORT = {"reason": "犯罪嫌疑人羁押期限即将届满，须尽快听证"}


async def _activity(client, working_days_ahead: int) -> dict:
    response = await client.post("/activities", headers=proc(), json=activity_body(working_days_ahead))
    assert response.status_code == 201, response.text
    return response.json()


async def _ask(client, activity_id: str, body: dict | None = None, headers: dict | None = None):
    return await client.post(f"/activities/{activity_id}/supervision-requests", headers=headers or proc(),
                             json=body or {"seats": 2})


async def _stored(app, activity_id: str) -> tuple[int, int]:
    """(requests stored, SupervisionRequested rows in the outbox) for an activity."""
    async with app.state.db.transaction() as session:
        requests = await session.scalar(select(func.count()).select_from(supervision_request).where(
            supervision_request.c.activity_id == uuid.UUID(activity_id)))
        events = await session.scalar(text(
            "SELECT count(*) FROM casework.outbox_event WHERE event_type = 'SupervisionRequested' "
            "AND envelope #>> '{data,activity_id}' = :a").bindparams(a=activity_id))
    return requests, events


async def _outbox(app, subject: str, event_type: str) -> list[dict]:
    outbox = platform.outbox
    async with app.state.db.transaction() as session:
        return list((await session.execute(select(outbox.c.envelope).where(
            outbox.c.key == subject, outbox.c.event_type == event_type).order_by(outbox.c.id))).scalars())


def _day(act: dict) -> date:
    return datetime.fromisoformat(act["starts_at"]).date()


async def test_r10_1_request_answers_422_at_once_with_the_earliest_date(cw):
    app, client = cw
    act = await _activity(client, 2)
    response = await _ask(client, act["id"], headers={**proc(), "Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    expected = check_lead_time(app.state.calendar, notified_on=today(), activity_on=_day(act), short_notice=False)
    assert problem["code"] == "R10.1" and problem["title"] == "提前通知不足五个工作日"
    assert "五个工作日" in problem["detail"]
    assert problem["earliest_allowed_date"] == expected.earliest_allowed_date.isoformat()
    assert date.fromisoformat(problem["earliest_allowed_date"]) > _day(act)
    assert problem["calendar_provisional"] is expected.provisional
    # nothing stored, nothing sent
    assert await _stored(app, act["id"]) == (0, 0)


async def test_r10_2_short_notice_waits_for_the_bureau(cw):
    app, client = cw
    act = await _activity(client, 4)  # 3 or 4 working days in [today, activity day)
    without = await _ask(client, act["id"])
    assert without.status_code == 422 and without.json()["code"] == "R10.1"
    assert "R10.2" in without.json()["detail"]  # it says short notice is possible with the bureau's consent
    assert await _stored(app, act["id"]) == (0, 0)
    response = await _ask(client, act["id"], {"seats": 2, "short_notice": SHORT})
    assert response.status_code == 201, response.text
    view = response.json()
    assert view["status"] == "awaiting_consent" and view["short_notice"] == SHORT
    assert view["calendar_provisional"] is False
    [envelope] = await _outbox(app, view["request_id"], "SupervisionRequested")
    assert envelope["data"]["short_notice"] == SHORT
    listed = (await client.get(f"/activities/{act['id']}/supervision-requests", headers=proc())).json()
    assert [r["status"] for r in listed] == ["awaiting_consent"]
    # under three working days even short notice is refused (R10.2)
    tomorrow = await _activity(client, 1)
    refused = await _ask(client, tomorrow["id"], {"seats": 1, "short_notice": SHORT})
    assert refused.status_code == 422 and refused.json()["code"] == "R10.2"
    assert refused.json()["title"] == "提前通知不足三个工作日"
    expected = check_lead_time(app.state.calendar, notified_on=today(), activity_on=_day(tomorrow),
                               short_notice=True)
    assert refused.json()["earliest_allowed_date"] == expected.earliest_allowed_date.isoformat()
    assert await _stored(app, tomorrow["id"]) == (0, 0)


async def test_r10_1_requested_at_is_the_server_clock(cw):
    app, client = cw
    act = await _activity(client, 6)
    claimed = await _ask(client, act["id"], {"seats": 1, "requested_at": "2020-01-01T00:00:00Z"})
    assert claimed.status_code == 422 and claimed.json()["code"] == "validation_error"
    assert [e["loc"][-1] for e in claimed.json()["errors"]] == ["requested_at"]
    before = datetime.now(UTC)
    response = await _ask(client, act["id"], {"seats": 1})
    assert response.status_code == 201, response.text
    [envelope] = await _outbox(app, response.json()["request_id"], "SupervisionRequested")
    sent = datetime.fromisoformat(envelope["data"]["requested_at"])
    assert before - timedelta(seconds=1) <= sent <= datetime.now(UTC) + timedelta(seconds=1)
    assert datetime.fromisoformat(response.json()["requested_at"]) == sent


@pytest.mark.parametrize("field", ["starts_at", "ends_at"])
async def test_r10_1_activity_time_out_of_range_is_422_never_500(cw, field):
    _, client = cw
    body = activity_body(6)
    body[field] = "9999-12-31T23:00:00-12:00"  # past 9999-12-31 in UTC
    response = await client.post("/activities", headers=proc(), json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    assert response.json()["errors"][0]["loc"][-1] == field
    body[field] = "1999-12-31T23:00:00+08:00"
    assert (await client.post("/activities", headers=proc(), json=body)).status_code == 422


async def test_r44_1_activity_before_the_measures_is_refused_at_once(cw):
    app, client = cw
    response = await client.post("/activities", headers=proc(), json=activity_body(
        start_day=date(2024, 11, 29)))
    assert response.status_code == 201, response.text
    refused = await _ask(client, response.json()["id"])
    assert refused.status_code == 422 and refused.json()["code"] == "R44.1"
    assert await _stored(app, response.json()["id"]) == (0, 0)


async def test_one_live_request_per_activity_even_concurrently(cw):
    app, client = cw
    act = await _activity(client, 6)
    answers = await asyncio.gather(*(_ask(client, act["id"], {"seats": 1}) for _ in range(6)))
    assert sorted(a.status_code for a in answers) == [201] + [409] * 5, [a.text for a in answers]
    assert await _stored(app, act["id"]) == (1, 1)
    # the database refuses a second live request by itself (partial unique index), whatever the code does
    with pytest.raises(IntegrityError, match="uq_supervision_request_live_activity"):
        async with app.state.db.transaction() as session:
            await session.execute(insert(supervision_request).values(
                id=uuid.uuid4(), activity_id=uuid.UUID(act["id"]), seats=1, requested_at=datetime.now(UTC),
                requested_by="sql", status="accepted"))
    # ...but not beside closed ones
    async with app.state.db.transaction() as session:
        for status in ("refused", "cancelled"):
            await session.execute(insert(supervision_request).values(
                id=uuid.uuid4(), activity_id=uuid.UUID(act["id"]), seats=1, requested_at=datetime.now(UTC),
                requested_by="sql", status=status))


async def test_cancel_frees_the_activity_for_a_new_request(cw, producer):
    app, client = cw
    staffed = await staffed_activity(client, producer, n=2)
    aid, rid = staffed["activity_id"], staffed["request_id"]
    material = await client.post(f"/activities/{aid}/materials", headers=proc(),
                                 json={"title": "听证材料", "text": "案情摘要。"})
    assert material.status_code == 201
    sid = staffed["supervisors"][0]
    assert (await client.get(f"/activities/{aid}/materials", headers=supervisor(sid))).status_code == 200
    url = f"/supervision-requests/{rid}/cancel"
    other = proc(district="文登区", office="文登区人民检察院")
    assert (await client.post(url, headers=other, json={"reason": "撤回"})).status_code == 403
    assert (await client.post(url, headers=proc(), json={"reason": ""})).status_code == 422
    assert (await client.post(url, headers=proc(), json={"reason": "x" * 501})).status_code == 422
    key = {**proc(), "Idempotency-Key": uuid.uuid4().hex}
    body = {"reason": "案件已撤回，无需听证"}
    first = await client.post(url, headers=key, json=body)
    assert first.status_code == 200, first.text
    view = first.json()
    assert view["status"] == "cancelled"
    assert view["cancellation"]["reason"] == "案件已撤回，无需听证"
    assert view["cancellation"]["by"] == "proc-威海市人民检察院"
    # the roster stays listed as it was, with the request cancelled
    assert len(view["roster"]) == 2 and view["staffing"] == {"confirmed": 2, "seats": 2}
    replay = await client.post(url, headers=key, json=body)
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == view
    again = await client.post(url, headers=proc(), json=body)
    assert again.status_code == 409 and again.json()["code"] == "request_closed"
    [event] = await _outbox(app, rid, "SupervisionCancelled")
    assert event["data"]["activity_id"] == aid and event["data"]["reason"] == body["reason"]
    assert event["data"]["cancelled_by"] == "proc-威海市人民检察院"
    async with app.state.db.transaction() as session:
        audits = await session.scalar(select(func.count()).select_from(platform.audit).where(
            platform.audit.c.subject == f"request:{rid}", platform.audit.c.action == "supervision_request.cancelled"))
    assert audits == 1
    # the withdrawn request's supervisors take no part any more: no materials, phones masked
    assert (await client.get(f"/activities/{aid}/materials", headers=supervisor(sid))).status_code == 403
    shown = (await client.get(f"/supervision-requests/{rid}", headers=proc())).json()
    assert all("*" in m["phone"] for m in shown["roster"])
    # and the activity may ask again
    fresh = await _ask(client, aid, {"seats": 1})
    assert fresh.status_code == 201 and fresh.json()["status"] == "requested"
    assert [r["status"] for r in (await client.get(f"/activities/{aid}/supervision-requests",
                                                   headers=proc())).json()] == ["cancelled", "requested"]


async def test_cancel_refused_once_the_activity_began(cw):
    app, client = cw
    act = await _activity(client, 6)
    rid = (await _ask(client, act["id"])).json()["request_id"]
    async with app.state.db.transaction() as session:  # time passes: the activity began an hour ago
        begun = datetime.now(UTC) - timedelta(hours=1)
        await session.execute(update(activity).where(activity.c.id == uuid.UUID(act["id"])).values(
            starts_at=begun, ends_at=begun + timedelta(hours=3)))
    response = await client.post(f"/supervision-requests/{rid}/cancel", headers=proc(), json={"reason": "撤回"})
    assert response.status_code == 409 and response.json()["code"] == "activity_started"
    assert (await client.get(f"/supervision-requests/{rid}", headers=proc())).json()["status"] == "requested"
    assert await _outbox(app, rid, "SupervisionCancelled") == []


async def test_activity_cancel_withdraws_its_request_even_after_the_start_and_closes_it(cw, producer):
    app, client = cw
    staffed = await staffed_activity(client, producer, n=2)
    aid, rid, sid = staffed["activity_id"], staffed["request_id"], staffed["supervisors"][0]
    url = f"/activities/{aid}/cancel"
    assert (await client.post(url, headers=proc(), json={"reason": " "})).status_code == 422
    other = proc(district="文登区", office="文登区人民检察院")
    assert (await client.post(url, headers=other, json={"reason": "取消"})).status_code == 403
    with during(staffed["activity"], after=timedelta(minutes=10)):  # called off on the day: it did not take place
        response = await client.post(url, headers=proc(), json={"reason": "当事人撤回申诉，听证取消"})
    assert response.status_code == 200, response.text
    act = response.json()
    assert act["status"] == "cancelled" and act["cancellation"]["reason"] == "当事人撤回申诉，听证取消"
    # the live request is withdrawn with it: selection frees the bookings (served counts only what took place)
    [event] = await _outbox(app, rid, "SupervisionCancelled")
    assert event["data"]["activity_cancelled"] is True and event["data"]["superseded_by"] is None
    assert event["data"]["reason"] == "当事人撤回申诉，听证取消"
    assert (await client.get(f"/supervision-requests/{rid}", headers=proc())).json()["status"] == "cancelled"
    # and nothing more happens on it
    again = await client.post(url, headers=proc(), json={"reason": "再取消"})
    assert again.status_code == 409 and again.json()["code"] == "activity_cancelled"
    ask = await _ask(client, aid)
    assert ask.status_code == 409 and ask.json()["code"] == "activity_cancelled"
    with during(staffed["activity"]):
        assert (await client.post(f"/activities/{aid}/hold", headers=proc())).json()["code"] == "activity_cancelled"
        signed = await client.post(f"/activities/{aid}/feedback-form/signatures", headers=supervisor(sid), json={})
        assert signed.status_code == 403  # no longer a participant
    assert len(await _outbox(app, rid, "SupervisionCancelled")) == 1


async def test_activity_cancel_refused_once_a_supervisor_signed(cw, producer):
    _, client = cw
    staffed = await staffed_activity(client, producer, n=1)
    aid, sid = staffed["activity_id"], staffed["supervisors"][0]
    await client.put(f"/activities/{aid}/opinions/{sid}", headers=proc(), json={"text": "同意"})
    with during(staffed["activity"]):
        assert (await client.post(f"/activities/{aid}/feedback-form/signatures", headers=supervisor(sid),
                                  json={})).status_code == 200
    for url, body in ((f"/activities/{aid}/cancel", {"reason": "取消"}),
                      (f"/activities/{aid}/reschedule", {"reason": "改期", **_window(8)})):
        response = await client.post(url, headers=proc(), json=body)
        assert response.status_code == 409 and response.json()["code"] == "R17.1", response.text


def _window(working_days_ahead: int) -> dict:
    starts, ends = activity_window(working_days_ahead, hour=14)
    return {"starts_at": starts.isoformat(), "ends_at": ends.isoformat()}


async def test_reschedule_cancels_the_request_and_asks_again_for_the_new_time_keeping_the_link(cw, producer):
    app, client = cw
    staffed = await staffed_activity(client, producer, n=2)
    aid, old = staffed["activity_id"], staffed["request_id"]
    # a new time too close: refused as a whole (R10.1), nothing changes
    close = await client.post(f"/activities/{aid}/reschedule", headers=proc(),
                              json={"reason": "听证室冲突", **_window(2)})
    assert close.status_code == 422 and close.json()["code"] == "R10.1"
    assert close.json()["earliest_allowed_date"]
    assert (await client.get(f"/supervision-requests/{old}", headers=proc())).json()["status"] == "staffed"
    unchanged = (await client.get(f"/activities/{aid}", headers=proc())).json()
    assert datetime.fromisoformat(unchanged["starts_at"]) == datetime.fromisoformat(staffed["activity"]["starts_at"])
    assert await _outbox(app, old, "SupervisionCancelled") == []
    new_window = _window(8)
    response = await client.post(f"/activities/{aid}/reschedule", headers=proc(),
                                 json={"reason": "听证室冲突", "place": "第二听证室", **new_window})
    assert response.status_code == 200, response.text
    body = response.json()
    new = body["request"]["request_id"]
    assert body["cancelled_request_id"] == old and body["request"]["rescheduled_from"] == old
    assert body["request"]["status"] == "requested" and body["request"]["seats"] == 2
    assert datetime.fromisoformat(body["activity"]["starts_at"]) == datetime.fromisoformat(new_window["starts_at"])
    assert body["activity"]["place"] == "第二听证室" and body["activity"]["status"] == "open"
    assert datetime.fromisoformat(body["previous_starts_at"]) == datetime.fromisoformat(
        staffed["activity"]["starts_at"])
    [cancelled] = await _outbox(app, old, "SupervisionCancelled")
    assert cancelled["data"]["superseded_by"] == new and cancelled["data"]["reason"] == "改期：听证室冲突"
    [requested] = await _outbox(app, new, "SupervisionRequested")
    assert requested["data"]["rescheduled_from"] == old
    assert datetime.fromisoformat(requested["data"]["starts_at"]) == datetime.fromisoformat(new_window["starts_at"])
    old_view = (await client.get(f"/supervision-requests/{old}", headers=proc())).json()
    assert old_view["status"] == "cancelled" and old_view["superseded_by"] == new
    listed = (await client.get(f"/activities/{aid}/supervision-requests", headers=proc())).json()
    assert [r["status"] for r in listed] == ["cancelled", "requested"]


async def test_reschedule_without_a_request_only_moves_the_time(cw):
    _, client = cw
    act = await _activity(client, 6)
    response = await client.post(f"/activities/{act['id']}/reschedule", headers=proc(),
                                 json={"reason": "检察官出差", **_window(2)})
    assert response.status_code == 200, response.text
    assert response.json()["request"] is None and response.json()["cancelled_request_id"] is None
    swapped = {"starts_at": _window(3)["ends_at"], "ends_at": _window(3)["starts_at"]}
    bad = await client.post(f"/activities/{act['id']}/reschedule", headers=proc(), json={"reason": "x", **swapped})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_window"

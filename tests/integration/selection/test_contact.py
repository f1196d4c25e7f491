"""Contact in draw order (R12.1), replacement (R14.2), roster events, re-draw and shortfall (R14.1), eligibility."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select, text

from services.selection.app import registry_lookups
from services.selection.draw import algorithm as alg
from services.selection.models import booking
from shared.events.contracts import EligibilityChanged, SupervisorDismissed
from tests.integration.selection.conftest import (
    ADMIN,
    appoint,
    appointed,
    attempts_for,
    drawable,
    excluded_for,
    fake_contact,
    new_request,
    overridden_settings,
    publish,
    request_body,
    selection_settings,
    window_of,
)
from tests.support.apps import bearer
from tests.support.eventing import wait_until


async def contact(client, view, supervisor_id, outcome, reason=None, expect=200, attempts=None) -> dict:
    """A clerk records an outcome with its evidence (one call; "unreachable": two calls 1 s apart)."""
    if outcome == "unreachable" and attempts is None:
        await asyncio.sleep(1.1)  # both attempts fall after the person entered the window
    body = {"supervisor_id": supervisor_id, "outcome": outcome,
            "attempts": attempts_for(outcome) if attempts is None else attempts}
    if reason:
        body["reason"] = reason
    response = await client.post(f"/draws/{view['draws'][-1]['draw_id']}/contacts", json=body, headers=ADMIN)
    assert response.status_code == expect, response.text
    return response.json()


async def order_of(client, view, group="local") -> list[str]:
    receipt = (await client.get(f"/draws/{view['draws'][0]['draw_id']}/receipt", headers=ADMIN)).json()
    return receipt["order"][group]


async def test_r12_1_r14_2_contact_in_order_asked_decline_replaced_confirm_staffed_withdraw_released(
        svc, events, unique_name):
    app, client = svc
    await appoint(app, unique_name, unique_name, 5)
    view = await new_request(svc, unique_name, unique_name, seats=2, seats_local=2)
    order = await order_of(client, view)
    assert window_of(view, "local") == order[:2]

    # R12.1: the third in order cannot be recorded while the first two are pending
    refused = await contact(client, view, order[2], "confirmed", expect=409)
    assert refused["code"] == "R12.1"

    # R14.2: a decliner is replaced by the next in order
    view = await contact(client, view, order[0], "declined", reason="出差")
    assert window_of(view, "local") == order[1:3]
    view = await contact(client, view, order[1], "confirmed")
    view = await contact(client, view, order[2], "unreachable")
    assert window_of(view, "local") == [order[3]]
    view = await contact(client, view, order[3], "confirmed")
    assert view["status"] == "staffed" and view["roster"] == [order[1], order[3]]
    again = await contact(client, view, order[3], "confirmed", expect=409)
    assert again["code"] == "contact_already_recorded"

    drawn = await events.wait(view["request_id"], "SupervisorDrawn", n=2)
    first = next(e for e in drawn if e.data["supervisor_id"] == order[1])
    assert first.data["name"] == "张三" and first.data["phone"] == "13800000000"
    assert first.data["group"] == "local" and first.data["draw_order"] == 2
    staffed = await events.wait(view["request_id"], "SupervisionStaffed")
    assert staffed[0].data["supervisor_ids"] == [order[1], order[3]]
    assert staffed[0].data["receipt_hash"] == view["draws"][-1]["receipt_hash"]

    # a confirmed supervisor withdraws: released, the next in order is in, the roster event follows later
    view = await contact(client, view, order[1], "declined", reason="生病")
    assert view["status"] == "drawn" and window_of(view, "local") == [order[4]]
    released = await events.wait(view["request_id"], "SupervisorReleased")
    assert released[0].data["reason"] == "withdrawn" and released[0].data["replaced_by"] == order[4]
    view = await contact(client, view, order[4], "confirmed")
    staffed = await events.wait(view["request_id"], "SupervisionStaffed", n=2)
    assert sorted(staffed[-1].data["supervisor_ids"]) == sorted([order[3], order[4]])
    async with app.state.db.transaction() as session:
        active = (await session.scalars(select(booking.c.supervisor_id).where(
            booking.c.request_id == uuid.UUID(view["request_id"]), booking.c.active))).all()
    assert sorted(map(str, active)) == sorted([order[3], order[4]])
    verified = (await client.get(f"/draws/{view['draws'][0]['draw_id']}/verify", headers=ADMIN)).json()
    assert verified["ok"], verified
    # R12.1: each person was asked once, when their turn came: the first two at the draw, then one per opening
    asked = await events.wait(view["request_id"], "SupervisorAsked", n=5)
    assert [e.data["supervisor_id"] for e in asked] == order[:5]
    assert [e.data["draw_order"] for e in asked] == [1, 2, 3, 4, 5]
    assert {e.data["group"] for e in asked} == {"local"} and set(asked[0].data) == {
        "request_id", "draw_id", "supervisor_id", "group", "draw_order", "asked_at"}  # ids only, no name or phone


async def test_r12_1_supervisors_confirm_and_decline_their_own_assignment(svc, unique_name):
    app, client = svc
    await appoint(app, unique_name, unique_name, 3)
    view = await new_request(svc, unique_name, unique_name, seats=1, seats_local=1)
    order = await order_of(client, view)
    rid = view["request_id"]
    later = bearer("supervisor", subject="s2", supervisor_id=order[1])
    assert (await client.post(f"/assignments/{rid}/confirm", headers=later)).json()["code"] == "R12.1"
    me = bearer("supervisor", subject="s1", supervisor_id=order[0])
    declined = await client.post(f"/assignments/{rid}/decline", json={"reason": "家中有事"}, headers=me)
    assert declined.status_code == 200 and declined.json()["status"] == "declined"
    confirmed = await client.post(f"/assignments/{rid}/confirm", headers=later)
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    mine = (await client.get("/assignments", headers=later)).json()
    assert mine[0]["request_id"] == rid and mine[0]["status"] == "confirmed"
    assert (await client.post("/requests", json=request_body("x", "y"), headers=later)).status_code == 403


async def test_r12_1_registry_down_means_nothing_is_recorded(svc, unique_name):
    app, client = svc
    await appoint(app, unique_name, unique_name, 2)
    view = await new_request(svc, unique_name, unique_name, seats=1, seats_local=1)
    settings = selection_settings({"DATABASE_URL": "x", "KAFKA_BOOTSTRAP_SERVERS": "x",
                                   "FIELD_ENCRYPTION_KEY": "k", "FIELD_HASH_KEY": "k"})
    down, _ = registry_lookups(settings)
    # the real ServiceClient against a registry answering 500 (MockTransport instead of a network)
    from shared.http import ServiceClient

    client_500 = ServiceClient("registry", "http://registry", "t",
                               transport=httpx.MockTransport(lambda request: httpx.Response(500)))
    app.state.contact_lookup = lambda sid: client_500.get_json(f"/supervisors/{sid}/contact")
    try:
        first = window_of(view)[0]
        failed = await contact(client, view, first, "confirmed", expect=503)
        assert failed["code"] == "upstream_unavailable"
        after = (await client.get(f"/requests/{view['request_id']}", headers=ADMIN)).json()
        assert window_of(after) == [first] and after["roster"] == []
    finally:
        app.state.contact_lookup = fake_contact
        await client_500.close()
    assert callable(down)


async def test_r14_1_exhausted_list_redraws_excluding_those_tried_then_reports_the_shortfall(svc, unique_name):
    app, client = svc
    first_pool = await appoint(app, unique_name, unique_name, 2)
    view = await new_request(svc, unique_name, unique_name, seats=2, seats_local=2)
    order = await order_of(client, view)
    view = await contact(client, view, order[0], "declined")
    # the list is exhausted (only order[1] left for 2 seats): round 2 found nobody new
    assert [d["round"] for d in view["draws"]] == [1, 2]
    assert view["shortfall"] == {"local": 1}

    newcomers = await appoint(app, unique_name, unique_name, 3)  # the registry appoints more people
    view = await contact(client, view, order[1], "declined")
    rounds = [d["round"] for d in view["draws"]]
    assert rounds[-1] == 3
    receipt = (await client.get(f"/draws/{view['draws'][-1]['draw_id']}/receipt", headers=ADMIN)).json()
    assert excluded_for(receipt, "tried") == {str(i) for i in first_pool}
    assert set(receipt["order"]["local"]) == {str(i) for i in newcomers}
    assert receipt["round"] == 3
    assert view["shortfall"] == {}
    assert len(window_of(view, "local")) == 2
    assert set(window_of(view, "local")) <= {str(i) for i in newcomers}


async def test_r14_1_a_pool_that_cannot_fill_is_reported_per_group(svc, unique_name):
    app, client = svc
    await appoint(app, unique_name + "-A", unique_name, 1)
    view = await new_request(svc, unique_name + "-A", unique_name, seats=4, seats_local=2)
    assert view["shortfall"] == {"local": 1, "cross": 2}
    assert len(window_of(view)) == 1
    rounds = len(view["draws"])
    # nothing changed: a redraw finds nobody new and reports the same shortfall
    same = (await client.post(f"/requests/{view['request_id']}/redraw", headers=ADMIN)).json()
    assert same["shortfall"] == {"local": 1, "cross": 2}
    # the registry appoints two people in another district: the bureau redraws the cross seats
    newcomers = await appoint(app, unique_name + "-B", unique_name, 2)
    after = (await client.post(f"/requests/{view['request_id']}/redraw", headers=ADMIN)).json()
    assert after["shortfall"] == {"local": 1}
    assert set(window_of(after, "cross")) == {str(i) for i in newcomers}
    assert len(after["draws"]) > rounds + 1
    procuratorate = bearer("procuratorate", subject="p", district=unique_name + "-A")
    assert (await client.post(f"/requests/{view['request_id']}/redraw", headers=procuratorate)).status_code == 403


async def test_r8_1_dismissed_and_ineligible_people_are_never_drawn(svc, producer, unique_name):
    app, client = svc
    events = [appointed(unique_name, unique_name) for _ in range(4)]
    for event in events:
        await publish(producer, event)  # the pool arrives from the registry's events
    dismissed, untrained = events[0].supervisor_id, events[1].supervisor_id
    await publish(producer, SupervisorDismissed(supervisor_id=dismissed, ground=2,
                                                decided_at="2026-01-01T00:00:00Z", permanent_ban=False))
    await publish(producer, EligibilityChanged(supervisor_id=untrained, eligible=False,
                                               reasons=["initial_training_pending"]))

    async def applied() -> bool:
        from services.selection.models import supervisor

        async with app.state.db.transaction() as session:
            rows = (await session.execute(select(supervisor.c.id, supervisor.c.eligible, supervisor.c.dismissed)
                                          .where(supervisor.c.district == unique_name))).all()
        flags = {r.id: (r.eligible, r.dismissed) for r in rows}
        return len(flags) == 4 and flags[dismissed] == (False, True) and flags[untrained][0] is False

    await wait_until(applied, timeout=60)
    view = await new_request(svc, unique_name, unique_name, seats=4, seats_local=4)
    receipt = (await client.get(f"/draws/{view['draws'][0]['draw_id']}/receipt", headers=ADMIN)).json()
    drawn = set(drawable(receipt))
    assert drawn == {str(events[2].supervisor_id), str(events[3].supervisor_id)}
    assert view["shortfall"] == {"local": 2}


async def test_r11_1_nobody_double_booked_or_over_the_yearly_cap(svc, unique_name):
    app, client = svc
    with overridden_settings(app, yearly_cap=2):
        people = await appoint(app, unique_name, unique_name, 2)
        # request A at 09:00-12:00 confirms one person
        a = await new_request(svc, unique_name, unique_name, seats=1, seats_local=1, hour=9)
        booked = window_of(a)[0]
        await contact(client, a, booked, "confirmed")
        # request B overlaps A: the booked person is not even in the snapshot
        b = await new_request(svc, unique_name, unique_name, seats=2, seats_local=2, hour=10)
        receipt_b = (await client.get(f"/draws/{b['draws'][0]['draw_id']}/receipt", headers=ADMIN)).json()
        assert booked not in drawable(receipt_b)
        assert receipt_b["params"]["excluded"][booked] == ["booked"]
        assert b["shortfall"] == {"local": 1}
        # request C does not overlap: booked is drawable, served = 1 in the snapshot
        c = await new_request(svc, unique_name, unique_name, seats=1, seats_local=1, hour=14)
        receipt_c = (await client.get(f"/draws/{c['draws'][0]['draw_id']}/receipt", headers=ADMIN)).json()
        served = {sid: row["served"] for sid, row in drawable(receipt_c).items()}
        assert served[booked] == 1
        assert window_of(c) == [r for r in receipt_c["order"]["local"] if r != booked][:1]  # least served first
        other = window_of(c)[0]
        await contact(client, c, other, "confirmed")
        # both have served 1; cap 2: one more each is allowed, then they leave the pool
        d = await new_request(svc, unique_name, unique_name, seats=2, seats_local=2, hour=16,
                              working_days_ahead=9)
        for sid in window_of(d):
            d = await contact(client, d, sid, "confirmed")
        e = await new_request(svc, unique_name, unique_name, seats=1, seats_local=1, working_days_ahead=10)
        receipt_e = (await client.get(f"/draws/{e['draws'][0]['draw_id']}/receipt", headers=ADMIN)).json()
        assert drawable(receipt_e) == {} and e["shortfall"] == {"local": 1}
        assert {row["served"] for sid, row in _pool_rows(receipt_e).items() if sid in {booked, other}} == {2}
        assert {str(p) for p in people} == {booked, other}


def _pool_rows(receipt: dict) -> dict[str, dict]:
    return {row["id"]: row for rows in receipt["buckets"].values() for row in rows}


async def test_r9_1_a_dismissed_supervisor_leaves_windows_and_rosters_of_activities_not_yet_begun(
        svc, producer, events, unique_name):
    """Confirmed → released and replaced; pending → replaced; an alternate not reached → skipped in the log;
    an activity already begun keeps its roster."""
    from services.selection.models import contact_log, request

    app, client = svc
    await appoint(app, unique_name, unique_name, 8)
    view = await new_request(svc, unique_name, unique_name, seats=2, seats_local=2)
    order = await order_of(client, view)
    view = await contact(client, view, order[0], "confirmed")
    assert window_of(view, "local") == [order[1]]
    # another activity (own people: another specialty), to be begun when its supervisor is dismissed
    await appoint(app, unique_name + "甲", unique_name + "乙", 1)
    begun = await new_request(svc, unique_name + "乙", unique_name + "乙", seats=1, seats_local=0)

    def dismissal(sid: str) -> SupervisorDismissed:
        return SupervisorDismissed(supervisor_id=uuid.UUID(sid), ground=1, decided_at="2026-11-29T00:00:00Z",
                                   permanent_ban=False)

    async def status_of(sid: str) -> str | None:
        current = (await client.get(f"/requests/{view['request_id']}", headers=ADMIN)).json()
        return next((c["status"] for c in current["candidates"] if c["supervisor_id"] == sid), None)

    # confirmed → released, the next in order enters the window (R14.2), casework hears of it
    await publish(producer, dismissal(order[0]))

    async def first_out() -> bool:
        return await status_of(order[0]) == "dismissed"

    await wait_until(first_out, timeout=60)
    view = (await client.get(f"/requests/{view['request_id']}", headers=ADMIN)).json()
    assert view["roster"] == [] and view["status"] == "drawn"
    assert window_of(view, "local") == [order[1], order[2]]
    released = await events.wait(view["request_id"], "SupervisorReleased")
    data = dict(released[0].data)
    receipt = (await client.get(f"/draws/{view['draws'][0]['draw_id']}/receipt", headers=ADMIN)).json()
    assert data.pop("contact_log_head") in {e["hash"] for e in receipt["contact_log"]}  # DRAW.md "Contact"
    assert data == {"request_id": view["request_id"], "supervisor_id": order[0], "reason": "withdrawn",
                    "replaced_by": order[2]}
    async with app.state.db.transaction() as session:
        booked = (await session.scalars(select(booking.c.active).where(
            booking.c.request_id == uuid.UUID(view["request_id"]),
            booking.c.supervisor_id == uuid.UUID(order[0])))).all()
    assert booked == [False]

    # pending → out, replaced; an alternate dismissed before being reached is skipped when the turn comes
    await publish(producer, dismissal(order[3]))  # not reached yet: nothing to withdraw now
    await wait_until(lambda: _dismissed_in_pool(app, order[3]), timeout=60)
    assert await status_of(order[3]) is None
    await publish(producer, dismissal(order[1]))

    async def second_out() -> bool:
        return await status_of(order[1]) == "dismissed"

    await wait_until(second_out, timeout=60)
    view = (await client.get(f"/requests/{view['request_id']}", headers=ADMIN)).json()
    assert window_of(view, "local") == [order[2], order[4]]
    assert await status_of(order[3]) == "dismissed"  # skipped, not contacted
    async with app.state.db.transaction() as session:
        logged = (await session.scalars(select(contact_log.c.entry).where(
            contact_log.c.draw_id == uuid.UUID(view["draws"][0]["draw_id"])).order_by(contact_log.c.seq))).all()
    assert [(e["supervisor_id"], e["outcome"], e["recorded_by"]) for e in logged] == [
        (order[0], "confirmed", "bureau"), (order[0], "dismissed", "system"),
        (order[1], "dismissed", "system"), (order[3], "dismissed", "system")]
    dismissed_again = await contact(client, view, order[1], "confirmed", expect=409)
    assert dismissed_again["code"] == "contact_already_recorded"
    verified = (await client.get(f"/draws/{view['draws'][0]['draw_id']}/verify", headers=ADMIN)).json()
    assert verified["ok"], verified

    # an activity that has begun keeps its record: its confirmed supervisor stays on the roster
    cross = window_of(begun, "cross")
    begun = await contact(client, begun, cross[0], "confirmed")
    async with app.state.db.transaction() as session:
        await session.execute(request.update().where(request.c.id == uuid.UUID(begun["request_id"])).values(
            starts_at=func.now() - timedelta(hours=1)))  # under way now
    await publish(producer, dismissal(cross[0]))
    await wait_until(lambda: _dismissed_in_pool(app, cross[0]), timeout=60)
    begun = (await client.get(f"/requests/{begun['request_id']}", headers=ADMIN)).json()
    assert begun["roster"] == [cross[0]]


async def _dismissed_in_pool(app, sid: str) -> bool:
    from services.selection.models import supervisor

    async with app.state.db.transaction() as session:
        return bool(await session.scalar(select(supervisor.c.dismissed).where(supervisor.c.id == uuid.UUID(sid))))


async def test_r12_1_a_clerks_outcome_needs_evidence_and_unreachable_two_attempts_apart(svc, unique_name):
    app, client = svc
    await appoint(app, unique_name, unique_name, 4)
    view = await new_request(svc, unique_name, unique_name, seats=1, seats_local=1)
    first = window_of(view)[0]
    none = await contact(client, view, first, "declined", attempts=[], expect=422)
    assert none["code"] == "R12.1"
    await asyncio.sleep(1.1)
    now = datetime.now(UTC)
    once = [{"at": now.isoformat(), "channel": "phone"}]
    assert (await contact(client, view, first, "unreachable", attempts=once, expect=422))["code"] == "R12.1"
    close = [{"at": (now - timedelta(milliseconds=300)).isoformat(), "channel": "phone"},
             {"at": now.isoformat(), "channel": "sms"}]  # the rule: at least 1 s apart in tests (10 min by default)
    assert (await contact(client, view, first, "unreachable", attempts=close, expect=422))["code"] == "R12.1"
    future = [{"at": (now + timedelta(minutes=5)).isoformat(), "channel": "phone"}]
    assert (await contact(client, view, first, "declined", attempts=future, expect=422))["code"] == "R12.1"
    before = [{"at": (now - timedelta(hours=1)).isoformat(), "channel": "phone"}]  # before they were reached
    assert (await contact(client, view, first, "declined", attempts=before, expect=422))["code"] == "R12.1"
    bad = await client.post(f"/draws/{view['draws'][0]['draw_id']}/contacts", headers=ADMIN, json={
        "supervisor_id": first, "outcome": "declined", "attempts": [{"at": now.isoformat(), "channel": "pigeon"}]})
    assert bad.status_code == 422
    after = await contact(client, view, first, "unreachable")  # two attempts 1 s apart, after the window opened
    assert [c["status"] for c in after["candidates"]][:1] == ["unreachable"]
    receipt = (await client.get(f"/draws/{view['draws'][0]['draw_id']}/receipt", headers=ADMIN)).json()
    [entry] = receipt["contact_log"]
    assert entry["recorded_by"] == "bureau" and len(entry["attempts"]) == 2
    assert receipt["params"]["contact_rules"]["unreachable_min_gap_seconds"] == 1
    assert alg.verify_receipt(receipt)["ok"]


async def test_r12_1_the_supervisor_is_notified_of_what_a_clerk_recorded_and_auditors_see_it_per_clerk(
        svc, unique_name):
    app, client = svc
    await appoint(app, unique_name, unique_name, 3)
    view = await new_request(svc, unique_name, unique_name, seats=1, seats_local=1)
    first = window_of(view)[0]
    clerk = bearer("bureau_admin", subject=f"clerk-{unique_name}")
    response = await client.post(f"/draws/{view['draws'][0]['draw_id']}/contacts", headers=clerk, json={
        "supervisor_id": first, "outcome": "declined", "reason": "外出", "attempts": attempts_for("declined")})
    assert response.status_code == 200, response.text
    notices = (await client.get("/notices", headers=bearer("supervisor", supervisor_id=first))).json()
    assert notices and notices[0]["request_id"] == view["request_id"] and "不能参加" in notices[0]["text"]
    assert notices[0]["attempts"][0]["channel"] == "phone"
    others = (await client.get("/notices", headers=bearer("supervisor", supervisor_id=str(uuid.uuid4())))).json()
    assert others == []
    report = (await client.get("/reports/contact-outcomes", headers=bearer("auditor"))).json()
    [line] = [r for r in report if r["actor"] == f"clerk-{unique_name}"]
    assert line["outcomes"] == {"declined": 1} and line["skipped"] == 1 and line["skip_rate"] == "1.000"
    me = bearer("supervisor", supervisor_id=first)
    assert (await client.get("/reports/contact-outcomes", headers=me)).status_code == 403


async def test_no_outcome_decline_or_recusal_once_the_activity_has_started(svc, unique_name):
    app, client = svc
    await appoint(app, unique_name, unique_name, 3)
    view = await new_request(svc, unique_name, unique_name, seats=1, seats_local=1)
    first = window_of(view)[0]
    await contact(client, view, first, "confirmed")
    async with app.state.db.transaction() as session:  # the activity began an hour ago
        await session.execute(text("UPDATE selection.request SET starts_at = now() - interval '1 hour', "
                                   "ends_at = now() + interval '1 hour' WHERE id = :r"), {"r": view["request_id"]})
    me = bearer("supervisor", supervisor_id=first)
    declined = await client.post(f"/assignments/{view['request_id']}/decline", json={"reason": "不想去"}, headers=me)
    assert declined.status_code == 409 and declined.json()["code"] == "activity_started"
    recused = await client.post(f"/assignments/{view['request_id']}/recusal", json={"ground": "亲属"}, headers=me)
    assert recused.status_code == 409
    assert (await contact(client, view, first, "declined", expect=409))["code"] == "activity_started"
    after = (await client.get(f"/requests/{view['request_id']}", headers=ADMIN)).json()
    assert after["roster"] == [first] and after["status"] == "staffed"

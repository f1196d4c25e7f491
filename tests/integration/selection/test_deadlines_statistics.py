"""Selection's deadlines (GET /deadlines: R10.2, R11.1, R12.1, R13.2, R14.1; shared/deadlines.py) and the statistics
the bureau reports upward (GET /statistics/contacts, /statistics/supervisors; issue 14), with data made through the
service's API and events."""

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

from shared import clock
from shared.events.contracts import SupervisionRequested
from tests.integration.selection.conftest import (
    ADMIN,
    activity_window,
    appoint,
    new_request,
    publish,
    request_body,
)
from tests.integration.selection.test_contact import contact
from tests.integration.selection.test_operations import assert_problem
from tests.support.apps import bearer
from tests.support.eventing import wait_until


async def _deadlines(client, headers: dict = ADMIN, **params) -> dict[tuple[str, str], dict]:
    response = await client.get("/deadlines", headers=headers, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert not body["truncated"] and body["total"] == len(body["items"])
    return {(item["rule"], item["subject_id"]): item for item in body["items"]}


def _day(view: dict) -> str:
    return datetime.fromisoformat(view["starts_at"]).astimezone(clock.SHANGHAI).date().isoformat()


async def _view(client, request_id: str) -> dict:
    response = await client.get(f"/requests/{request_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


def _pending(view: dict) -> list[str]:
    return [c["supervisor_id"] for c in view["candidates"] if c["status"] == "pending"]


async def test_r10_2_r11_1_r12_1_r13_2_r14_1_deadlines_listed_until_done(svc, producer, unique_name):
    app, client = svc
    district = unique_name
    await appoint(app, district, district, 3)
    await appoint(app, district + "x", district, 3)
    contacting = await new_request(svc, district, district, seats=2, working_days_ahead=6)
    short = await new_request(svc, district, district, seats=8, seats_local=4, working_days_ahead=7)
    waiting = await client.post("/requests", headers=ADMIN, json=request_body(
        district, district, seats=1, working_days_ahead=4, short_notice={"reason": "羁押必要性审查期限紧迫"}))
    assert waiting.status_code == 201 and waiting.json()["status"] == "awaiting_consent", waiting.text
    waiting = waiting.json()
    beacon = await client.post("/requests", headers=ADMIN, json=request_body(district, district, seats=1,
                                                                             working_days_ahead=8))
    assert beacon.status_code == 201 and beacon.json()["beacon"]["value"] is None, beacon.text
    beacon = beacon.json()
    # the procuratorate's request through casework: accepted, waiting for its nonce (DRAW.md steps 1-3)
    requested_at, starts, ends = activity_window(9)
    revealing = SupervisionRequested(
        request_id=uuid.uuid4(), activity_id=uuid.uuid4(), case_ref="威检刑诉〔2026〕9号", activity_type="公开听证",
        office="威海市人民检察院", district=district, starts_at=starts, ends_at=ends, place="听证室", seats=1,
        specialty=district, requested_at=requested_at,
        procuratorate_commitment=hashlib.sha256(secrets.token_bytes(32)).hexdigest())
    await publish(producer, revealing)
    reveal_id = str(revealing.request_id)

    async def accepted() -> bool:
        response = await client.get(f"/requests/{reveal_id}", headers=ADMIN)
        return response.status_code == 200 and response.json()["status"] == "accepted"

    await wait_until(accepted, timeout=30)
    recusal = await client.post("/recusals", headers=ADMIN, json={
        "request_id": contacting["request_id"], "supervisor_id": _pending(contacting)[0], "source": "party",
        "ground": "当事人申请：系其近亲属"})
    assert recusal.status_code == 201, recusal.text
    recusal_id = recusal.json()["recusal_id"]

    items = await _deadlines(client, district=district)
    assert set(items) == {("R12.1", contacting["request_id"]), ("R12.1", short["request_id"]),
                          ("R14.1", short["request_id"]), ("R10.2", waiting["request_id"]),
                          ("R11.1", beacon["request_id"]), ("R11.1", reveal_id), ("R13.2", recusal_id)}
    call = items[("R12.1", contacting["request_id"])]
    assert (call["kind"], call["due_on"], call["state"]) == ("contact_pending", _day(contacting), "upcoming")
    assert call["roles"] == ["bureau_admin"] and call["district"] == district and "2名" in call["title"]
    assert datetime.fromisoformat(call["due_at"]) == datetime.fromisoformat(contacting["starts_at"])
    assert items[("R14.1", short["request_id"])]["kind"] == "redraw_needed"
    consent = items[("R10.2", waiting["request_id"])]
    assert (consent["kind"], consent["due_on"]) == ("consent_pending", _day(waiting))
    assert items[("R11.1", beacon["request_id"])]["kind"] == "beacon_value_due"
    reveal = items[("R11.1", reveal_id)]
    deadline = datetime.fromisoformat((await _view(client, reveal_id))["acceptance"]["reveal_deadline"])
    assert reveal["kind"] == "reveal_due" and reveal["roles"] == ["procuratorate"]
    assert datetime.fromisoformat(reveal["due_at"]) == deadline
    assert reveal["due_on"] == deadline.astimezone(clock.SHANGHAI).date().isoformat()
    recused = items[("R13.2", recusal_id)]
    assert (recused["kind"], recused["subject_type"], recused["due_on"]) == ("recusal_pending", "recusal",
                                                                             _day(contacting))
    assert all(not item["title"].isascii() and item["rule"] in item["title"] for item in items.values())
    # who acts, and what falls due within the horizon
    assert set(await _deadlines(client, district=district, role="procuratorate")) == {("R11.1", reveal_id)}
    assert ("R12.1", contacting["request_id"]) not in await _deadlines(client, district=district, within_days=0)
    own = await _deadlines(client, bearer("district_bureau", district=district))
    assert set(own) == set(items)
    # once the activity has begun, contacts can no longer be recorded: the contact item is gone, and the pending
    # decisions stay, overdue (a consent or a recusal can still be refused)
    with clock.frozen(datetime.fromisoformat(short["starts_at"]) + timedelta(days=1)):
        later = await _deadlines(client, district=district)
        assert ("R12.1", contacting["request_id"]) not in later and ("R14.1", short["request_id"]) not in later
        assert later[("R10.2", waiting["request_id"])]["state"] == "overdue"
        assert later[("R13.2", recusal_id)]["state"] == "overdue"

    # done, one by one: each item leaves the list
    decided = await client.post(f"/recusals/{recusal_id}/decision", headers=ADMIN,
                                json={"granted": False, "reason": "不符合回避条件"})
    assert decided.status_code == 200, decided.text
    for sid in _pending(await _view(client, contacting["request_id"])):
        await contact(client, await _view(client, contacting["request_id"]), sid, "confirmed")
    refused = await client.post(f"/requests/{waiting['request_id']}/short-notice-decision", headers=ADMIN,
                                json={"granted": False, "reason": "不属于特殊情形"})
    assert refused.status_code == 200, refused.text
    entered = await client.put(f"/requests/{beacon['request_id']}/beacon", headers=ADMIN,
                               json={"value": "2026年第140期 03 09 12 20 27 31 05"})
    assert entered.status_code == 200 and entered.json()["status"] == "drawn", entered.text
    items = await _deadlines(client, district=district)
    assert set(items) == {("R12.1", short["request_id"]), ("R14.1", short["request_id"]), ("R11.1", reveal_id),
                          ("R12.1", beacon["request_id"])}

    # R2.1 and bad input
    assert_problem(await client.get("/deadlines", headers=bearer("district_bureau", district=district),
                                    params={"district": district + "x"}), 403, "R2.1")
    assert_problem(await client.get("/deadlines", headers=ADMIN, params={"state": "late"}), 422, "validation_error")
    assert_problem(await client.get("/deadlines", headers=ADMIN, params={"within_days": 400}), 422,
                   "validation_error")


async def test_contact_statistics_decline_and_skip_rates_and_served_counts(svc, unique_name):
    app, client = svc
    district, other = unique_name, unique_name + "x"
    local = await appoint(app, district, district, 3)
    await appoint(app, other, district, 3)
    # request 1: one local and one cross seat; the first local declines, the next confirms, the cross confirms
    first = await new_request(svc, district, district, seats=2, seats_local=1, working_days_ahead=6)
    decliner = next(c["supervisor_id"] for c in first["candidates"] if c["group"] == "local")
    cross = next(c["supervisor_id"] for c in first["candidates"] if c["group"] == "cross")
    await contact(client, first, decliner, "declined", reason="出差")
    await contact(client, first, cross, "confirmed")
    view = await _view(client, first["request_id"])
    substitute = next(c["supervisor_id"] for c in view["candidates"] if c["group"] == "local"
                      and c["status"] == "pending")
    await contact(client, view, substitute, "confirmed")
    # request 2: one local seat; the first is unreachable (two calls), the next confirms
    second = await new_request(svc, district, district, seats=1, seats_local=1, working_days_ahead=7)
    gone = _pending(second)[0]
    await contact(client, second, gone, "unreachable")
    view = await _view(client, second["request_id"])
    await contact(client, view, _pending(view)[0], "confirmed")
    year = datetime.fromisoformat(first["starts_at"]).astimezone(clock.SHANGHAI).year
    assert datetime.fromisoformat(second["starts_at"]).astimezone(clock.SHANGHAI).year == year

    response = await client.get("/statistics/contacts", headers=ADMIN,
                                params={"year": year, "district": district, "group_by": "district"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["group_by"] == ["district"] and len(body["rows"]) == 1
    row = body["rows"][0]
    assert (row["district"], row["confirmed"], row["declined"], row["unreachable"], row["pending"]) == (
        district, 3, 1, 1, 0)
    assert (row["settled"], row["skipped"]) == (5, 2)
    assert (row["decline_rate"], row["unreachable_rate"], row["skip_rate"]) == (0.2, 0.2, 0.4)
    assert body["totals"]["skip_rate"] == 0.4 and body["totals"]["settled"] == 5
    month = datetime.fromisoformat(first["starts_at"]).astimezone(clock.SHANGHAI).month
    by_month = (await client.get("/statistics/contacts", headers=ADMIN,
                                 params={"year": year, "district": district})).json()
    assert by_month["group_by"] == ["district", "month"]
    assert sum(r["settled"] for r in by_month["rows"]) == 5 and {r["month"] for r in by_month["rows"]} >= {month}
    empty = (await client.get("/statistics/contacts", headers=ADMIN,
                              params={"year": year - 1, "district": district})).json()
    assert empty["rows"] == [] and empty["totals"]["skip_rate"] is None

    async def supervisors(**params) -> dict[str, dict]:
        response = await client.get("/statistics/supervisors", headers=ADMIN,
                                    params={"year": year, "district": district, **params})
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["total"] == len(page["items"])
        return {i["supervisor_id"]: i for i in page["items"]}

    # before the activities: nobody has served yet; the district is the supervisor's own (the cross one is not here)
    before = await supervisors()
    assert cross not in before and set(before) <= {str(s) for s in local}
    expected: dict[str, dict] = {}  # from the two requests' candidates (the draw decides who had a turn)
    for request_id in (first["request_id"], second["request_id"]):
        for c in (await _view(client, request_id))["candidates"]:
            if c["group"] == "local":
                line = expected.setdefault(c["supervisor_id"], {"drawn": 0, "confirmed": 0, "declined": 0})
                line["drawn"] += 1
                line["confirmed"] += c["status"] == "confirmed"
                line["declined"] += c["status"] == "declined"
    assert {sid: {k: v[k] for k in ("drawn", "confirmed", "declined")} for sid, v in before.items()} == expected
    assert before[decliner]["declined"] == 1
    assert before[decliner]["decline_rate"] == round(1 / before[decliner]["drawn"], 4)
    assert before[substitute]["confirmed"] >= 1 and all(s["served"] == 0 for s in before.values())
    # after both activities ended: a kept seat is served; an absence recorded by the bureau is not
    absent_id = (await _view(client, second["request_id"]))["roster"][0]
    with clock.frozen(datetime.fromisoformat(second["starts_at"]) + timedelta(hours=1)):
        absent = await client.post(f"/requests/{second['request_id']}/absences", headers=ADMIN,
                                   json={"supervisor_id": absent_id, "reason": "无正当理由未到场"})
        assert absent.status_code == 201, absent.text
    with clock.frozen(datetime.fromisoformat(second["ends_at"]) + timedelta(days=1)):
        after = await supervisors()
        # request 1's local seat is served; request 2's confirmed person was absent (unless the same person)
        assert {sid: line["served"] for sid, line in after.items()} == {sid: int(sid == substitute) for sid in after}
        assert after[absent_id]["confirmed"] >= 1
        assert next(iter(after)) == substitute  # most served first
        everyone = (await client.get("/statistics/supervisors", headers=ADMIN, params={"year": year,
                                                                                      "limit": 200})).json()
        assert everyone["total"] >= 5
    paged = (await client.get("/statistics/supervisors", headers=ADMIN,
                              params={"year": year, "district": district, "limit": 1, "offset": 1})).json()
    assert paged["total"] == len(before) and len(paged["items"]) == 1


async def test_statistics_bad_parameters_and_r2_1_scoping(svc, unique_name):
    _, client = svc
    district = unique_name
    own = bearer("district_bureau", district=district)
    for url in ("/statistics/contacts", "/statistics/supervisors"):
        for bad in ({}, {"year": 2023}, {"year": 2101}, {"year": "x"}, {"year": 2026, "month": 0},
                    {"year": 2026, "month": 13}, {"year": 2026, "district": ""}):
            assert_problem(await client.get(url, headers=ADMIN, params=bad), 422, "validation_error")
        assert_problem(await client.get(url, headers=own, params={"year": 2026, "district": district + "x"}),
                       403, "R2.1")
        response = await client.get(url, headers=own, params={"year": 2026})
        assert response.status_code == 200, response.text
        assert (await client.get(url, headers=bearer("procuratorate", district=district, office="某院"),
                                 params={"year": 2026})).status_code == 403
        assert (await client.get(url, headers=bearer("auditor"), params={"year": 2026})).status_code == 200
    assert_problem(await client.get("/statistics/contacts", headers=ADMIN, params={"year": 2026, "group_by": "office"}),
                   422, "validation_error")
    assert (await client.get("/statistics/contacts", headers=own, params={"year": 2026})).json()["district"] == district
    assert_problem(await client.get("/statistics/supervisors", headers=ADMIN, params={"year": 2026, "limit": 0}),
                   422, "validation_error")

"""Day-to-day operations (issue 14): the bureau's work lists, the pool and its freshness, the call list and
the audited phone reveal (R12.1, R3.1), district scoping (R2.1), declared relations read back (R13.1)."""

import contextlib
import uuid
from datetime import UTC, datetime

from sqlalchemy import text

from tests.integration.selection.conftest import (
    ADMIN,
    appoint,
    appointed,
    attempts_for,
    fake_phone,
    new_request,
    publish,
    request_body,
)
from tests.support.apps import bearer
from tests.support.eventing import wait_until

PROBLEM = "application/problem+json"


def assert_problem(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    if code is not None:
        assert body["code"] == code, body
    assert body["title"] and not body["title"].isascii()  # a Chinese message
    return body


async def all_pages(client, path: str, params: dict, headers: dict, limit: int) -> list[dict]:
    items, cursor = [], None
    for _ in range(50):
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        page = await client.get(path, params=query, headers=headers)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= limit
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("paging did not end")


def tampered(cursor: str) -> str:
    body, _, mac = cursor.partition(".")
    return body[:2] + ("A" if body[2] != "A" else "B") + body[3:] + "." + mac


async def audit_count(app, action: str, subject: str) -> int:
    async with app.state.db.transaction() as session:
        return await session.scalar(text(
            "SELECT count(*) FROM selection.audit_log WHERE action = :a AND subject = :s"), {"a": action, "s": subject})


# --- GET /requests -------------------------------------------------------------------------------------

async def requests_of_a_district(svc, district: str, other: str) -> dict[str, dict]:
    """Five requests of `district`: three drawn (one short of people), one awaiting consent, one cancelled."""
    app, client = svc
    await appoint(app, district, district, 3)
    await appoint(app, other, district, 3)
    made = {
        "drawn_5": await new_request(svc, district, district, seats=2, working_days_ahead=5),
        "drawn_6": await new_request(svc, district, district, seats=2, working_days_ahead=6),
        # 4 local + 4 cross seats from 3 + 3 people: drawn, and short (R14.1)
        "short_7": await new_request(svc, district, district, seats=8, seats_local=4, working_days_ahead=7),
        "cancelled_8": await new_request(svc, district, district, seats=2, working_days_ahead=8),
    }
    cancelled = await client.post(f"/requests/{made['cancelled_8']['request_id']}/cancel",
                                  json={"reason": "检察院改期"}, headers=ADMIN)
    assert cancelled.status_code == 200, cancelled.text
    waiting = await client.post("/requests", json=request_body(
        district, district, seats=2, working_days_ahead=4, short_notice={"reason": "羁押必要性审查期限紧迫"}),
        headers=ADMIN)
    assert waiting.status_code == 201 and waiting.json()["status"] == "awaiting_consent", waiting.text
    made["awaiting_4"] = waiting.json()
    return made


async def test_r2_1_work_list_filters_state_dates_district_and_pages_by_a_stable_cursor(svc, unique_name):
    _, client = svc
    district, other = unique_name, unique_name + "x"
    made = await requests_of_a_district(svc, district, other)
    by_start = sorted(made.values(), key=lambda v: (v["starts_at"], v["request_id"]))

    # stable sort + cursor paging: every request once, in activity order, whatever the page size
    for limit in (1, 2, 5):
        page = await all_pages(client, "/requests", {"district": district}, ADMIN, limit)
        assert [i["request_id"] for i in page] == [v["request_id"] for v in by_start]
    first = (await client.get("/requests", params={"district": district, "limit": 2}, headers=ADMIN)).json()
    assert first["total"] == 5 and first["limit"] == 2 and first["next_cursor"]
    newest_first = await all_pages(client, "/requests", {"district": district, "sort": "-starts_at"}, ADMIN, 2)
    assert [i["request_id"] for i in newest_first] == [v["request_id"] for v in reversed(by_start)]

    async def ids(**params) -> set[str]:
        return {i["request_id"] for i in await all_pages(client, "/requests", {"district": district, **params},
                                                          ADMIN, 50)}

    ids_of = {k: v["request_id"] for k, v in made.items()}
    assert await ids(status="drawn") == {ids_of["drawn_5"], ids_of["drawn_6"], ids_of["short_7"]}
    assert await ids(status="awaiting_consent") == {ids_of["awaiting_4"]}
    assert await ids(status=["cancelled", "awaiting_consent"]) == {ids_of["cancelled_8"], ids_of["awaiting_4"]}
    assert await ids(short_staffed="true") == {ids_of["short_7"]}
    day_6 = datetime.fromisoformat(made["drawn_6"]["starts_at"]).date().isoformat()
    assert await ids(**{"from": day_6, "to": day_6}) == {ids_of["drawn_6"]}
    assert await ids(**{"from": day_6}) == {ids_of["drawn_6"], ids_of["short_7"], ids_of["cancelled_8"]}
    items = {i["request_id"]: i for i in await all_pages(client, "/requests", {"district": district}, ADMIN, 50)}
    assert items[ids_of["awaiting_4"]]["waiting_for"] == "consent"
    assert items[ids_of["short_7"]]["waiting_for"] == "redraw" and items[ids_of["short_7"]]["short_staffed"]
    assert items[ids_of["drawn_5"]]["waiting_for"] == "contact" and items[ids_of["drawn_5"]]["pending"] == 2

    # bad input: 422 problems with stable codes, never a 500
    assert_problem(await client.get("/requests", params={"status": "incoming"}, headers=ADMIN), 422,
                   "validation_error")
    assert_problem(await client.get("/requests", params={"sort": "place"}, headers=ADMIN), 422, "validation_error")
    assert_problem(await client.get("/requests", params={"from": "2026-12-10", "to": "2026-12-01"},
                                    headers=ADMIN), 422, "invalid_range")
    assert_problem(await client.get("/requests", params={"from": "0001-01-01"}, headers=ADMIN), 422,
                   "date_out_of_range")
    params = {"district": district, "limit": 2}
    assert_problem(await client.get("/requests", params={**params, "cursor": tampered(first["next_cursor"])},
                                    headers=ADMIN), 422, "invalid_cursor")
    assert_problem(await client.get("/requests", params={**params, "cursor": "garbage"}, headers=ADMIN), 422,
                   "invalid_cursor")
    # a cursor is only good for the filters it was issued for
    assert_problem(await client.get("/requests", params={**params, "status": "drawn",
                                                         "cursor": first["next_cursor"]}, headers=ADMIN),
                   422, "invalid_cursor")

    # R2.1: a district bureau sees its own district only; asking for another is a 403
    own = bearer("district_bureau", district=district)
    mine = await all_pages(client, "/requests", {}, own, 50)
    assert {i["request_id"] for i in mine} == set(ids_of.values())
    assert_problem(await client.get("/requests", params={"district": other}, headers=own), 403, "R2.1")
    assert_problem(await client.get("/requests", params={"district": district},
                                    headers=bearer("procuratorate", district=other)), 403, "R2.1")
    assert (await client.get("/requests", headers=bearer("supervisor", supervisor_id=str(uuid.uuid4())))
            ).status_code == 403


# --- GET /recusals -------------------------------------------------------------------------------------

async def test_r13_2_recusal_inbox_lists_pending_oldest_first_scoped_by_district(svc, unique_name):
    app, client = svc
    district, other = unique_name, unique_name + "x"
    await appoint(app, district, district, 4)
    await appoint(app, other, district, 2)
    view = await new_request(svc, district, district, seats=2, seats_local=1)
    people = [c["supervisor_id"] for c in view["candidates"]]
    made = []
    for sid in people:
        created = await client.post("/recusals", json={"request_id": view["request_id"], "supervisor_id": sid,
                                                       "source": "party", "ground": "当事人申请：系其近亲属"},
                                    headers=ADMIN)
        assert created.status_code == 201, created.text
        made.append(created.json()["recusal_id"])
    decided = await client.post(f"/recusals/{made[0]}/decision", json={"granted": False, "reason": "不符合条件"},
                                headers=ADMIN)
    assert decided.status_code == 200, decided.text

    pending = await all_pages(client, "/recusals", {"status": "pending", "district": district}, ADMIN, 1)
    assert [i["recusal_id"] for i in pending] == [made[1]]
    assert pending[0]["ground"] == "当事人申请：系其近亲属" and pending[0]["name"] == "张三"
    everything = await all_pages(client, "/recusals", {"district": district}, ADMIN, 1)
    assert [i["recusal_id"] for i in everything] == made  # oldest first
    assert {i["status"] for i in everything} == {"pending", "rejected"}

    first = (await client.get("/recusals", params={"district": district, "limit": 1}, headers=ADMIN)).json()
    assert_problem(await client.get("/recusals", params={"district": district, "limit": 1,
                                                         "cursor": tampered(first["next_cursor"])},
                                    headers=ADMIN), 422, "invalid_cursor")
    assert_problem(await client.get("/recusals", params={"status": "maybe"}, headers=ADMIN), 422)

    own = bearer("district_bureau", district=district)
    assert [i["recusal_id"] for i in await all_pages(client, "/recusals", {"status": "pending"}, own, 50)] == [made[1]]
    assert_problem(await client.get("/recusals", params={"district": district},
                                    headers=bearer("district_bureau", district=other)), 403, "R2.1")
    audited = (await client.get("/recusals", params={"district": district}, headers=bearer("auditor"))).json()
    assert audited["total"] == 2 and "ground" not in audited["items"][0]  # the bureau decides; others see less


# --- GET /pool/status, GET /pool -----------------------------------------------------------------------

async def test_r11_1_pool_status_says_when_the_last_registry_event_was_applied_and_counts_the_eligible(
        svc, producer, unique_name):
    app, client = svc
    district = unique_name
    before = datetime.now(UTC)
    event = appointed(district, "民商事")
    await publish(producer, event)  # through the broker and the consumer's inbox, as the registry sends it

    async def applied() -> bool:
        status = (await client.get("/pool/status", params={"district": district}, headers=ADMIN)).json()
        return status["eligible_total"] == 1

    await wait_until(applied, timeout=60)
    await appoint(app, district, "民商事", 2)
    await appoint(app, district, "刑事", 1)
    await appoint(app, district, "刑事", 1, eligible=False)  # R22.3: not trained yet, not in the pool
    status = (await client.get("/pool/status", params={"district": district}, headers=ADMIN)).json()
    assert datetime.fromisoformat(status["last_registry_event_at"]) >= before
    assert status["last_registry_event_type"] in {"SupervisorAppointed", "SupervisorUpdated", "SupervisorDismissed",
                                                  "EligibilityChanged"}
    assert status["last_registry_event_age_seconds"] >= 0
    assert status["by_district"] == [{"district": district, "eligible": 4,
                                      "by_specialty": {"刑事": 1, "民商事": 3}}]
    # R4.1: nobody's term covers a date after 2029 (appointed() terms end 2029-12-31)
    later = (await client.get("/pool/status", params={"district": district, "date": "2030-06-01"},
                              headers=ADMIN)).json()
    assert later["eligible_total"] == 0
    own = (await client.get("/pool/status", headers=bearer("district_bureau", district=district))).json()
    assert own["district"] == district and own["eligible_total"] == 4
    assert_problem(await client.get("/pool/status", params={"district": district},
                                    headers=bearer("district_bureau", district=district + "x")), 403, "R2.1")
    assert (await client.get("/pool/status", headers=bearer("procuratorate", district=district))).status_code == 403


async def test_r11_1_pool_of_a_date_is_the_eligible_not_booked_paged_and_audited(svc, unique_name):
    app, client = svc
    district, other = unique_name, unique_name + "x"
    local = await appoint(app, district, district, 3)
    await appoint(app, other, district, 2)
    await appoint(app, district, district, 1, eligible=False)
    view = await new_request(svc, district, district, seats=2, seats_local=1)
    day = datetime.fromisoformat(view["starts_at"]).date().isoformat()
    confirmed = next(c["supervisor_id"] for c in view["candidates"] if c["group"] == "local")
    recorded = await client.post(f"/draws/{view['draws'][0]['draw_id']}/contacts", json={
        "supervisor_id": confirmed, "outcome": "confirmed", "attempts": attempts_for("confirmed")}, headers=ADMIN)
    assert recorded.status_code == 200, recorded.text

    params = {"date": day, "specialty": district, "district": district}
    free = await all_pages(client, "/pool", params, ADMIN, 1)
    assert {i["supervisor_id"] for i in free} == {str(s) for s in local} - {confirmed}  # booked that day: out
    assert all(i["name"] == "张三" and i["served_this_year"] == 0 for i in free)
    other_day = await all_pages(client, "/pool", {**params, "date": "2029-06-01"}, ADMIN, 50)
    assert {i["supervisor_id"] for i in other_day} == {str(s) for s in local}
    whole_city = await all_pages(client, "/pool", {"date": day, "specialty": district}, ADMIN, 50)
    assert len(whole_city) == 2 + 2  # the free of this district and the other district's two (cross-district)
    assert await audit_count(app, "pool.read", f"pool:{day}") >= 1

    first = (await client.get("/pool", params={**params, "limit": 1}, headers=ADMIN)).json()
    assert first["total"] == 2
    assert_problem(await client.get("/pool", params={**params, "limit": 1, "cursor": tampered(first["next_cursor"])},
                                    headers=ADMIN), 422, "invalid_cursor")
    assert_problem(await client.get("/pool", params={"specialty": district}, headers=ADMIN), 422)  # date required
    assert_problem(await client.get("/pool", params={"date": "9999-12-31"}, headers=ADMIN), 422, "date_out_of_range")
    assert_problem(await client.get("/pool", params={**params, "district": other},
                                    headers=bearer("district_bureau", district=district)), 403, "R2.1")


# --- the call list and the phone ---------------------------------------------------------------------

async def receipt_order(client, view) -> dict[str, list[str]]:
    receipt = (await client.get(f"/draws/{view['draws'][0]['draw_id']}/receipt", headers=ADMIN)).json()
    return receipt["order"]


async def test_r12_1_call_list_in_receipt_order_with_names_masked_phones_states_and_the_next_to_call(
        svc, unique_name):
    app, client = svc
    district, other = unique_name, unique_name + "x"
    await appoint(app, district, district, 4)
    await appoint(app, other, district, 4)
    view = await new_request(svc, district, district, seats=2, seats_local=1)
    order = await receipt_order(client, view)
    path = f"/requests/{view['request_id']}/call-list"

    listed = (await client.get(path, headers=ADMIN)).json()
    for group in ("local", "cross"):
        lines = [i for i in listed["items"] if i["group"] == group]
        assert [i["supervisor_id"] for i in lines] == order[group]  # exactly the receipt's order
        assert [i["draw_order"] for i in lines] == list(range(1, len(order[group]) + 1))
        assert [i["status"] for i in lines] == ["pending"] + ["queued"] * (len(order[group]) - 1)
    for line in listed["items"]:
        phone = fake_phone(uuid.UUID(line["supervisor_id"]))
        assert line["name"] == "张三" and line["phone_masked"] == phone[:3] + "****" + phone[-4:]
        assert line["can_reveal_phone"] == (line["status"] == "pending")
    assert listed["next_to_call"] == {"supervisor_id": order["local"][0], "group": "local", "draw_order": 1}
    assert [i["supervisor_id"] for i in listed["items"] if i["next"]] == [order["local"][0]]
    assert listed["phones_available"] is True
    assert await audit_count(app, "call_list.read", view["request_id"]) == 1

    declined = await client.post(f"/draws/{view['draws'][0]['draw_id']}/contacts", json={
        "supervisor_id": order["local"][0], "outcome": "declined", "attempts": attempts_for("declined")},
        headers=ADMIN)
    assert declined.status_code == 200, declined.text
    after = (await client.get(path, headers=ADMIN)).json()
    local = [i for i in after["items"] if i["group"] == "local"]
    assert [i["status"] for i in local[:3]] == ["declined", "pending", "queued"]
    assert local[0]["status_label"] == "不能参加"
    # the earliest in draw order still to call: the cross group's first (1) before the local group's second (2)
    assert after["next_to_call"] == {"supervisor_id": order["cross"][0], "group": "cross", "draw_order": 1}
    assert after["next_by_group"]["local"]["supervisor_id"] == order["local"][1]

    assert_problem(await client.get(path, headers=bearer("district_bureau", district=other)), 403, "R2.1")
    assert (await client.get(path, headers=bearer("district_bureau", district=district))).status_code == 200
    for role in ("auditor", "procuratorate"):
        assert (await client.get(path, headers=bearer(role, district=district))).status_code == 403
    assert_problem(await client.get(f"/requests/{uuid.uuid4()}/call-list", headers=ADMIN), 404)


@contextlib.contextmanager
def registry_phones(app):
    """The fake registry answers each person's own phone (the reveal must go through the lookup)."""
    original = app.state.contact_lookup

    async def lookup(supervisor_id: uuid.UUID) -> dict:
        return {"name": "registry", "phone": fake_phone(supervisor_id)}

    app.state.contact_lookup = lookup
    try:
        yield
    finally:
        app.state.contact_lookup = original


async def test_r12_1_r3_1_phone_reveal_is_audited_and_refused_for_roles_not_entitled(svc, unique_name):
    app, client = svc
    district, other = unique_name, unique_name + "x"
    await appoint(app, district, district, 3)
    await appoint(app, other, district, 3)
    view = await new_request(svc, district, district, seats=2, seats_local=1)
    order = await receipt_order(client, view)
    local, cross = order["local"][0], order["cross"][0]

    def reveal(sid: str, headers: dict):
        return client.post(f"/requests/{view['request_id']}/call-list/{sid}/phone", headers=headers)

    with registry_phones(app):
        revealed = await reveal(local, bearer("bureau_admin", subject="clerk-9"))
        assert revealed.status_code == 200, revealed.text
        assert revealed.json()["phone"] == fake_phone(uuid.UUID(local)) and revealed.json()["name"] == "张三"
        assert revealed.headers["cache-control"] == "no-store"
        async with app.state.db.transaction() as session:
            row = (await session.execute(text(
                "SELECT actor, details FROM selection.audit_log WHERE action = 'supervisor.read_contact' "
                "AND subject = :s ORDER BY seq DESC LIMIT 1"), {"s": f"supervisor:{local}"})).one()
        assert row.actor == "clerk-9" and row.details["request_id"] == view["request_id"]
        assert row.details["fields"] == ["phone"] and fake_phone(uuid.UUID(local)) not in str(row.details)

        # R12.1: nobody's phone before their turn in draw order
        assert_problem(await reveal(order["local"][1], ADMIN), 409, "R12.1")
        assert_problem(await reveal(str(uuid.uuid4()), ADMIN), 409, "R12.1")
        # roles not entitled to contact people
        for headers in (bearer("auditor"), bearer("procuratorate", district=district), bearer("finance"),
                        bearer("service"), bearer("supervisor", supervisor_id=local)):
            assert (await reveal(local, headers)).status_code == 403
        # R2.1: a district bureau in its district, for the people of its district only
        own = bearer("district_bureau", district=district, subject="district-clerk")
        assert (await reveal(local, own)).json()["phone"] == fake_phone(uuid.UUID(local))
        assert_problem(await reveal(cross, own), 403, "R2.1")
        assert_problem(await reveal(local, bearer("district_bureau", district=other)), 403, "R2.1")
    assert await audit_count(app, "supervisor.read_contact", f"supervisor:{local}") == 2
    assert await audit_count(app, "supervisor.read_contact", f"supervisor:{cross}") == 0

    async def registry_down(supervisor_id):
        return None

    app.state.contact_lookup, original = registry_down, app.state.contact_lookup
    try:
        assert_problem(await reveal(local, ADMIN), 503, "upstream_unavailable")
    finally:
        app.state.contact_lookup = original
    assert await audit_count(app, "supervisor.read_contact", f"supervisor:{local}") == 2  # nothing revealed


# --- declared relations ------------------------------------------------------------------------------

async def test_r13_1_declared_relations_are_read_back_by_the_person_and_the_bureau(svc, unique_name):
    app, client = svc
    sid = str((await appoint(app, unique_name, unique_name, 1))[0])
    me = bearer("supervisor", supervisor_id=sid)
    # party names of this test only: a declared name excludes the person from every request naming it
    first, second = f"李四{unique_name}", f"王五{unique_name}"
    put = await client.put(f"/supervisors/{sid}/declared-relations",
                           json={"party_names": [first, f" {second} "]}, headers=me)
    assert put.status_code == 200, put.text
    mine = (await client.get(f"/supervisors/{sid}/declared-relations", headers=me)).json()
    assert mine["party_names"] == [first, second] and mine["count"] == 2 and mine["declared_at"]
    assert await audit_count(app, "declared_relations.read", f"supervisor:{sid}") == 0
    bureau = (await client.get(f"/supervisors/{sid}/declared-relations", headers=ADMIN)).json()
    assert bureau["party_names"] == [first, second]
    assert await audit_count(app, "declared_relations.read", f"supervisor:{sid}") == 1
    someone_else = bearer("supervisor", supervisor_id=str(uuid.uuid4()))
    assert (await client.get(f"/supervisors/{sid}/declared-relations", headers=someone_else)).status_code == 403
    assert (await client.get(f"/supervisors/{sid}/declared-relations",
                             headers=bearer("district_bureau", district=unique_name))).status_code == 403

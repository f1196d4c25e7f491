"""Casework's work list (issue 14): activities by status, activity date, N-ACT type, case number and district
(R2.1), stable order, keyset cursor paging (shared/pagination.py); bad filters and cursors are 422s."""

import uuid
from datetime import date, timedelta

from sqlalchemy import func, select

from services.casework.models import activity
from shared import clock
from tests.support.apps import bearer
from tests.support.casework_helpers import activity_body, during, proc

ADMIN = bearer("bureau_admin", subject="bureau-1")
AUDITOR = bearer("auditor", subject="auditor-1")
PROBLEM = "application/problem+json"


def _place() -> tuple[str, str]:
    """A district and office of the test's own: the shared database holds every other test's activities."""
    tag = uuid.uuid4().hex[:6]
    return f"测试区{tag}", f"测试检察院{tag}"


def _problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == code, body
    assert not body["title"].isascii() and not body["detail"].isascii()  # Chinese title and detail
    return body


async def _create(client, district: str, office: str, day: date, **extra) -> dict:
    response = await client.post("/activities", headers=proc(office, district),
                                 json=activity_body(office=office, district=district, start_day=day, **extra))
    assert response.status_code == 201, response.text
    return response.json()


async def _pages(client, headers: dict, params: dict, limit: int) -> tuple[list[dict], list[int]]:
    """Every page of the list: (items in order, the totals each page reported)."""
    items, totals, cursor = [], [], None
    for _ in range(100):
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/activities", headers=headers, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit and page["limit"] == limit
        items += page["items"]
        totals.append(page["total"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items, totals
    raise AssertionError("paging did not end")


def _ids(items: list[dict]) -> list[str]:
    return [i["id"] for i in items]


async def test_activities_work_list_filters_status_date_type_and_case_number(cw):
    _, client = cw
    district, office = _place()
    base = clock.today() + timedelta(days=20)
    hearing = await _create(client, district, office, base)
    briefing = await _create(client, district, office, base + timedelta(days=2), activity_type="work_briefing")
    case_ref = f"威检巡〔2026〕{uuid.uuid4().hex[:6]}号"
    inspection = await _create(client, district, office, base + timedelta(days=4), activity_type="circuit_inspection",
                               case_ref=case_ref)
    cancelled = await _create(client, district, office, base + timedelta(days=6))
    response = await client.post(f"/activities/{cancelled['id']}/cancel", headers=proc(office, district),
                                 json={"reason": "当事人撤回申请"})
    assert response.status_code == 200, response.text
    past = await _create(client, district, office, clock.today() + timedelta(days=1))
    with during(past):
        response = await client.post(f"/activities/{past['id']}/hold", headers=proc(office, district))
    assert response.status_code == 200 and response.json()["status"] == "held", response.text

    async def listed(**params) -> list[str]:
        response = await client.get("/activities", headers=ADMIN, params={"district": district, **params})
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["total"] == len(page["items"]) and page["next_cursor"] is None
        return _ids(page["items"])

    everything = [cancelled, inspection, briefing, hearing, past]  # newest activity first (the default)
    assert await listed() == _ids(everything)
    assert await listed(sort="starts_at") == _ids(everything[::-1])
    assert await listed(status="open") == _ids([inspection, briefing, hearing])
    assert await listed(status=["held", "cancelled"]) == _ids([cancelled, past])
    assert await listed(activity_type="work_briefing") == [briefing["id"]]
    assert await listed(activity_type=["work_briefing", "circuit_inspection"]) == _ids([inspection, briefing])
    assert await listed(case_ref=case_ref) == [inspection["id"]]
    assert await listed(case_ref=case_ref[:-1]) == []  # the case number is matched exactly
    # the activity date (Shanghai) in [from, to], both ends included
    assert await listed(**{"from": (base + timedelta(days=2)).isoformat(),
                           "to": (base + timedelta(days=4)).isoformat()}) == _ids([inspection, briefing])
    assert await listed(**{"from": (base + timedelta(days=5)).isoformat()}) == [cancelled["id"]]
    assert await listed(**{"to": base.isoformat()}) == _ids([hearing, past])
    assert await listed(status="open", activity_type="public_hearing",
                        **{"from": base.isoformat(), "to": base.isoformat()}) == [hearing["id"]]
    item = (await client.get("/activities", headers=ADMIN, params={"case_ref": inspection["case_ref"]})).json()
    one = (await client.get(f"/activities/{inspection['id']}", headers=ADMIN)).json()
    assert item["items"] == [one]  # the same shape as GET /activities/{id}


async def test_activities_work_list_keyset_pages_neither_skip_nor_repeat(cw):
    app, client = cw
    district, office = _place()
    base = clock.today() + timedelta(days=30)
    made = [await _create(client, district, office, base + timedelta(days=k % 4)) for k in range(9)]
    expected = sorted(made, key=lambda a: (a["starts_at"], a["id"]))  # four share each start: the id breaks ties
    items, totals = await _pages(client, ADMIN, {"district": district, "sort": "starts_at"}, limit=2)
    assert _ids(items) == _ids(expected) and set(totals) == {9}
    items, _ = await _pages(client, ADMIN, {"district": district}, limit=4)
    assert _ids(items) == _ids(expected[::-1])
    # an activity recorded while the clerk pages (earlier than the page they are on) is neither shown twice
    # nor makes a later row vanish: the next page starts after the last row's key
    first = (await client.get("/activities", headers=ADMIN,
                              params={"district": district, "sort": "starts_at", "limit": 3})).json()
    await _create(client, district, office, base - timedelta(days=1))
    rest, totals = await _pages(client, ADMIN, {"district": district, "sort": "starts_at"}, limit=3)
    second = (await client.get("/activities", headers=ADMIN, params={
        "district": district, "sort": "starts_at", "limit": 50, "cursor": first["next_cursor"]})).json()
    assert _ids(first["items"]) + _ids(second["items"]) == _ids(expected)
    assert second["total"] == 10 and len(rest) == 10
    async with app.state.db.transaction() as session:  # the list reads the table, nothing else
        assert await session.scalar(select(func.count()).select_from(activity).where(
            activity.c.district == district)) == 10


async def test_activities_work_list_bad_filters_and_cursors_are_422(cw):
    _, client = cw
    district, office = _place()
    base = clock.today() + timedelta(days=40)
    for k in range(3):
        await _create(client, district, office, base + timedelta(days=k))
    params = {"district": district, "limit": 1}
    page = (await client.get("/activities", headers=ADMIN, params=params)).json()
    cursor = page["next_cursor"]
    assert cursor
    for bad in ({"status": "done"}, {"activity_type": "party"}, {"sort": "case_ref"}, {"limit": 0},
                {"limit": 201}, {"from": "2026-02-30"}, {"case_ref": ""}, {"case_ref": "号" * 101}):
        _problem(await client.get("/activities", headers=ADMIN, params={**params, **bad}), 422, "validation_error")
    _problem(await client.get("/activities", headers=ADMIN, params={
        **params, "from": "2026-12-10", "to": "2026-12-01"}), 422, "invalid_range")
    _problem(await client.get("/activities", headers=ADMIN, params={**params, "from": "1999-12-31"}),
             422, "date_out_of_range")
    body, _, mac = cursor.partition(".")
    edited = body[:-1] + ("A" if body[-1] != "A" else "B") + "." + mac
    for bad_cursor in (edited, body + "." + "0" * len(mac), "garbage", "." + mac, cursor + "x"):
        _problem(await client.get("/activities", headers=ADMIN, params={**params, "cursor": bad_cursor}),
                 422, "invalid_cursor")
    # a cursor is valid only with the filters it was made for
    for other in ({"district": district + "x"}, {"sort": "starts_at"}, {"status": "open"},
                  {"activity_type": "public_hearing"}):
        _problem(await client.get("/activities", headers=ADMIN, params={**params, **other, "cursor": cursor}),
                 422, "invalid_cursor")
    again = await client.get("/activities", headers=ADMIN, params={**params, "cursor": cursor})
    assert again.status_code == 200 and again.json()["items"][0]["id"] != page["items"][0]["id"]


async def test_r2_1_activities_work_list_is_scoped_to_the_district_and_office(cw):
    _, client = cw
    district, office = _place()
    other_office = office + "分院"
    base = clock.today() + timedelta(days=50)
    mine = await _create(client, district, office, base)
    theirs = await _create(client, district, other_office, base + timedelta(days=1))
    elsewhere_district, elsewhere_office = _place()
    elsewhere = await _create(client, elsewhere_district, elsewhere_office, base)
    district_bureau = bearer("district_bureau", subject="d-1", district=district)
    page = (await client.get("/activities", headers=district_bureau)).json()
    assert _ids(page["items"]) == _ids([theirs, mine]) and page["total"] == 2
    page = (await client.get("/activities", headers=district_bureau, params={"district": district})).json()
    assert page["total"] == 2
    _problem(await client.get("/activities", headers=district_bureau, params={"district": elsewhere_district}),
             403, "R2.1")
    # a procuratorate office sees its own office's activities only
    page = (await client.get("/activities", headers=proc(office, district))).json()
    assert _ids(page["items"]) == [mine["id"]] and page["total"] == 1
    _problem(await client.get("/activities", headers=proc(office, district),
                              params={"district": elsewhere_district}), 403, "R2.1")
    # city-wide roles see every district, or the one they ask for
    for headers in (ADMIN, AUDITOR):
        page = (await client.get("/activities", headers=headers, params={"district": elsewhere_district})).json()
        assert _ids(page["items"]) == [elsewhere["id"]]
    # a supervisor has no work list of activities
    response = await client.get("/activities", headers=bearer("supervisor", supervisor_id=str(uuid.uuid4())))
    assert response.status_code == 403


async def test_activities_work_list_items_are_the_activities_own_json_in_every_state(cw):
    """The list's items are rendered by PostgreSQL (labels, timestamps with and without microseconds, the
    cancellation object): each is exactly what GET /activities/{id} (the response model) answers."""
    _, client = cw
    district, office = _place()
    base = clock.today() + timedelta(days=60)
    open_one = await _create(client, district, office, base, activity_type="work_briefing")
    cancelled = await _create(client, district, office, base + timedelta(days=1))
    response = await client.post(f"/activities/{cancelled['id']}/cancel", headers=proc(office, district),
                                 json={"reason": "当事人撤回申请，“引号”与'单引号'"})
    assert response.status_code == 200, response.text
    held = await _create(client, district, office, clock.today() + timedelta(days=1))
    with during(held):
        assert (await client.post(f"/activities/{held['id']}/hold", headers=proc(office, district))).status_code == 200
    page = (await client.get("/activities", headers=ADMIN, params={"district": district})).json()
    assert page["total"] == 3 and {i["status"] for i in page["items"]} == {"open", "held", "cancelled"}
    for item in page["items"]:
        assert item == (await client.get(f"/activities/{item['id']}", headers=ADMIN)).json()
    assert _ids(page["items"]) == _ids(sorted([open_one, cancelled, held], key=lambda a: a["starts_at"],
                                              reverse=True))

"""Finance work lists (subsidy lines and travel claims: state, month, district, supervisor, four eyes, keyset
paging, R2.1), their deadlines (GET /deadlines: R42.1, R43.1) and the statistics of what was paid, through the
HTTP API. Each test keeps to a district of its own (tests share one database)."""

import uuid
from datetime import date, datetime

from shared import clock
from shared.events.contracts import SupervisorAppointed
from tests.integration.finance.helpers import (
    ADMIN,
    FIN_A,
    FIN_B,
    approve,
    covering_letter,
    deliver,
    feedback,
    fund,
    issue,
    new_district,
    pay,
)
from tests.integration.finance.test_travel import claim_body, with_receipts
from tests.support.apps import bearer

APRIL = datetime(2026, 4, 8, 10, 0, tzinfo=clock.SHANGHAI)
AUDITOR = bearer("auditor", subject="auditor-finance")


def district_token(district: str) -> dict[str, str]:
    return bearer("district_bureau", subject=f"db-{district}", district=district)


def supervisor_token(supervisor_id: uuid.UUID) -> dict[str, str]:
    return bearer("supervisor", subject=f"sup-{supervisor_id}", supervisor_id=str(supervisor_id))


async def listed(client, path: str, headers=FIN_A, **params) -> dict:
    r = await client.get(path, headers=headers, params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def lines_in(app, client, district: str, days: list[date], activity_type: str = "public_hearing",
                   supervisor_id: uuid.UUID | None = None) -> list[dict]:
    """One signed form per day (R42.1: one draft line each) for new supervisors of the district (or this one)."""
    ids = []
    for day in days:
        event = feedback(supervisor_id=supervisor_id, activity_date=day, district=district,
                         activity_type=activity_type)
        await deliver(app, event)
        ids.append(event.supervisor_id)
    items = (await listed(client, "/subsidy-lines", district=district, limit=200))["items"]
    return [next(i for i in items if i["supervisor_id"] == str(sid) and i["activity_date"] == day.isoformat())
            for sid, day in zip(ids, days, strict=True)]


async def appointed(app, district: str, name: str = "孙丽") -> uuid.UUID:
    supervisor_id = uuid.uuid4()
    await deliver(app, SupervisorAppointed(
        supervisor_id=supervisor_id, name=name, gender="female", district=district, specialties=[], employer="某单位",
        recommending_body="某社区", term_start=date(2025, 1, 1), term_end=date(2029, 12, 31),
        certificate_no=f"C-{supervisor_id.hex[:6]}", work_card_no=f"W-{supervisor_id.hex[:6]}", eligible=True))
    return supervisor_id


async def test_r42_1_line_work_list_by_state_month_district_supervisor_with_four_eyes(app, client) -> None:
    district = new_district()
    await fund(client, 2026, district)
    march, later, april = await lines_in(app, client, district, [date(2026, 3, 3), date(2026, 3, 20),
                                                                 date(2026, 4, 2)])
    page = await listed(client, "/subsidy-lines", district=district)
    assert page["total"] == 3 and [i["id"] for i in page["items"]] == [march["id"], later["id"], april["id"]]
    assert {(i["waiting_for"], i["may_act"], i["amount_yuan"]) for i in page["items"]} == {("check", True, "400.00")}
    assert (await client.post(f"/subsidy-lines/{march['id']}/check", headers=FIN_A)).status_code == 200
    # four eyes (R42.1): the checker may not approve, so the line is not on the checker's to-do list
    mine = await listed(client, "/subsidy-lines", district=district, actionable="true")
    assert [i["id"] for i in mine["items"]] == [later["id"], april["id"]]
    theirs = await listed(client, "/subsidy-lines", headers=FIN_B, district=district, actionable="true")
    assert (theirs["items"][0]["id"], theirs["items"][0]["waiting_for"]) == (march["id"], "approve")
    assert theirs["items"][0]["may_act"] is True
    assert (await listed(client, "/subsidy-lines", district=district, status="checked"))["items"][0]["may_act"] is False
    assert (await listed(client, "/subsidy-lines", headers=AUDITOR, district=district, actionable="true"))["total"] == 0
    await approve(client, later["id"])
    approved = (await listed(client, "/subsidy-lines", district=district, status="approved"))["items"]
    assert [(i["id"], i["waiting_for"]) for i in approved] == [(later["id"], "issue")]
    assert (await listed(client, "/subsidy-lines", district=district, status=["draft", "checked"]))["total"] == 2
    # month, date range, supervisor
    assert (await listed(client, "/subsidy-lines", district=district, period="2026-03"))["total"] == 2
    assert (await listed(client, "/subsidy-lines", district=district, **{"from": "2026-03-10", "to": "2026-04-30"})
            )["total"] == 2
    own = await listed(client, "/subsidy-lines", supervisor_id=april["supervisor_id"])
    assert [i["id"] for i in own["items"]] == [april["id"]]
    # R2.1: a district bureau sees its district's lines only; a supervisor their own
    assert (await listed(client, "/subsidy-lines", headers=district_token(district)))["total"] == 3
    other = await client.get("/subsidy-lines", headers=district_token(district), params={"district": "环翠区"})
    assert other.status_code == 403 and other.json()["code"] == "R2.1"
    self_list = await listed(client, "/subsidy-lines", headers=supervisor_token(uuid.UUID(april["supervisor_id"])))
    assert [i["id"] for i in self_list["items"]] == [april["id"]]
    # bad filters: 422 with a stable code, never a 500
    for params, code in (({"status": "paid_twice"}, "validation_error"), ({"period": "2026-13"}, "validation_error"),
                         ({"from": "2026-05-01", "to": "2026-04-01"}, "invalid_range"),
                         ({"period": "2026-03", "from": "2026-03-01"}, "invalid_range"),
                         ({"sort": "amount"}, "validation_error"), ({"from": "1999-01-01"}, "date_out_of_range")):
        r = await client.get("/subsidy-lines", headers=FIN_A, params={"district": district, **params})
        assert r.status_code == 422 and r.json()["code"] == code, (params, r.text)


async def test_r42_1_line_work_list_pages_by_keyset_cursor_bound_to_its_filters(app, client) -> None:
    district = new_district()
    days = [date(2026, 2, d) for d in (2, 2, 5, 9, 9, 12, 20)]  # ties on the day: the id breaks them
    await lines_in(app, client, district, days)
    everything = [i["id"] for i in (await listed(client, "/subsidy-lines", district=district, limit=200))["items"]]
    for sort in ("activity_date", "-activity_date"):
        seen, cursor = [], None
        while True:
            params = {"district": district, "limit": 3, "sort": sort, **({"cursor": cursor} if cursor else {})}
            page = await listed(client, "/subsidy-lines", **params)
            assert page["total"] == 7
            seen += [i["id"] for i in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == (everything if sort == "activity_date" else everything[::-1])
    first = await listed(client, "/subsidy-lines", district=district, limit=3)
    cursor = first["next_cursor"]
    body, _, mac = cursor.partition(".")
    edited = body[:-1] + ("B" if body.endswith("A") else "A") + "." + mac
    for bad, params in ((edited, {}), (cursor, {"status": "draft"}), (cursor, {"sort": "-activity_date"}),
                        (cursor, {"district": new_district()}), ("not-a-cursor", {})):
        r = await client.get("/subsidy-lines", headers=FIN_A,
                             params={"district": district, "limit": 3, "cursor": bad, **params})
        assert r.status_code == 422 and r.json()["code"] == "invalid_cursor", (params, r.text)
    # a cursor is the finance user's own when it pages their to-do list (the four-eyes filter names them)
    mine = await listed(client, "/subsidy-lines", district=district, limit=3, actionable="true")
    r = await client.get("/subsidy-lines", headers=FIN_B, params={"district": district, "limit": 3,
                                                                 "actionable": "true", "cursor": mine["next_cursor"]})
    assert r.status_code == 422 and r.json()["code"] == "invalid_cursor"


async def test_r43_1_travel_claim_work_list_by_state_district_and_four_eyes(app, client) -> None:
    district = new_district()
    await fund(client, 2026, district)
    first, second = await appointed(app, district), await appointed(app, district, name="钱进")
    with clock.frozen(APRIL):
        claims = []
        for sid, day in ((first, date(2026, 4, 1)), (second, date(2026, 4, 3))):
            r = await client.post("/travel-claims", headers=FIN_A, json=claim_body(sid, day))
            assert r.status_code == 201, r.text
            claims.append(r.json())
        await with_receipts(client, claims[0])
        assert (await client.post(f"/travel-claims/{claims[0]['id']}/check", headers=FIN_A)).status_code == 200
    page = await listed(client, "/travel-claims", district=district, sort="travel_date")
    assert [(i["id"], i["status"], i["waiting_for"], i["may_act"]) for i in page["items"]] == [
        (claims[0]["id"], "checked", "approve", False), (claims[1]["id"], "draft", "check", True)]
    assert page["items"][0]["supervisor_name"] == "孙丽" and len(page["items"][0]["items"]) == 2
    other_user = await listed(client, "/travel-claims", headers=FIN_B, district=district, actionable="true",
                              sort="travel_date")
    assert [i["id"] for i in other_user["items"]] == [c["id"] for c in claims]
    assert [i["id"] for i in (await listed(client, "/travel-claims", district=district, actionable="true"))["items"]
            ] == [claims[1]["id"]]
    assert (await listed(client, "/travel-claims", district=district, status="checked"))["total"] == 1
    assert (await listed(client, "/travel-claims", district=district, **{"from": "2026-04-02"}))["total"] == 1
    assert (await listed(client, "/travel-claims", district=district, purpose_kind="meeting"))["total"] == 0
    assert (await listed(client, "/travel-claims", headers=district_token(district)))["total"] == 2
    newest = await listed(client, "/travel-claims", district=district, limit=1)
    assert newest["items"][0]["id"] == claims[1]["id"] and newest["next_cursor"]
    rest = await listed(client, "/travel-claims", district=district, limit=1, cursor=newest["next_cursor"])
    assert [i["id"] for i in rest["items"]] == [claims[0]["id"]] and rest["next_cursor"] is None
    for params in ({"status": "lost"}, {"purpose_kind": "holiday"}, {"from": "2026-05-01", "to": "2026-04-01"},
                   {"cursor": newest["next_cursor"], "sort": "travel_date"}):
        r = await client.get("/travel-claims", headers=FIN_A, params={"district": district, **params})
        assert r.status_code == 422, params


async def test_r42_1_r43_1_deadlines_lines_to_check_and_approve_table_due_and_claims(app, client) -> None:
    district = new_district()
    await fund(client, 2026, district)
    sid = await appointed(app, district)
    draft, checked, approved = await lines_in(app, client, district, [date(2026, 3, 2), date(2026, 3, 3),
                                                                      date(2026, 3, 4)])
    assert (await client.post(f"/subsidy-lines/{checked['id']}/check", headers=FIN_A)).status_code == 200
    await approve(client, approved["id"])
    with clock.frozen(APRIL):
        r = await client.post("/travel-claims", headers=FIN_A, json=claim_body(sid, date(2026, 3, 30)))
        assert r.status_code == 201, r.text
        claim = r.json()
        r = await client.get("/deadlines", headers=FIN_A, params={"district": district})
        assert r.status_code == 200, r.text
        mine = {i["kind"]: i for i in r.json()["items"] if i["district"] == district}
        assert set(mine) == {"lines_to_check", "lines_to_approve", "table_due", "claim_to_check"}
        assert {(i["rule"], i["due_on"], i["state"]) for i in mine.values()} == {
            ("R42.1", "2026-04-10", "upcoming"), ("R43.1", "2026-04-10", "upcoming")}
        assert mine["claim_to_check"]["rule"] == "R43.1" and mine["claim_to_check"]["subject_id"] == claim["id"]
        assert "1 条" in mine["lines_to_check"]["title"] and "400.00" in mine["lines_to_check"]["title"]
        assert mine["lines_to_approve"]["roles"] == ["finance", "bureau_admin"]
        # R2.1: another district's bureau does not see them; this district's does
        other = (await client.get("/deadlines", headers=district_token(new_district()))).json()["items"]
        assert not [i for i in other if i["district"] == district]
        own = (await client.get("/deadlines", headers=district_token(district))).json()["items"]
        assert {i["kind"] for i in own if i["district"] == district} == set(mine)
        await issue(client, "2026-03", district)
        after = (await client.get("/deadlines", headers=FIN_A, params={"district": district})).json()["items"]
        assert "table_due" not in {i["kind"] for i in after if i["district"] == district}
    with clock.frozen(datetime(2026, 4, 11, 9, 0, tzinfo=clock.SHANGHAI)):
        r = await client.get("/deadlines", headers=FIN_A, params={"district": district, "state": "overdue"})
        assert {i["kind"] for i in r.json()["items"] if i["district"] == district} == {
            "lines_to_check", "lines_to_approve", "claim_to_check"}
    assert draft["status"] == "draft"  # the line counted as to check


async def test_r42_1_r43_1_statistics_of_paid_subsidies_by_month_district_and_kind(app, client) -> None:
    district = new_district()
    await fund(client, 2026, district)
    sid = await appointed(app, district)
    hearing = await lines_in(app, client, district, [date(2026, 3, 2), date(2026, 3, 9)])
    briefing = await lines_in(app, client, district, [date(2026, 3, 16)], activity_type="work_briefing")
    unpaid = await lines_in(app, client, district, [date(2026, 3, 20)])
    for line in [*hearing, *briefing, *unpaid]:
        await approve(client, line["id"])
    with clock.frozen(APRIL):
        claim = (await client.post("/travel-claims", headers=FIN_A, json=claim_body(sid, date(2026, 3, 31)))).json()
        await with_receipts(client, claim)
        assert (await client.post(f"/travel-claims/{claim['id']}/check", headers=FIN_A)).status_code == 200
        assert (await client.post(f"/travel-claims/{claim['id']}/approve", headers=FIN_B)).status_code == 200
        await issue(client, "2026-03", district)
        await covering_letter(client, "2026-03", district)
        for line in [*hearing, *briefing]:
            assert (await pay(client, line["id"])).status_code == 200
        r = await client.post(f"/travel-claims/{claim['id']}/pay", headers=FIN_A, json={"payment_reference": "T-1"})
        assert r.status_code == 200, r.text
    stats = await listed(client, "/statistics/subsidies", year=2026, district=district)
    assert stats["total"] == {"count": 4, "amount_fen": 40_000 * 2 + 15_000 + 102_000, "amount_yuan": "1970.00"}
    assert stats["subsidy"] == {"count": 3, "amount_fen": 95_000, "amount_yuan": "950.00"}
    assert stats["travel"] == {"count": 1, "amount_fen": 102_000, "amount_yuan": "1020.00"}
    assert len(stats["by_month"]) == 12 and {m["month"]: m["count"] for m in stats["by_month"] if m["count"]} == {4: 4}
    assert stats["by_district"] == [{"district": district, "count": 4, "amount_fen": 197_000, "amount_yuan": "1970.00"}]
    assert {k["kind"]: (k["label"], k["amount_yuan"]) for k in stats["by_kind"]} == {
        "public_hearing": ("公开听证/公开审查", "800.00"), "work_briefing": ("工作通报", "150.00"),
        "travel": ("差旅费", "1020.00")}
    april = await listed(client, "/statistics/subsidies", year=2026, month=4, district=district)
    assert april["by_month"] == [{"month": 4, "count": 4, "amount_fen": 197_000, "amount_yuan": "1970.00"}]
    assert (await listed(client, "/statistics/subsidies", year=2026, month=3, district=district))["total"]["count"] == 0
    # R2.1: a district bureau sees its own district; the auditor and the bureau any
    own = await listed(client, "/statistics/subsidies", headers=district_token(district), year=2026)
    assert own["district"] == district and own["total"]["amount_fen"] == 197_000
    assert (await listed(client, "/statistics/subsidies", headers=AUDITOR, year=2026, district=district)
            )["total"]["count"] == 4
    citywide = await listed(client, "/statistics/subsidies", headers=ADMIN, year=2026)
    assert citywide["total"]["amount_fen"] >= 197_000
    assert {"district": district, "count": 4, "amount_fen": 197_000, "amount_yuan": "1970.00"} \
        in citywide["by_district"]
    other = await client.get("/statistics/subsidies", headers=district_token(district),
                             params={"year": 2026, "district": "环翠区"})
    assert other.status_code == 403 and other.json()["code"] == "R2.1"
    for params in ({}, {"year": 2023}, {"year": 2026, "month": 13}, {"year": "twenty"}):
        r = await client.get("/statistics/subsidies", headers=FIN_A, params=params)
        assert r.status_code == 422 and r.json()["code"] == "validation_error", params
    assert (await client.get("/statistics/subsidies", headers=supervisor_token(sid),
                             params={"year": 2026})).status_code == 403

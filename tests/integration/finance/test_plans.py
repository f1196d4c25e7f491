"""R41.1: the procuratorate's annual plan (supervisor-activities), the budget, spend and the budget check."""

import uuid
from datetime import date

from tests.integration.finance.helpers import (
    ADMIN,
    FIN_A,
    FIN_B,
    approve,
    deliver,
    feedback,
    fund,
    line_of,
    new_district,
    procuratorate,
)

YEAR = 2026


async def test_r41_1_plan_budget_in_supervisor_activities_and_spend_per_month(app, client) -> None:
    district = new_district()
    office = f"{district}人民检察院"
    token = procuratorate(office, district)
    rows = [{"month": 3, "activity_type": "public_hearing", "count": 2, "seats": 3},
            {"month": 3, "activity_type": "work_briefing", "count": 1, "seats": 2},
            {"month": 7, "activity_type": "other", "count": 4, "seats": 1}]
    put = await client.put(f"/plans/{YEAR}", headers=token, json={"rows": rows})
    assert put.status_code == 200, put.text
    assert put.json()["office"] == office and len(put.json()["rows"]) == 3

    async def rate(activity_type: str, month: int) -> int:
        r = await client.get("/rates/in-force", headers=FIN_A,
                             params={"activity_type": activity_type, "on": str(date(YEAR, month, 1))})
        return r.json()["amount_fen"]

    budget = await client.get(f"/plans/{YEAR}/budget", headers=token)
    assert budget.status_code == 200, budget.text
    body = budget.json()
    allowance = body["travel_allowance_per_activity_fen"]
    # subsidy is paid per supervisor: 2 hearings × 3 supervisors + 1 briefing × 2 supervisors
    march = 6 * (await rate("public_hearing", 3) + allowance) + 2 * (await rate("work_briefing", 3) + allowance)
    july = 4 * (await rate("other", 7) + allowance)
    months = {m["month"]: m for m in body["months"]}
    assert (months[3]["budget_fen"], months[7]["budget_fen"], months[1]["budget_fen"]) == (march, july, 0)
    assert body["total_budget_fen"] == march + july == body["total_remaining_fen"]
    assert (months[3]["planned_activities"], months[3]["planned_supervisor_activities"]) == (3, 8)

    # spend: approved lines of the district count, drafts and other districts do not
    approved = feedback(activity_date=date(YEAR, 3, 10), district=district)
    draft = feedback(activity_date=date(YEAR, 3, 11), district=district)
    elsewhere = feedback(activity_date=date(YEAR, 3, 12), district=new_district())
    for event in (approved, draft, elsewhere):
        await deliver(app, event)
    [line] = await line_of(client, approved.supervisor_id)
    await approve(client, line["id"])
    mine = (await client.get(f"/plans/{YEAR}/budget", headers=token)).json()
    assert mine["months"][2]["spend_fen"] == line["amount_fen"]
    assert mine["months"][2]["remaining_fen"] == march - line["amount_fen"]
    assert mine["total_remaining_fen"] == march + july - line["amount_fen"]
    # finance reading one office's plan sees that district's spend
    theirs = (await client.get(f"/plans/{YEAR}/budget", headers=FIN_A, params={"office": office})).json()
    assert theirs["district"] == district and theirs["months"][2]["spend_fen"] == line["amount_fen"]

    # resubmission replaces the rows
    again = await client.put(f"/plans/{YEAR}", headers=token, json={"rows": rows[:1]})
    assert [r["activity_type"] for r in again.json()["rows"]] == ["public_hearing"]


async def test_r41_1_an_approval_over_the_budget_needs_a_second_finance_user_with_a_reason(app, client) -> None:
    district = new_district()
    # one hearing with two supervisors: 2 × (400 + 50) = 900 yuan
    await fund(client, YEAR, district, count=1, seats=2)
    events = [feedback(activity_date=date(YEAR, 4, 2), district=district) for _ in range(3)]
    lines = []
    for event in events:
        await deliver(app, event)
        [line] = await line_of(client, event.supervisor_id)
        lines.append(line)
    assert {line["amount_fen"] for line in lines} == {40_000}
    await approve(client, lines[0]["id"])
    await approve(client, lines[1]["id"])
    url = f"/subsidy-lines/{lines[2]['id']}"
    assert (await client.post(f"{url}/check", headers=FIN_A)).status_code == 200
    over = await client.post(f"{url}/approve", headers=FIN_B)
    assert over.status_code == 409 and over.json()["code"] == "R41.1"
    assert "剩余100.00元" in over.json()["detail"]
    assert (await client.post(f"{url}/budget-excess", headers=ADMIN, json={"reason": " "})).status_code == 422
    excess = await client.post(f"{url}/budget-excess", headers=ADMIN,
                               json={"reason": "本月公开听证增加，追加预算已报批"})
    assert excess.status_code == 200 and excess.json()["excess_approved_by"] == "admin-carol"
    # the user who approved the excess may not also be the approver
    assert (await client.post(f"{url}/approve", headers=ADMIN)).json()["code"] == "self_approval"
    done = await client.post(f"{url}/approve", headers=FIN_B)
    assert done.status_code == 200 and done.json()["status"] == "approved"
    budget = (await client.get(f"/plans/{YEAR}/budget", headers=procuratorate(f"{district}人民检察院", district))
              ).json()
    assert budget["total_remaining_fen"] == 90_000 - 120_000


async def test_r41_1_no_plan_means_no_budget(app, client) -> None:
    event = feedback(activity_date=date(YEAR, 4, 3), district=new_district())
    await deliver(app, event)
    [line] = await line_of(client, event.supervisor_id)
    assert (await client.post(f"/subsidy-lines/{line['id']}/check", headers=FIN_A)).status_code == 200
    refused = await client.post(f"/subsidy-lines/{line['id']}/approve", headers=FIN_B)
    assert refused.status_code == 409 and refused.json()["code"] == "R41.1"
    assert (await client.get(f"/subsidy-lines/{line['id']}", headers=FIN_A)).json()["status"] == "checked"


async def test_r41_1_procuratorate_sees_only_its_own_plan(client) -> None:
    a, b = f"A院-{uuid.uuid4().hex[:6]}", f"B院-{uuid.uuid4().hex[:6]}"
    rows = {"rows": [{"month": 1, "activity_type": "court_support", "count": 1, "seats": 2}]}
    assert (await client.put(f"/plans/{YEAR}", headers=procuratorate(a, "环翠区"), json=rows)).status_code == 200
    assert (await client.put(f"/plans/{YEAR}", headers=procuratorate(b, "文登区"), json=rows)).status_code == 200
    seen_by_b = await client.get(f"/plans/{YEAR}", headers=procuratorate(b, "文登区"))
    assert [p["office"] for p in seen_by_b.json()] == [b]
    assert (await client.get(f"/plans/{YEAR}", headers=procuratorate(b, "文登区"),
                             params={"office": a})).status_code == 403
    assert (await client.get(f"/plans/{YEAR}/budget", headers=procuratorate(b, "文登区"),
                             params={"office": a})).status_code == 403
    all_plans = await client.get(f"/plans/{YEAR}", headers=FIN_A)
    assert {p["office"] for p in all_plans.json()} >= {a, b}
    assert (await client.put(f"/plans/{YEAR}", headers=FIN_A, json=rows)).status_code == 403
    bad = await client.put(f"/plans/{YEAR}", headers=procuratorate(a, "环翠区"),
                           json={"rows": [{"month": 13, "activity_type": "other", "count": 1, "seats": 1}]})
    assert bad.status_code == 422
    no_seats = await client.put(f"/plans/{YEAR}", headers=procuratorate(a, "环翠区"),
                                json={"rows": [{"month": 1, "activity_type": "other", "count": 1}]})
    assert no_seats.status_code == 422

"""R41.1: the procuratorate's annual plan, the budget estimate and spend per month."""

import random
import uuid
from datetime import date

from tests.integration.finance.helpers import FIN_A, approve, deliver, feedback, line_of
from tests.support.apps import bearer


def procuratorate(office: str, district: str = "环翠区") -> dict[str, str]:
    return bearer("procuratorate", subject=f"proc-{office}", district=district, office=office)


async def test_r41_1_plan_budget_and_spend_per_month(app, client) -> None:
    year = random.Random(uuid.uuid4().int).randint(2200, 2899)
    office = f"环翠区人民检察院-{uuid.uuid4().hex[:6]}"
    token = procuratorate(office)
    rows = [{"month": 3, "activity_type": "public_hearing", "count": 2},
            {"month": 3, "activity_type": "work_briefing", "count": 1},
            {"month": 7, "activity_type": "other", "count": 4}]
    put = await client.put(f"/plans/{year}", headers=token, json={"rows": rows})
    assert put.status_code == 200, put.text
    assert put.json()["office"] == office and len(put.json()["rows"]) == 3

    async def rate(activity_type: str, month: int) -> int:
        r = await client.get("/rates/in-force", headers=FIN_A,
                             params={"activity_type": activity_type, "on": str(date(year, month, 1))})
        return r.json()["amount_fen"]

    budget = await client.get(f"/plans/{year}/budget", headers=token)
    assert budget.status_code == 200, budget.text
    body = budget.json()
    allowance = body["travel_allowance_per_activity_fen"]
    march = 2 * (await rate("public_hearing", 3) + allowance) + (await rate("work_briefing", 3) + allowance)
    july = 4 * (await rate("other", 7) + allowance)
    months = {m["month"]: m for m in body["months"]}
    assert (months[3]["budget_fen"], months[7]["budget_fen"], months[1]["budget_fen"]) == (march, july, 0)
    assert body["total_budget_fen"] == march + july
    assert months[3]["planned_activities"] == 3

    # spend: approved and paid lines of the month count, drafts do not
    paid = feedback(activity_date=date(year, 3, 10), district="环翠区")
    draft = feedback(activity_date=date(year, 3, 11), district="环翠区")
    elsewhere = feedback(activity_date=date(year, 3, 12), district="文登区")
    for event in (paid, draft, elsewhere):
        await deliver(app, event)
    [line] = await line_of(client, paid.supervisor_id)
    await approve(client, line["id"], pay=True)
    [far] = await line_of(client, elsewhere.supervisor_id)
    await approve(client, far["id"])
    mine = {m["month"]: m for m in (await client.get(f"/plans/{year}/budget", headers=token)).json()["months"]}
    assert mine[3]["spend_fen"] == line["amount_fen"]  # the procuratorate sees its district's spend
    assert mine[3]["remaining_fen"] == march - line["amount_fen"]
    citywide = {m["month"]: m for m in (await client.get(f"/plans/{year}/budget", headers=FIN_A)).json()["months"]}
    assert citywide[3]["spend_fen"] == line["amount_fen"] + far["amount_fen"]

    # resubmission replaces the rows
    again = await client.put(f"/plans/{year}", headers=token, json={"rows": rows[:1]})
    assert [r["activity_type"] for r in again.json()["rows"]] == ["public_hearing"]


async def test_r41_1_procuratorate_sees_only_its_own_plan(client) -> None:
    year = random.Random(uuid.uuid4().int).randint(2200, 2899)
    a, b = f"A院-{uuid.uuid4().hex[:6]}", f"B院-{uuid.uuid4().hex[:6]}"
    rows = {"rows": [{"month": 1, "activity_type": "court_support", "count": 1}]}
    assert (await client.put(f"/plans/{year}", headers=procuratorate(a), json=rows)).status_code == 200
    assert (await client.put(f"/plans/{year}", headers=procuratorate(b, "文登区"), json=rows)).status_code == 200
    seen_by_b = await client.get(f"/plans/{year}", headers=procuratorate(b, "文登区"))
    assert [p["office"] for p in seen_by_b.json()] == [b]
    assert (await client.get(f"/plans/{year}", headers=procuratorate(b, "文登区"),
                             params={"office": a})).status_code == 403
    assert (await client.get(f"/plans/{year}/budget", headers=procuratorate(b, "文登区"),
                             params={"office": a})).status_code == 403
    all_plans = await client.get(f"/plans/{year}", headers=FIN_A)
    assert {p["office"] for p in all_plans.json()} >= {a, b}
    assert (await client.put(f"/plans/{year}", headers=FIN_A, json=rows)).status_code == 403
    bad = await client.put(f"/plans/{year}", headers=procuratorate(a),
                           json={"rows": [{"month": 13, "activity_type": "other", "count": 1}]})
    assert bad.status_code == 422

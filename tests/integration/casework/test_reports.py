"""Reports to the bureau: participation within 3 working days (R20.1), monthly transmittal (R20.2)."""

import uuid
from datetime import UTC, datetime, timedelta

from services.casework import rules
from shared.calendar import default_calendar
from tests.support.apps import bearer
from tests.support.casework_helpers import proc, staffed_activity, supervisor

ADMIN = bearer("bureau_admin", subject="bureau-1")


def _office() -> str:
    return f"测试检察院{uuid.uuid4().hex[:6]}"


async def _sign_all(client, staffed: dict) -> None:
    aid = staffed["activity_id"]
    for sid in staffed["supervisors"]:
        response = await client.put(f"/activities/{aid}/opinions/{sid}", headers=staffed["headers"],
                                    json={"text": "同意"})
        assert response.status_code == 200, response.text
    for sid in staffed["supervisors"]:
        response = await client.post(f"/activities/{aid}/feedback-form/signatures", headers=supervisor(sid), json={})
        assert response.status_code == 200, response.text


async def test_r20_1_participation_report_due_three_working_days_and_overdue_list(cw, producer):
    app, client = cw
    office = _office()
    today = datetime.now(UTC).date()
    past = default_calendar.add_working_days(today, -10).value
    late = await staffed_activity(client, producer, n=1, office=office, start_day=past, app=app)
    reported = await staffed_activity(client, producer, n=1, office=office, start_day=past, app=app)
    response = await client.post(f"/activities/{reported['activity_id']}/participation-report",
                                 headers=proc(office), json={"note": "已通报"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["due_on"] == default_calendar.add_working_days(past, 3).value.isoformat()
    assert body["on_time"] is False  # reported 10 working days after
    overdue = (await client.get("/reports/participation/overdue", headers=ADMIN)).json()
    ids = {o["activity_id"]: o for o in overdue}
    assert late["activity_id"] in ids and ids[late["activity_id"]]["reported_on"] is None
    assert reported["activity_id"] in ids  # late reports stay listed as overdue
    # as of the activity day itself nothing is overdue yet
    early = (await client.get("/reports/participation/overdue", headers=ADMIN,
                              params={"as_of": past.isoformat()})).json()
    assert late["activity_id"] not in {o["activity_id"] for o in early}
    again = await client.post(f"/activities/{reported['activity_id']}/participation-report",
                              headers=proc(office), json={})
    assert again.status_code == 409


async def test_r20_2_monthly_transmittal_due_by_the_4th_and_overdue_list(cw, producer):
    app, client = cw
    office = _office()
    today = datetime.now(UTC).date()
    last_month = rules.previous_month(today)
    day = last_month + timedelta(days=10)
    staffed = await staffed_activity(client, producer, n=1, office=office, start_day=day, app=app)
    await _sign_all(client, staffed)
    due = rules.transmittal_due(last_month)
    overdue = (await client.get("/reports/transmittals/overdue", headers=ADMIN,
                                params={"as_of": (due + timedelta(days=1)).isoformat()})).json()
    mine = [o for o in overdue if o["office"] == office]
    assert mine == [{"office": office, "month": last_month.strftime("%Y-%m"), "due_on": due.isoformat(),
                     "forms": 1, "sent_on": None}]
    on_due = (await client.get("/reports/transmittals/overdue", headers=ADMIN,
                               params={"as_of": due.isoformat()})).json()
    assert office not in {o["office"] for o in on_due}
    response = await client.post("/transmittals", headers=proc(office), json={"month": last_month.strftime("%Y-%m")})
    assert response.status_code == 201, response.text
    sent = response.json()
    assert sent["due_on"] == due.isoformat() and len(sent["form_ids"]) == 1
    assert sent["on_time"] is (today <= due)
    current = await client.post("/transmittals", headers=proc(office), json={"month": today.strftime("%Y-%m")})
    assert current.status_code == 422 and current.json()["code"] == "R20.2"

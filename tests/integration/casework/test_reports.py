"""Reports to the bureau: participation within 3 working days (R20.1), monthly transmittal (R20.2)."""

import uuid
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.dialects.postgresql import insert

from services.casework import rules
from services.casework.models import activity, participation_report, roster, supervision_request
from shared import clock
from shared.calendar import default_calendar
from tests.support import pdf as read
from tests.support.apps import bearer
from tests.support.casework_helpers import DISTRICT, proc, staffed_activity, supervisor

ADMIN = bearer("bureau_admin", subject="bureau-1")
OVERDUE = "/reports/participation/overdue"


def _office() -> str:
    return f"测试检察院{uuid.uuid4().hex[:6]}"


def _at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=clock.SHANGHAI)


async def _sign(client, staffed: dict, who: list[str] | None = None) -> None:
    aid = staffed["activity_id"]
    for sid in staffed["supervisors"]:
        response = await client.put(f"/activities/{aid}/opinions/{sid}", headers=staffed["headers"],
                                    json={"text": "同意"})
        assert response.status_code in (200, 409), response.text  # 409: the form is already frozen
    for sid in who or staffed["supervisors"]:
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
    overdue = (await client.get(OVERDUE, headers=ADMIN, params={"office": office})).json()
    ids = {o["activity_id"]: o for o in overdue["items"]}
    assert overdue["total"] == 2
    assert late["activity_id"] in ids and ids[late["activity_id"]]["reported_on"] is None
    assert reported["activity_id"] in ids  # late reports stay listed as overdue
    # as of the activity day itself nothing unreported is overdue yet
    early = (await client.get(OVERDUE, headers=ADMIN, params={"as_of": past.isoformat(), "office": office})).json()
    assert late["activity_id"] not in {o["activity_id"] for o in early["items"]}
    # the first day after the due date it is
    due = date.fromisoformat(body["due_on"])
    on_due = (await client.get(OVERDUE, headers=ADMIN, params={"as_of": due.isoformat(), "office": office})).json()
    day_after = (await client.get(OVERDUE, headers=ADMIN, params={
        "as_of": (due + timedelta(days=1)).isoformat(), "office": office})).json()
    assert late["activity_id"] not in {o["activity_id"] for o in on_due["items"]}
    assert late["activity_id"] in {o["activity_id"] for o in day_after["items"]}
    again = await client.post(f"/activities/{reported['activity_id']}/participation-report",
                              headers=proc(office), json={})
    assert again.status_code == 409
    bad = await client.get(OVERDUE, headers=ADMIN, params={"as_of": "0001-01-01"})
    assert bad.status_code == 422


async def test_r20_1_overdue_found_by_the_query_past_a_thousand_older_activities(cw, producer):
    """The list reads what is overdue, not the 1 000 oldest ended activities: the current one is found."""
    app, client = cw
    office = _office()
    old_end = _at(date(2025, 3, 3), 12)
    ids = [uuid.uuid4() for _ in range(1001)]
    async with app.state.db.transaction() as session:  # 1 001 ended long ago with supervisors, reported on time
        await session.execute(insert(activity), [
            {"id": i, "case_ref": f"旧案{n}", "activity_type": "public_hearing", "office": office,
             "district": DISTRICT, "starts_at": old_end - timedelta(hours=2) + timedelta(minutes=n),
             "ends_at": old_end + timedelta(minutes=n), "place": "听证室", "created_by": "sql"}
            for n, i in enumerate(ids)])
        await session.execute(insert(supervision_request), [
            {"id": i, "activity_id": i, "seats": 1, "requested_at": old_end - timedelta(days=10),
             "requested_by": "sql", "status": "staffed"} for i in ids])
        await session.execute(insert(roster), [
            {"request_id": i, "supervisor_id": uuid.uuid4(), "activity_id": i, "name": "旧", "phone_encrypted": "x",
             "phone_masked": "139****0000", "district": DISTRICT, "group": "local", "draw_order": 1,
             "confirmed_at": old_end - timedelta(days=5)} for i in ids])
        await session.execute(insert(participation_report), [
            {"activity_id": i, "due_on": date(2025, 3, 6), "reported_by": "sql", "reported_at": old_end}
            for i in ids])
    past = default_calendar.add_working_days(clock.today(), -10).value
    current = await staffed_activity(client, producer, n=1, office=office, start_day=past, app=app)
    page = (await client.get(OVERDUE, headers=ADMIN, params={"office": office, "limit": 10})).json()
    assert page["total"] == 1 and [o["activity_id"] for o in page["items"]] == [current["activity_id"]]


async def test_r20_1_overdue_list_is_paged_oldest_end_first(cw, producer):
    app, client = cw
    office = _office()
    days = [default_calendar.add_working_days(clock.today(), -k).value for k in (12, 11, 10)]
    made = [await staffed_activity(client, producer, n=1, office=office, start_day=d, app=app) for d in days]
    first = (await client.get(OVERDUE, headers=ADMIN, params={"office": office, "limit": 2})).json()
    second = (await client.get(OVERDUE, headers=ADMIN, params={"office": office, "limit": 2, "offset": 2})).json()
    assert first["total"] == second["total"] == 3 and first["limit"] == 2
    assert [o["activity_id"] for o in first["items"] + second["items"]] == [m["activity_id"] for m in made]
    # a district bureau sees its district only
    other = bearer("district_bureau", subject="d-1", district="文登区")
    assert (await client.get(OVERDUE, headers=other, params={"office": office})).json()["total"] == 0


async def test_r20_2_due_on_the_5th_moved_to_a_working_day_and_overdue_list(cw, producer):
    app, client = cw
    office = _office()
    today = clock.today()
    last_month = rules.previous_month(today)
    staffed = await staffed_activity(client, producer, n=1, office=office, start_day=last_month + timedelta(days=10),
                                     app=app)
    await _sign(client, staffed)
    due, _ = rules.transmittal_due(last_month, app.state.calendar)
    assert due >= rules.next_month(last_month).replace(day=5) and app.state.calendar.is_working_day(due).value
    overdue = (await client.get("/reports/transmittals/overdue", headers=ADMIN,
                                params={"as_of": (due + timedelta(days=1)).isoformat()})).json()
    mine = [o for o in overdue if o["office"] == office]
    assert mine == [{"office": office, "month": last_month.strftime("%Y-%m"), "due_on": due.isoformat(),
                     "forms": 1, "sent_on": None}]
    on_due = (await client.get("/reports/transmittals/overdue", headers=ADMIN,
                               params={"as_of": due.isoformat()})).json()
    assert office not in {o["office"] for o in on_due}  # the due day itself is on time (inclusive)
    response = await client.post("/transmittals", headers=proc(office), json={"month": last_month.strftime("%Y-%m")})
    assert response.status_code == 201, response.text
    sent = response.json()
    assert sent["due_on"] == due.isoformat() and len(sent["form_ids"]) == 1 and sent["signatures"] == 1
    assert sent["on_time"] is (today <= due)
    # the cover letter (函) in the official layout, issued once with its 文号
    letter = await client.get(f"/transmittals/{sent['id']}.pdf", headers=ADMIN)
    assert letter.status_code == 200 and letter.headers["content-type"] == "application/pdf"
    text = read.text(letter.content)
    month = f"{last_month.year}年{last_month.month}月"
    for field in (office, f"关于转送{month}人民监督员履职情况反馈表的函", "威海市司法局：",
                  "共1份（人民监督员签字1人次）",
                  f"附件：《{rules.FORM_TITLE}》1份", f"威检监函〔{today.year}〕", "— 1 —",
                  f"{today.year}年{today.month}月{today.day}日"):
        assert field in text, field
    assert (await client.get(f"/transmittals/{sent['id']}.pdf", headers=proc(office))).content == letter.content
    other = await client.get(f"/transmittals/{sent['id']}.pdf", headers=proc(_office()))
    assert other.status_code == 403
    current = await client.post("/transmittals", headers=proc(office), json={"month": today.strftime("%Y-%m")})
    assert current.status_code == 422 and current.json()["code"] == "R20.2"


async def test_r20_2_october_national_day_transmittal_due_on_the_8th(cw, producer):
    app, client = cw
    office = _office()
    staffed = await staffed_activity(client, producer, n=1, office=office, start_day=date(2026, 9, 15), app=app)
    with clock.frozen(_at(date(2026, 9, 15), 12)):
        await _sign(client, staffed)
    url = "/reports/transmittals/overdue"
    on_the_8th = (await client.get(url, headers=ADMIN, params={"as_of": "2026-10-08"})).json()
    assert office not in {o["office"] for o in on_the_8th}  # 5 October is in the holiday: due Thursday 8 October
    on_the_9th = (await client.get(url, headers=ADMIN, params={"as_of": "2026-10-09"})).json()
    assert [o for o in on_the_9th if o["office"] == office] == [
        {"office": office, "month": "2026-09", "due_on": "2026-10-08", "forms": 1, "sent_on": None}]
    with clock.frozen(_at(date(2026, 10, 8))):
        response = await client.post("/transmittals", headers=proc(office), json={"month": "2026-09"})
    assert response.status_code == 201, response.text
    assert response.json()["due_on"] == "2026-10-08" and response.json()["on_time"] is True
    after = (await client.get(url, headers=ADMIN, params={"as_of": "2026-10-09"})).json()
    assert office not in {o["office"] for o in after}


async def test_r20_2_a_form_signed_after_the_months_transmittal_is_carried_into_the_next(cw, producer):
    app, client = cw
    office = _office()
    staffed = await staffed_activity(client, producer, n=2, office=office, start_day=date(2026, 10, 20), app=app)
    a, b = staffed["supervisors"]
    with clock.frozen(_at(date(2026, 10, 20), 12)):
        await _sign(client, staffed, [a])
    with clock.frozen(_at(date(2026, 11, 3))):
        october = await client.post("/transmittals", headers=proc(office), json={"month": "2026-10"})
    assert october.status_code == 201, october.text
    assert october.json()["signatures"] == 1 and october.json()["carried_over"] == []
    form_id = october.json()["form_ids"][0]
    with clock.frozen(_at(date(2026, 11, 10))):  # b signs after October's transmittal went
        await _sign(client, staffed, [b])
    url = "/reports/transmittals/overdue"
    owed = [o for o in (await client.get(url, headers=ADMIN, params={"as_of": "2026-12-08"})).json()
            if o["office"] == office]
    assert owed == [{"office": office, "month": "2026-11", "due_on": "2026-12-07", "forms": 1, "sent_on": None}]
    with clock.frozen(_at(date(2026, 12, 4))):
        november = await client.post("/transmittals", headers=proc(office), json={"month": "2026-11"})
    assert november.status_code == 201, november.text
    body = november.json()
    assert body["form_ids"] == [form_id] and body["carried_over"] == [form_id] and body["signatures"] == 1
    assert body["due_on"] == "2026-12-07" and body["on_time"] is True
    assert office not in {o["office"] for o in (await client.get(url, headers=ADMIN,
                                                                 params={"as_of": "2026-12-08"})).json()}

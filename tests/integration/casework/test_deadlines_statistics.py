"""Casework's deadlines (GET /deadlines: R15.1, R17.1, R20.1, R20.2, shared/deadlines.py) and the statistics the
bureau reports upward (GET /statistics/activities, issue 14), with data made through the API."""

import uuid
from datetime import date, datetime, time, timedelta

from shared import clock
from shared.calendar import default_calendar
from tests.support.apps import bearer
from tests.support.casework_helpers import activity_body, during, proc, staffed_activity, supervisor

ADMIN = bearer("bureau_admin", subject="bureau-1")
PROBLEM = "application/problem+json"


def _place() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:6]
    return f"期限区{tag}", f"期限检察院{tag}"


def _at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=clock.SHANGHAI)


def _problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == code and not body["title"].isascii(), body
    return body


async def _deadlines(client, headers: dict, **params) -> dict[tuple[str, str], dict]:
    response = await client.get("/deadlines", headers=headers, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert not body["truncated"] and body["total"] == len(body["items"])
    return {(item["rule"], item["subject_id"]): item for item in body["items"]}


async def _opinions(client, staffed: dict) -> None:
    for sid in staffed["supervisors"]:
        response = await client.put(f"/activities/{staffed['activity_id']}/opinions/{sid}",
                                    headers=staffed["headers"], json={"text": "同意检察机关的处理意见"})
        assert response.status_code == 200, response.text


async def _sign(client, staffed: dict, sid: str) -> None:
    response = await client.post(f"/activities/{staffed['activity_id']}/feedback-form/signatures",
                                 headers=supervisor(sid), json={})
    assert response.status_code == 200, response.text


async def test_r15_1_r17_1_deadlines_of_an_upcoming_staffed_activity(cw, producer):
    _, client = cw
    district, office = _place()
    staffed = await staffed_activity(client, producer, n=2, office=office, district=district)
    aid, act = staffed["activity_id"], staffed["activity"]
    starts, ends = datetime.fromisoformat(act["starts_at"]), datetime.fromisoformat(act["ends_at"])
    items = await _deadlines(client, ADMIN, district=district, within_days=60)
    materials = items[("R15.1", aid)]
    assert materials["kind"] == "materials_due" and materials["state"] == "upcoming"
    assert materials["due_on"] == starts.astimezone(clock.SHANGHAI).date().isoformat()
    assert datetime.fromisoformat(materials["due_at"]) == starts
    assert materials["roles"] == ["procuratorate"] and materials["district"] == district
    assert not materials["title"].isascii() and "R15.1" in materials["title"]
    signing = items[("R17.1", aid)]
    assert signing["kind"] == "signature_due" and "2名" in signing["title"]
    assert signing["due_on"] == ends.astimezone(clock.SHANGHAI).date().isoformat()
    report_due = default_calendar.add_working_days(ends.astimezone(clock.SHANGHAI).date(), 3).value
    assert items[("R20.1", aid)]["due_on"] == report_due.isoformat()
    # the procuratorate sees its district's items without naming it; nobody else's district shows up
    own = await _deadlines(client, proc(office, district), within_days=60)
    assert set(own) == set(items) and {i["district"] for i in own.values()} == {district}
    # a short horizon leaves out what falls due later; a role that does not act sees none of them
    assert await _deadlines(client, ADMIN, district=district, within_days=0) == {}
    assert await _deadlines(client, ADMIN, district=district, within_days=60, role="bureau_admin") == {}
    response = await client.post(f"/activities/{aid}/materials", headers=staffed["headers"],
                                 json={"title": "案件基本情况", "content_type": "text/plain", "text": "案情简介"})
    assert response.status_code == 201, response.text
    items = await _deadlines(client, ADMIN, district=district, within_days=60)
    assert ("R15.1", aid) not in items and ("R17.1", aid) in items


async def test_r17_1_r20_1_r20_2_deadlines_overdue_then_done(cw, producer):
    app, client = cw
    district, office = _place()
    day = date(2026, 9, 15)
    staffed = await staffed_activity(client, producer, n=2, office=office, district=district, start_day=day, app=app)
    aid, (first, second) = staffed["activity_id"], staffed["supervisors"]
    with clock.frozen(_at(day, 12)):
        await _opinions(client, staffed)
        await _sign(client, staffed, first)
    transmittal = f"{office}/2026-09"
    with clock.frozen(_at(date(2026, 10, 9))):
        items = await _deadlines(client, ADMIN, district=district)
        assert {key for key in items} == {("R17.1", aid), ("R20.1", aid), ("R20.2", transmittal)}
        signing, report, sending = items[("R17.1", aid)], items[("R20.1", aid)], items[("R20.2", transmittal)]
        assert (signing["due_on"], signing["state"]) == ("2026-09-15", "overdue") and "1名" in signing["title"]
        assert (report["due_on"], report["state"], report["kind"]) == ("2026-09-18", "overdue",
                                                                        "participation_report_due")
        # R20.2: due on the 5th, which is in the National Day holiday: Thursday 8 October
        assert (sending["due_on"], sending["state"], sending["kind"]) == ("2026-10-08", "overdue", "transmittal_due")
        assert sending["subject_type"] == "transmittal" and sending["district"] == district
        assert "1份" in sending["title"]
        overdue_only = await _deadlines(client, ADMIN, district=district, state="overdue")
        assert set(overdue_only) == set(items)
    with clock.frozen(_at(date(2026, 10, 8))):
        assert (await _deadlines(client, ADMIN, district=district))[("R20.2", transmittal)]["state"] == "due"
    with clock.frozen(_at(date(2026, 9, 30))):
        ahead = await _deadlines(client, ADMIN, district=district, within_days=8)
        assert ahead[("R20.2", transmittal)]["state"] == "upcoming"
        assert ("R20.2", transmittal) not in await _deadlines(client, ADMIN, district=district, within_days=7)
    with clock.frozen(_at(date(2026, 10, 9))):
        response = await client.post(f"/activities/{aid}/participation-report", headers=staffed["headers"], json={})
        assert response.status_code == 201, response.text
        assert set(await _deadlines(client, ADMIN, district=district)) == {("R17.1", aid), ("R20.2", transmittal)}
        await _sign(client, staffed, second)
        assert set(await _deadlines(client, ADMIN, district=district)) == {("R20.2", transmittal)}
        response = await client.post("/transmittals", headers=staffed["headers"], json={"month": "2026-09"})
        assert response.status_code == 201, response.text
        assert await _deadlines(client, ADMIN, district=district) == {}


async def test_r2_1_deadlines_are_scoped_to_the_district(cw):
    _, client = cw
    district, _ = _place()
    other, _ = _place()
    district_bureau = bearer("district_bureau", subject="d-1", district=district)
    _problem(await client.get("/deadlines", headers=district_bureau, params={"district": other}), 403, "R2.1")
    assert (await client.get("/deadlines", headers=district_bureau)).status_code == 200
    for bad in ({"within_days": -1}, {"within_days": 367}, {"state": "late"}, {"role": "clerk"}):
        _problem(await client.get("/deadlines", headers=ADMIN, params=bad), 422, "validation_error")
    assert (await client.get("/deadlines", headers=supervisor(uuid.uuid4()))).status_code == 403


async def _activity(client, district: str, office: str, day: date, **extra) -> dict:
    response = await client.post("/activities", headers=proc(office, district),
                                 json=activity_body(office=office, district=district, start_day=day, **extra))
    assert response.status_code == 201, response.text
    return response.json()


async def test_activity_statistics_by_type_district_and_month(cw, producer):
    _, client = cw
    district, office = _place()
    year = clock.today().year + 1
    march, may = date(year, 3, 9), date(year, 5, 11)
    await staffed_activity(client, producer, n=2, office=office, district=district, start_day=march)
    plain = await _activity(client, district, office, march + timedelta(days=1))
    dropped = await _activity(client, district, office, may, activity_type="work_briefing")
    response = await client.post(f"/activities/{dropped['id']}/cancel", headers=proc(office, district),
                                 json={"reason": "活动取消"})
    assert response.status_code == 200, response.text
    await _activity(client, district, office, may + timedelta(days=2), activity_type="circuit_inspection",
                    mandatory_invitation=True)
    with during(plain):
        response = await client.post(f"/activities/{plain['id']}/hold", headers=proc(office, district))
    assert response.status_code == 200, response.text
    await _activity(client, district, office, date(year + 1, 1, 4))  # another year: not counted

    async def stats(headers=ADMIN, **params) -> dict:
        response = await client.get("/statistics/activities", headers=headers, params={"year": year, **params})
        assert response.status_code == 200, response.text
        return response.json()

    zero = {"activities": 0, "held": 0, "cancelled": 0, "mandatory": 0, "supervised": 0, "participations": 0}
    by_type = await stats(district=district, group_by="activity_type")
    assert by_type["group_by"] == ["activity_type"] and by_type["district"] == district
    assert by_type["rows"] == [
        {"activity_type": "circuit_inspection", "activity_type_label": "巡回检察", **zero, "activities": 1,
         "mandatory": 1},
        {"activity_type": "public_hearing", "activity_type_label": "公开听证/公开审查", **zero, "activities": 2,
         "held": 1, "supervised": 1, "participations": 2},
        {"activity_type": "work_briefing", "activity_type_label": "工作通报", **zero, "cancelled": 1},
    ]
    assert by_type["totals"] == {"activities": 3, "held": 1, "cancelled": 1, "mandatory": 1, "supervised": 1,
                                 "participations": 2}
    by_month = await stats(district=district, group_by=["month", "district"])
    assert by_month["group_by"] == ["district", "month"]
    assert [(r["district"], r["month"], r["activities"], r["cancelled"]) for r in by_month["rows"]] == [
        (district, 3, 2, 0), (district, 5, 1, 1)]
    may_only = await stats(district=district, month=5, group_by="office")
    assert may_only["rows"] == [{"office": office, **zero, "activities": 1, "cancelled": 1, "mandatory": 1}]
    assert (await stats(district=district, month=4))["rows"] == []
    # the default groups: type and district; a district bureau sees its district without naming it
    district_bureau = bearer("district_bureau", subject="d-1", district=district)
    own = await stats(headers=district_bureau)
    assert own["group_by"] == ["activity_type", "district"] and {r["district"] for r in own["rows"]} == {district}
    assert own["totals"] == by_type["totals"]
    assert (await stats(headers=bearer("auditor"), district=district))["totals"] == by_type["totals"]
    city = await stats(group_by="district")
    assert next(r for r in city["rows"] if r["district"] == district)["activities"] == 3


async def test_activity_statistics_bad_parameters_and_roles(cw):
    _, client = cw
    district, office = _place()
    url = "/statistics/activities"
    for bad in ({}, {"year": 2023}, {"year": 2101}, {"year": "二〇二六"}, {"year": 2026, "month": 0},
                {"year": 2026, "month": 13}, {"year": 2026, "group_by": "supervisor"}, {"year": 2026, "district": ""}):
        _problem(await client.get(url, headers=ADMIN, params=bad), 422, "validation_error")
    district_bureau = bearer("district_bureau", subject="d-1", district=district)
    _problem(await client.get(url, headers=district_bureau, params={"year": 2026, "district": district + "x"}),
             403, "R2.1")
    assert (await client.get(url, headers=proc(office, district), params={"year": 2026})).status_code == 403
    assert (await client.get(url, headers=supervisor(uuid.uuid4()), params={"year": 2026})).status_code == 403

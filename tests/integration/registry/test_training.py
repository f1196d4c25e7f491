"""Training: sessions, attendance, exams, eligibility (R22.1–R24.1)."""

from datetime import date, timedelta

from shared import clock
from tests.support.apps import bearer
from tests.support.registry_helpers import ADMIN, appointed, record, session


async def all_ids(client, url: str, headers=ADMIN) -> set[str]:
    """Every id of a list: by its cursor (the roster lists) or by offset (the short training lists)."""
    ids, offset, cursor = set(), 0, None
    while True:
        sep = "&" if "?" in url else "?"
        paging = f"cursor={cursor}" if cursor else f"offset={offset}"
        page = (await client.get(f"{url}{sep}limit=200&{paging}", headers=headers)).json()
        ids |= {item["id"] for item in page["items"]}
        if "next_cursor" in page:
            cursor = page["next_cursor"]
            if cursor is None:
                return ids
            continue
        offset += 200
        if offset >= page["total"]:
            return ids


async def test_r22_3_eligible_only_after_initial_exam_passed(client):
    sup = await appointed(client)
    assert sup["eligible"] is False and sup["training_state"] == "pending"
    response = await record(client, await session(client), sup["id"])
    assert response.status_code == 200 and response.json() == {"recorded": 1}
    after = (await client.get(f"/supervisors/{sup['id']}", headers=ADMIN)).json()
    assert after["eligible"] is True and after["eligibility_reasons"] == []
    assert after["training_state"] == "trained" and after["initial_passed_on"] == clock.today().isoformat()
    history = (await client.get(f"/supervisors/{sup['id']}/training", headers=ADMIN)).json()
    assert history[0]["kind"] == "initial" and history[0]["exam_passed"] is True


async def test_r22_3_annual_training_does_not_make_eligible(client):
    sup = await appointed(client)
    await record(client, await session(client, "annual"), sup["id"])
    assert (await client.get(f"/supervisors/{sup['id']}", headers=ADMIN)).json()["eligible"] is False


async def test_r22_1_initial_training_overdue_list(client):
    late = await appointed(client, decision_date=clock.today() - timedelta(days=70), district="文登区")
    fresh = await appointed(client, decision_date=clock.today() - timedelta(days=10), district="文登区")
    assert late["training_state"] == "overdue"
    overdue = await all_ids(client, "/training/overdue")
    assert late["id"] in overdue and fresh["id"] not in overdue
    assert late["id"] in await all_ids(client, "/supervisors?training_state=overdue")
    district = bearer("district_bureau", district="文登区")
    assert late["id"] in await all_ids(client, "/training/overdue", headers=district)
    assert late["id"] not in await all_ids(client, "/training/overdue", headers=bearer("district_bureau",
                                                                                            district="荣成市"))
    await record(client, await session(client), late["id"])
    assert late["id"] not in await all_ids(client, "/training/overdue")


async def test_r22_2_failed_or_missed_initial_requires_makeup(client):
    failed, missed = await appointed(client), await appointed(client)
    initial = await session(client)
    await record(client, initial, failed["id"], exam_passed=False)
    await record(client, initial, missed["id"], attended=False, exam_passed=None)
    needing = await all_ids(client, "/training/makeup-needed")
    assert {failed["id"], missed["id"]} <= needing
    refused = await record(client, await session(client), failed["id"])
    assert refused.status_code == 409 and refused.json()["code"] == "R22.2"
    makeup = await session(client, "makeup")
    assert (await record(client, makeup, failed["id"])).status_code == 200
    assert (await client.get(f"/supervisors/{failed['id']}", headers=ADMIN)).json()["eligible"] is True
    needing = await all_ids(client, "/training/makeup-needed")
    assert failed["id"] not in needing and missed["id"] in needing


async def test_training_result_errors(client):
    sup = await appointed(client)
    course = await session(client)
    contradictory = await record(client, course, sup["id"], attended=False, exam_passed=True)
    assert contradictory.status_code == 422 and contradictory.json()["code"] == "invalid_training_result"
    assert (await record(client, course, sup["id"], exam_passed=False)).status_code == 200
    duplicate = await record(client, course, sup["id"])
    assert duplicate.status_code == 409
    bad_format = await client.post("/training/sessions", headers=ADMIN, json={
        "kind": "initial", "format": "party", "title": "x", "held_on": "2025-01-01", "hours": 2})
    assert bad_format.status_code == 422


async def test_r23_1_annual_check_lists_absentees(client):
    year = clock.today().year
    attended = await appointed(client, decision_date=date(year, 1, 1))
    absent = await appointed(client, decision_date=date(year, 1, 1))
    annual = await session(client, "annual", held_on=date(year, 1, 2), fmt="seminar")
    await record(client, annual, attended["id"], exam_passed=None)
    absentees = await all_ids(client, f"/training/annual-check?year={year}")
    assert absent["id"] in absentees and attended["id"] not in absentees
    # a year outside their terms lists neither
    earlier = await all_ids(client, f"/training/annual-check?year={year - 1}")
    assert absent["id"] not in earlier
    assert (await client.get("/training/annual-check", headers=ADMIN)).status_code == 422
    sessions = (await client.get(f"/training/sessions?year={year}&limit=200", headers=ADMIN)).json()
    assert sessions["total"] >= 1


async def test_r21_1_term_training_is_a_kind_held_once_per_term(client):
    sup = await appointed(client, district="荣成市")
    other = await appointed(client, district="荣成市")
    pending = await all_ids(client, "/training/term-pending")
    assert {sup["id"], other["id"]} <= pending
    course = await session(client, "term", fmt="lecture")
    assert (await record(client, course, sup["id"], exam_passed=None)).status_code == 200
    history = (await client.get(f"/supervisors/{sup['id']}/training", headers=ADMIN)).json()
    assert [h["kind"] for h in history] == ["term"]
    pending = await all_ids(client, "/training/term-pending")
    assert sup["id"] not in pending and other["id"] in pending
    # once per term: a second term-training attendance in the same term is refused
    again = await record(client, await session(client, "term", fmt="seminar"), sup["id"], exam_passed=None)
    assert again.status_code == 409 and again.json()["code"] == "R21.1"
    assert again.headers["content-type"] == "application/problem+json"
    # a term-training session outside the current term does not count for it
    outside = await session(client, "term", held_on=date.fromisoformat(sup["term_start"]) - timedelta(days=1))
    refused = await record(client, outside, other["id"], exam_passed=None)
    assert refused.status_code == 409 and refused.json()["code"] == "R21.1"
    # term training is not the initial course (R22.3)
    assert (await client.get(f"/supervisors/{sup['id']}", headers=ADMIN)).json()["eligible"] is False


async def test_r23_1_only_a_centralized_annual_or_term_session_meets_the_yearly_training(client):
    year = clock.today().year
    people = {name: await appointed(client, decision_date=date(year, 1, 1))
              for name in ("online", "initial", "annual", "term", "none")}
    held = date(year, 1, 3)
    sessions = {"online": await session(client, "annual", held_on=held, fmt="online"),
                "initial": await session(client, "initial", held_on=held, fmt="lecture"),
                "annual": await session(client, "annual", held_on=held, fmt="field_study"),
                "term": await session(client, "term", held_on=held, fmt="case_teaching")}
    for name, course in sessions.items():
        assert (await record(client, course, people[name]["id"])).status_code == 200
    absentees = await all_ids(client, f"/training/annual-check?year={year}")
    assert {people[n]["id"] for n in ("online", "initial", "none")} <= absentees
    assert not {people[n]["id"] for n in ("annual", "term")} & absentees


async def test_r22_2_a_session_reads_back_who_was_recorded_by_name_a_district_its_own_people_only(client):
    """What the console's session page shows (R22.2: who attended, who passed the exam): names and results of
    the session; a district bureau sees its district's people only (R2.1); an unknown session is a 404."""
    here, there = await appointed(client, district="文登区"), await appointed(client, district="荣成市")
    course = await session(client)
    await record(client, course, here["id"])
    await record(client, course, there["id"], attended=False, exam_passed=None)
    detail = (await client.get(f"/training/sessions/{course}", headers=ADMIN)).json()
    assert detail["id"] == course and detail["kind"] == "initial"
    by_id = {r["supervisor_id"]: r for r in detail["results"]}
    assert by_id[here["id"]]["name"] == here["name"] and by_id[here["id"]]["exam_passed"] is True
    assert by_id[there["id"]]["attended"] is False and by_id[there["id"]]["district"] == "荣成市"
    assert all(r["recorded_by"] for r in detail["results"])
    district = (await client.get(f"/training/sessions/{course}",
                                 headers=bearer("district_bureau", district="文登区"))).json()
    assert [r["supervisor_id"] for r in district["results"]] == [here["id"]]
    missing = await client.get("/training/sessions/00000000-0000-4000-8000-000000000000", headers=ADMIN)
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")
    supervisor = bearer("supervisor", supervisor_id=here["id"])
    assert (await client.get(f"/training/sessions/{course}", headers=supervisor)).status_code == 403

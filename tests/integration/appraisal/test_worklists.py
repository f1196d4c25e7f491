"""The appraisal work list (GET /rounds: pending step, who acts, since when; filters; keyset paging; R2.1), its
deadlines (GET /deadlines: R29.1, R34.1(5), R34.1(6), R35.1) and result statistics, through the HTTP API on a
database of its own (`fresh`) with the server's clock frozen."""

import uuid
from datetime import date, timedelta

from shared import clock
from tests.integration.appraisal.flow import (
    defence,
    grade,
    open_round,
    open_term,
    people,
    remind,
    step,
    to_district_proposed,
    to_notice,
)
from tests.integration.appraisal.helpers import ADMIN, AUDITOR, at, district_token, self_token


async def rounds(client, headers=ADMIN, **params) -> dict:
    r = await client.get("/rounds", headers=headers, params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def deadlines(client, headers=ADMIN, **params) -> list[dict]:
    r = await client.get("/deadlines", headers=headers, params={"within_days": 90, **params})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def kinds(items: list[dict]) -> set[str]:
    return {i["kind"] for i in items}


async def test_r34_1_work_list_shows_each_rounds_pending_step_with_who_and_since(fresh) -> None:
    app, client = fresh
    with clock.frozen(at(2025, 12, 2)):
        local = await people(app, 2)
        far = await people(app, 1, district="荣成市")
        annual = await open_round(client, local + far)
        ending = await people(app, 2, term_start=date(2021, 1, 1), term_end=date(2025, 12, 31))
        term = await open_term(client, ending, date(2021, 1, 1), date(2025, 12, 31))
    with clock.frozen(at(2025, 12, 3)):
        await step(client, annual, "self_summaries")
    page = await rounds(client)
    assert page["total"] == 2 and page["next_cursor"] is None
    by_id = {i["id"]: i for i in page["items"]}
    moved = by_id[annual]
    assert moved["state"] == "self_summaries" and moved["since_by"] == "admin-appraisal"
    assert moved["since"].startswith("2025-12-03")
    assert moved["pending"]["action"] == "reviewed" and "procuratorate" in moved["pending"]["roles"]
    assert moved["appraised"] == 3 and moved["period"] == "2025年度"
    waiting = by_id[term]
    assert waiting["state"] == "opened" and waiting["pending"]["roles"] == ["supervisor", "bureau_admin"]
    assert waiting["since"].startswith("2025-12-02")
    # filters: kind, state, year (a term round covers every year of its term), who must act
    assert [i["id"] for i in (await rounds(client, kind="term"))["items"]] == [term]
    assert [i["id"] for i in (await rounds(client, state="opened"))["items"]] == [term]
    assert {i["id"] for i in (await rounds(client, year=2025))["items"]} == {annual, term}
    assert [i["id"] for i in (await rounds(client, year=2024))["items"]] == [term]
    assert [i["id"] for i in (await rounds(client, role="procuratorate"))["items"]] == [annual]
    assert (await rounds(client, role="district_bureau"))["total"] == 0
    # R2.1: a district bureau sees the rounds its district's people take part in, with their count
    seen = await rounds(client, headers=district_token("荣成市"))
    assert [i["id"] for i in seen["items"]] == [annual] and seen["items"][0]["appraised_in_district"] == 1
    other = await client.get("/rounds", headers=district_token("荣成市"), params={"district": "环翠区"})
    assert other.status_code == 403 and other.json()["code"] == "R2.1"
    assert (await rounds(client, headers=AUDITOR, district="环翠区"))["total"] == 2


async def test_r34_1_work_list_pages_by_stable_keyset_cursor_and_refuses_tampering(fresh) -> None:
    app, client = fresh
    with clock.frozen(at(2025, 12, 2)):
        expected = [await open_round(client, await people(app, 1))]
        for i in range(3):
            ids = await people(app, 1, term_start=date(2020 + i, 1, 1), term_end=date(2024 + i, 12, 31))
            expected.append(await open_term(client, ids, date(2020 + i, 1, 1), date(2024 + i, 12, 31)))
    first = await rounds(client, limit=2, sort="created_at")
    assert first["total"] == 4 and len(first["items"]) == 2 and first["next_cursor"]
    second = await rounds(client, limit=2, sort="created_at", cursor=first["next_cursor"])
    assert second["next_cursor"] is None
    assert [i["id"] for i in first["items"] + second["items"]] == [
        i["id"] for i in (await rounds(client, sort="created_at"))["items"]]
    assert sorted(i["id"] for i in first["items"] + second["items"]) == sorted(expected)
    newest_first = await rounds(client, sort="-created_at")
    assert [i["id"] for i in newest_first["items"]] == [i["id"] for i in first["items"] + second["items"]][::-1]
    # a cursor edited, or reused with other filters or sort, is refused; so are unknown filter values
    cursor = first["next_cursor"]
    body, _, mac = cursor.partition(".")
    for bad, params in ((body + "x." + mac, {"sort": "created_at"}), (cursor, {"sort": "-created_at"}),
                        (cursor, {"sort": "created_at", "kind": "term"}), ("garbage", {"sort": "created_at"})):
        r = await client.get("/rounds", headers=ADMIN, params={"limit": 2, "cursor": bad, **params})
        assert r.status_code == 422 and r.json()["code"] == "invalid_cursor", r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    for params in ({"state": "archived"}, {"kind": "monthly"}, {"year": 1999}, {"sort": "name"},
                   {"role": "finance"}, {"limit": 0}):
        r = await client.get("/rounds", headers=ADMIN, params=params)
        assert r.status_code == 422 and r.json()["code"] == "validation_error", params


async def test_r29_1_r34_1_r35_1_deadlines_of_rounds_terms_and_defence_windows(fresh) -> None:
    app, client = fresh
    with clock.frozen(at(2025, 12, 2)):
        # R29.1: the 2025 annual round is due (year end or early next year) and nobody opened it yet
        due = [i for i in await deadlines(client) if i["kind"] == "annual_round_due"]
        assert [(i["rule"], i["subject_id"], i["due_on"], i["state"]) for i in due] == [
            ("R29.1", "2025", "2026-01-31", "upcoming")]
        # R29.1: a term ending soon without its term round, in its district only
        ending = await people(app, 2, district="文登区", term_start=date(2021, 1, 20), term_end=date(2026, 1, 19))
        term = [i for i in await deadlines(client) if i["kind"] == "term_round_due"]
        assert [(i["district"], i["due_on"]) for i in term] == [("文登区", "2026-01-19")] and "2 名" in term[0]["title"]
        assert "term_round_due" not in kinds(await deadlines(client, headers=district_token("荣成市")))
        assert "term_round_due" in kinds(await deadlines(client, headers=district_token("文登区")))
        # R35.1: an unqualified proposal told to the person opens a defence window
        weak, fine = await people(app, 2)
        await remind(client, weak, date(2025, 6, 1), 2, uncorrected_on=date(2025, 9, 1))
        round_id = await open_round(client, [weak, fine])
        assert "annual_round_due" not in kinds(await deadlines(client))
        await open_term(client, ending, date(2021, 1, 20), date(2026, 1, 19))
        assert "term_round_due" not in kinds(await deadlines(client))
        await step(client, round_id, "self_summaries")
        await step(client, round_id, "reviewed")
        assert (await grade(client, round_id, weak, "unqualified", [2])).status_code == 200
        sent = await defence(client, round_id, weak)
        window = [i for i in await deadlines(client, role="supervisor")]
        assert [(i["rule"], i["kind"], i["subject_id"], i["due_on"], i["district"]) for i in window] == [
            ("R35.1", "defence_window_ends", f"{round_id}/{weak}", sent["window_end"], "环翠区")]
        assert window[0]["roles"] == ["supervisor", "bureau_admin"]
        r = await client.post(f"/rounds/{round_id}/participants/{weak}/statement", headers=self_token(weak),
                              json={"text": "本人无异议", "final": True})
        assert r.status_code == 200, r.text
        assert "defence_window_ends" not in kinds(await deadlines(client))


async def test_r34_1_public_notice_end_and_the_results_entry_and_report_deadlines(fresh) -> None:
    app, client = fresh
    with clock.frozen(at(2025, 12, 2)):
        sid = (await people(app, 1))[0]
        round_id = await open_round(client, [sid])
        await to_district_proposed(client, round_id)
        assert (await grade(client, round_id, sid, "qualified")).status_code == 200
        noticed = await to_notice(client, round_id)
        notice = [i for i in await deadlines(client) if i["subject_id"] == round_id]
        assert [(i["rule"], i["kind"]) for i in notice] == [("R34.1", "finalize_after_notice")]
        assert date.fromisoformat(notice[0]["due_on"]) == date.fromisoformat(noticed["notice_end"]) + timedelta(days=1)
        listed = (await rounds(client))["items"][0]
        assert listed["pending"]["action"] == "finalized"
        assert listed["pending"]["not_before"] == notice[0]["due_on"]
    with clock.frozen(at(2025, 12, 15)):
        done = await step(client, round_id, "finalized")
        items = {i["kind"]: i for i in await deadlines(client, within_days=30) if i["subject_id"] == round_id}
        assert set(items) == {"results_entry_due", "results_report_due"}
        assert items["results_entry_due"]["due_on"] == done["entered_by"]
        assert items["results_report_due"]["due_on"] == done["reported_by"]
        assert (await rounds(client))["items"][0]["pending"]["action"] == "entered"
        r = await client.post(f"/rounds/{round_id}/deadlines/entered/done", headers=ADMIN)
        assert r.status_code == 200, r.text
        items = {i["kind"] for i in await deadlines(client, within_days=30) if i["subject_id"] == round_id}
        assert items == {"results_report_due"}
        assert (await rounds(client, role="bureau_admin"))["items"][0]["pending"]["action"] == "reported"
    with clock.frozen(at(2026, 1, 20)):
        overdue = [i for i in await deadlines(client, state="overdue") if i["subject_id"] == round_id]
        assert [i["kind"] for i in overdue] == ["results_report_due"]
        await client.post(f"/rounds/{round_id}/deadlines/reported/done", headers=ADMIN)
        assert not [i for i in await deadlines(client) if i["subject_id"] == round_id]
        assert (await rounds(client))["items"][0]["pending"] is None
        assert (await rounds(client, role="bureau_admin"))["total"] == 0


async def test_r30_1_result_statistics_by_year_grade_and_district(fresh) -> None:
    app, client = fresh
    with clock.frozen(at(2025, 12, 2)):
        local = await people(app, 2)
        far = await people(app, 1, district="荣成市")
        round_id = await open_round(client, local + far)
        await to_district_proposed(client, round_id, ("环翠区", "荣成市"))
        for sid, value in zip(local + far, ("qualified", "basically_qualified", "qualified"), strict=True):
            assert (await grade(client, round_id, sid, value)).status_code == 200
        await to_notice(client, round_id)
        r = await client.get("/statistics/results", headers=ADMIN, params={"year": 2025})
        assert r.status_code == 200 and r.json()["total"] == 0  # nothing finalized yet
    with clock.frozen(at(2025, 12, 15)):
        await step(client, round_id, "finalized")
    r = await client.get("/statistics/results", headers=ADMIN, params={"year": 2025})
    stats = r.json()
    assert stats["total"] == 3
    assert {g["grade"]: g["count"] for g in stats["by_grade"]} == {
        "excellent": 0, "qualified": 2, "basically_qualified": 1, "unqualified": 0}
    assert {d["district"]: d["grades"]["qualified"] for d in stats["by_district"]} == {"环翠区": 1, "荣成市": 1}
    assert stats["by_year"] == [{"year": 2025, "total": 3, "grades": {
        "excellent": 0, "qualified": 2, "basically_qualified": 1, "unqualified": 0}}]
    # R2.1: a district bureau sees its district's figures only
    own = (await client.get("/statistics/results", headers=district_token("荣成市"))).json()
    assert own["district"] == "荣成市" and own["total"] == 1
    other = await client.get("/statistics/results", headers=district_token("荣成市"), params={"district": "环翠区"})
    assert other.status_code == 403 and other.json()["code"] == "R2.1"
    for params in ({"year": 1900}, {"kind": "monthly"}, {"year": "x"}):
        r = await client.get("/statistics/results", headers=ADMIN, params=params)
        assert r.status_code == 422 and r.json()["code"] == "validation_error"
    supervisor = await client.get("/statistics/results", headers=self_token(uuid.uuid4()))
    assert supervisor.status_code == 403

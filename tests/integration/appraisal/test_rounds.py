"""Annual and term rounds through the HTTP API: R30.1, R32.1, R34.1, R35.1, R36.1, R37.1–R39.1."""

import asyncio
import json
import uuid
from datetime import date, timedelta

from aiokafka import AIOKafkaConsumer
from sqlalchemy import select

from services.appraisal.models import appraisal_round, participant
from services.appraisal.service import today
from shared.events.topics import APPRAISAL_RESULTS
from tests.integration.appraisal.helpers import (
    ADMIN,
    appointed,
    deliver,
    district_token,
    self_token,
    signed,
    term_block,
    trained,
    unique_year,
)

PAST = "2024-01-02"  # a notice that started long ago has ended


async def people(app, n: int, district: str = "环翠区") -> list[uuid.UUID]:
    events = [appointed(district=district, name=f"测试{i}") for i in range(n)]
    await deliver(app, *events)
    return [e.supervisor_id for e in events]


async def open_round(client, ids: list[uuid.UUID], **body) -> str:
    body = {"kind": "annual", "year": unique_year(), **body}
    r = await client.post("/rounds", headers=ADMIN, json={**body, "supervisor_ids": [str(i) for i in ids]})
    assert r.status_code == 201, r.text
    assert r.json()["appraised"] == len(ids)
    return r.json()["id"]


async def step(client, round_id: str, state: str, **body) -> dict:
    r = await client.post(f"/rounds/{round_id}/steps/{state}", headers=ADMIN, json=body or None)
    assert r.status_code == 200, r.text
    return r.json()


async def grade(client, round_id: str, sid: uuid.UUID, value: str, grounds: list[int] | None = None):
    return await client.put(f"/rounds/{round_id}/participants/{sid}/grade", headers=ADMIN,
                            json={"grade": value, "grounds": grounds or []})


async def to_district_proposed(client, round_id: str) -> None:
    for state in ("self_summaries", "reviewed", "district_proposed"):
        await step(client, round_id, state)


async def to_notice(client, round_id: str, notice_start: str = PAST) -> None:
    await step(client, round_id, "bureau_proposed", note="已征求市人民检察院意见，无异议")
    await step(client, round_id, "public_notice", notice_start=notice_start)


async def results_of(bootstrap: str, round_id: str, expected: int) -> list[dict]:
    """AppraisalFinalized / CommendationIssued of this round read back from `appraisal.results`."""
    consumer = AIOKafkaConsumer(APPRAISAL_RESULTS, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    seen: list[dict] = []
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while len(seen) < expected and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    body = json.loads(record.value)
                    if body["data"].get("round_id") == round_id:
                        seen.append(body)
    finally:
        await consumer.stop()
    return seen


async def test_r34_1_r37_1_r38_1_r39_1_full_annual_round_publishes_results(app, client, kafka_bootstrap) -> None:
    ids = await people(app, 7)
    best, weak, other_district = ids[0], ids[1], (await people(app, 1, district="荣成市"))[0]
    ids.append(other_district)  # 8 appraised: floor(15 % × 8) = 1 excellent allowed
    round_id = await open_round(client, ids)
    year = (await client.get(f"/rounds/{round_id}", headers=ADMIN)).json()["year"]
    await deliver(app, *[signed(best, date(year, m, 3), adopted=True) for m in (2, 3, 4)],
                  trained(best, date(year, 5, 5), hours=12))
    await client.post(f"/ledger/{weak}/conduct", headers=ADMIN, json={
        "kind": "reminder", "text": "长期失联，已提醒", "occurred_on": f"{year}-06-01", "ground": 2})

    # (1) self-summary: the supervisor's own, in the first step only
    r = await client.put(f"/rounds/{round_id}/participants/{best}/self-summary", headers=self_token(best),
                         json={"text": "全年参加监督活动三次"})
    assert r.status_code == 200 and r.json()["self_summary"] == "全年参加监督活动三次"
    assert (await client.put(f"/rounds/{round_id}/participants/{weak}/self-summary", headers=self_token(best),
                             json={"text": "x"})).status_code == 403
    # out of order: 409
    r = await client.post(f"/rounds/{round_id}/steps/reviewed", headers=ADMIN)
    assert r.status_code == 409 and r.json()["code"] == "invalid_transition"
    await step(client, round_id, "self_summaries")
    late = await client.put(f"/rounds/{round_id}/participants/{best}/self-summary", headers=self_token(best),
                            json={"text": "补充"})
    assert late.status_code == 409 and late.json()["code"] == "R34.1"
    # (2) opinions of the procuratorate and of the employer / community
    for source in ("procuratorate", "employer_community"):
        r = await client.put(f"/rounds/{round_id}/participants/{best}/opinion", headers=ADMIN,
                             json={"source": source, "text": "表现良好"})
        assert r.status_code == 200, r.text
    await step(client, round_id, "reviewed")
    # (3) district proposals: own district only
    r = await client.put(f"/rounds/{round_id}/participants/{best}/district-grade", headers=district_token("环翠区"),
                         json={"grade": "excellent"})
    assert r.status_code == 200, r.text
    r = await client.put(f"/rounds/{round_id}/participants/{other_district}/district-grade",
                         headers=district_token("环翠区"), json={"grade": "qualified"})
    assert r.status_code == 403 and r.json()["code"] == "R2.1"
    await step(client, round_id, "district_proposed")
    # the system proposes (R31.1, R33.1) and flags grounds on record (R32.1)
    proposals = {p["supervisor_id"]: p for p in
                 (await client.get(f"/rounds/{round_id}/proposals", headers=ADMIN)).json()}
    assert proposals[str(best)]["excellent_candidate"] and proposals[str(best)]["proposed_grade"] == "qualified"
    assert proposals[str(ids[2])]["proposed_grade"] == "basically_qualified"
    assert proposals[str(weak)]["unqualified_grounds_on_record"] == [2]
    candidates = (await client.get(f"/rounds/{round_id}/candidates", headers=ADMIN)).json()
    assert candidates["excellent_allowed"] == 1
    assert [c["supervisor_id"] for c in candidates["candidates"]] == [str(best)]
    # (4) the bureau's grades
    refused = await grade(client, round_id, weak, "unqualified", [1])
    assert refused.status_code == 409 and refused.json()["code"] == "R32.1"
    assert (await grade(client, round_id, weak, "unqualified", [2])).status_code == 200
    assert (await grade(client, round_id, best, "excellent")).status_code == 200
    for sid in ids[2:]:
        assert (await grade(client, round_id, sid, "qualified")).status_code == 200
    r = await client.post(f"/rounds/{round_id}/participants/{weak}/defence-notice", headers=ADMIN, json={
        "reasons": "长期失联", "basis": "《办法》第三十二条第（二）项", "sent_on": "2024-03-01"})
    assert r.status_code == 200 and r.json()["window_end"] == "2024-03-11"
    await to_notice(client, round_id)
    rnd = (await client.get(f"/rounds/{round_id}", headers=ADMIN)).json()
    assert "测试0" in rnd["notice_text"] and rnd["notice_end"] == "2024-01-09"
    final = await step(client, round_id, "finalized")
    assert final["state"] == "finalized" and final["finalized_on"] == today().isoformat()
    assert [s["state"] for s in final["steps"]] == ["opened", "self_summaries", "reviewed", "district_proposed",
                                                    "bureau_proposed", "public_notice", "finalized"]
    assert all(s["actor"] == "admin-appraisal" and s["at"] for s in final["steps"])
    assert final["entered_by"] > final["finalized_on"] and final["reported_by"] > final["entered_by"]
    # R37.1 / R38.1: events on appraisal.results
    events = await results_of(kafka_bootstrap, round_id, expected=len(ids) + 1)
    finalized = {e["data"]["supervisor_id"]: e["data"]["grade"] for e in events if e["type"] == "AppraisalFinalized"}
    assert len(finalized) == len(ids) and finalized[str(best)] == "excellent" and finalized[str(weak)] == "unqualified"
    assert [e["data"]["supervisor_id"] for e in events if e["type"] == "CommendationIssued"] == [str(best)]
    assert all(e["data"]["period"] == str(year) for e in events if e["type"] == "AppraisalFinalized")
    # R39.1: four recipients per person, R38.1 commendation
    notices = (await client.get(f"/rounds/{round_id}/notices", headers=ADMIN)).json()
    assert len([n for n in notices if n["kind"] == "result"]) == 4 * len(ids)
    assert [n["recipient"] for n in notices if n["kind"] == "commendation"] == ["public"]
    mine = (await client.get(f"/rounds/{round_id}/notices", headers=self_token(best))).json()
    assert {n["recipient"] for n in mine} == {"person", "employer", "recommending_body", "procuratorate"}
    # R34.1(6): deadlines can be marked done once
    r = await client.post(f"/rounds/{round_id}/deadlines/entered/done", headers=ADMIN)
    assert r.status_code == 200 and r.json()["entered_done_at"]
    assert (await client.post(f"/rounds/{round_id}/deadlines/entered/done", headers=ADMIN)).status_code == 409
    r = await client.post(f"/rounds/{round_id}/steps/finalized", headers=ADMIN)
    assert r.status_code == 409


async def test_r30_1_finalize_refused_above_the_cap(app, client) -> None:
    ids = await people(app, 6)  # floor(15 % × 6) = 0
    round_id = await open_round(client, ids)
    await to_district_proposed(client, round_id)
    assert (await grade(client, round_id, ids[0], "excellent")).status_code == 200
    for sid in ids[1:]:
        await grade(client, round_id, sid, "qualified")
    await to_notice(client, round_id)
    r = await client.post(f"/rounds/{round_id}/steps/finalized", headers=ADMIN)
    assert r.status_code == 409 and r.json()["code"] == "R30.1"
    assert (await client.get(f"/rounds/{round_id}", headers=ADMIN)).json()["state"] == "public_notice"


async def test_r34_1_finalize_refused_during_the_notice_period(app, client) -> None:
    ids = await people(app, 2)
    round_id = await open_round(client, ids)
    await to_district_proposed(client, round_id)
    r = await client.post(f"/rounds/{round_id}/steps/bureau_proposed", headers=ADMIN)
    assert r.status_code == 409 and r.json()["code"] == "grades_missing"
    for sid in ids:
        await grade(client, round_id, sid, "qualified")
    r = await client.post(f"/rounds/{round_id}/steps/bureau_proposed", headers=ADMIN)
    assert r.status_code == 422 and r.json()["code"] == "R34.1"  # the city procuratorate must be consulted
    await to_notice(client, round_id, notice_start=today().isoformat())
    r = await client.post(f"/rounds/{round_id}/steps/finalized", headers=ADMIN)
    assert r.status_code == 409 and r.json()["code"] == "R34.1"


async def test_r35_1_unqualified_refused_until_the_defence_window_closed(app, client) -> None:
    ids = await people(app, 3)
    weak = ids[0]
    round_id = await open_round(client, ids)
    year = (await client.get(f"/rounds/{round_id}", headers=ADMIN)).json()["year"]
    await client.post(f"/ledger/{weak}/conduct", headers=ADMIN, json={
        "kind": "reminder", "text": "无故不参加培训，已提醒", "occurred_on": f"{year}-04-01", "ground": 1})
    await to_district_proposed(client, round_id)
    assert (await grade(client, round_id, weak, "unqualified", [1])).status_code == 200
    for sid in ids[1:]:
        await grade(client, round_id, sid, "qualified")
    await to_notice(client, round_id)
    r = await client.post(f"/rounds/{round_id}/steps/finalized", headers=ADMIN)
    assert r.status_code == 409 and r.json()["code"] == "R35.1"  # never told
    r = await client.post(f"/rounds/{round_id}/participants/{weak}/defence-notice", headers=ADMIN, json={
        "reasons": "无正当理由不参加培训", "basis": "《办法》第三十二条第（一）项", "sent_on": today().isoformat()})
    assert r.status_code == 200
    assert r.json()["window_end"] == (today() + timedelta(days=10)).isoformat()
    r = await client.post(f"/rounds/{round_id}/steps/finalized", headers=ADMIN)
    assert r.status_code == 409 and r.json()["code"] == "R35.1"  # window still open
    r = await client.post(f"/rounds/{round_id}/participants/{weak}/statement", headers=self_token(weak),
                          json={"text": "因病未能参加，附病历", "final": True})
    assert r.status_code == 200 and r.json()["statement"] == "因病未能参加，附病历"
    assert (await step(client, round_id, "finalized"))["state"] == "finalized"
    async with app.state.db.transaction() as session:
        finals = dict((await session.execute(select(participant.c.supervisor_id, participant.c.final_grade)
                                             .where(participant.c.round_id == uuid.UUID(round_id)))).all())
    assert finals[weak] == "unqualified"


async def _annual_history(app, years: list[int], grades: dict[uuid.UUID, list[str | None]]) -> None:
    """Constructed history: one finalized annual round per year, with these grades (inserted directly)."""
    async with app.state.db.transaction() as session:
        for i, year in enumerate(years):
            rid = uuid.uuid4()
            await session.execute(appraisal_round.insert().values(id=rid, kind="annual", year=year,
                                                                  state="finalized", created_by="history"))
            for supervisor_id, values in grades.items():
                if i < len(values) and values[i] is not None:
                    await session.execute(participant.insert().values(round_id=rid, supervisor_id=supervisor_id,
                                                                      final_grade=values[i]))


async def test_r36_1_term_round_uses_the_annual_results(app, client) -> None:
    start = term_block()
    years = list(range(start, start + 5))
    term = {"term_start": date(start, 1, 1), "term_end": date(start + 4, 12, 31)}
    auto, eligible, spoiled, none = [appointed(**term) for _ in range(4)]
    await deliver(app, auto, eligible, spoiled, none)
    await _annual_history(app, years, {
        auto.supervisor_id: ["excellent"] * 4 + ["qualified"],
        eligible.supervisor_id: ["excellent"],
        spoiled.supervisor_id: [None, "excellent", "basically_qualified"],
    })
    ids = [p.supervisor_id for p in (auto, eligible, spoiled, none)]
    round_id = await open_round(client, ids, kind="term", year=None, term_start=term["term_start"].isoformat(),
                                term_end=term["term_end"].isoformat())
    proposals = {p["supervisor_id"]: p for p in
                 (await client.get(f"/rounds/{round_id}/proposals", headers=ADMIN)).json()}
    assert proposals[str(auto.supervisor_id)]["term_excellent_automatic"] is True
    assert proposals[str(eligible.supervisor_id)]["term_excellent_eligible"] is True
    assert proposals[str(spoiled.supervisor_id)]["term_excellent_eligible"] is False
    await to_district_proposed(client, round_id)
    r = await grade(client, round_id, auto.supervisor_id, "qualified")
    assert r.status_code == 200 and r.json()["grade"] == "excellent"  # automatic, whatever is proposed
    assert (await grade(client, round_id, eligible.supervisor_id, "excellent")).json()["grade"] == "excellent"
    for person in (spoiled, none):
        r = await grade(client, round_id, person.supervisor_id, "excellent")
        assert r.status_code == 409 and r.json()["code"] == "R36.1"
        assert (await grade(client, round_id, person.supervisor_id, "qualified")).status_code == 200
    # the 15 % cap applies to term rounds too: 2 excellent of 4 appraised
    await to_notice(client, round_id)
    r = await client.post(f"/rounds/{round_id}/steps/finalized", headers=ADMIN)
    assert r.status_code == 409 and r.json()["code"] == "R30.1"


async def test_r34_1_overdue_entry_and_report_deadlines_are_listed(app, client) -> None:
    ids = await people(app, 1)
    round_id = await open_round(client, ids)
    await to_district_proposed(client, round_id)
    await grade(client, round_id, ids[0], "qualified")
    await to_notice(client, round_id)
    final = await step(client, round_id, "finalized")
    assert final["entered_by"] > final["finalized_on"]
    overdue = (await client.get("/deadlines/overdue", headers=ADMIN)).json()
    assert round_id not in {o["round_id"] for o in overdue}  # not due yet
    async with app.state.db.transaction() as session:  # as if finalized long ago
        await session.execute(appraisal_round.update().where(appraisal_round.c.id == uuid.UUID(round_id)).values(
            finalized_on=date(2025, 9, 30), entered_by=date(2025, 10, 14), reported_by=date(2025, 10, 21)))
    overdue = [o for o in (await client.get("/deadlines/overdue", headers=ADMIN)).json()
               if o["round_id"] == round_id]
    assert {(o["deadline"], o["due"]) for o in overdue} == {("entered", "2025-10-14"), ("reported", "2025-10-21")}
    await client.post(f"/rounds/{round_id}/deadlines/entered/done", headers=ADMIN)
    overdue = [o["deadline"] for o in (await client.get("/deadlines/overdue", headers=ADMIN)).json()
               if o["round_id"] == round_id]
    assert overdue == ["reported"]


async def test_r2_1_district_bureau_sees_only_own_district_in_a_round(app, client) -> None:
    mine, theirs = await people(app, 1, district="临港区"), await people(app, 1, district="文登区")
    round_id = await open_round(client, mine + theirs)
    listed = (await client.get(f"/rounds/{round_id}/participants", headers=district_token("临港区"))).json()
    assert [p["supervisor_id"] for p in listed] == [str(mine[0])]
    proposals = (await client.get(f"/rounds/{round_id}/proposals", headers=district_token("临港区"))).json()
    assert [p["supervisor_id"] for p in proposals] == [str(mine[0])]
    assert (await client.get(f"/rounds/{round_id}/candidates", headers=district_token("临港区"))).status_code == 403


async def test_r36_1_term_round_finalizes_with_automatic_excellence(app, client, kafka_bootstrap) -> None:
    start = term_block()
    term = {"term_start": date(start, 1, 1), "term_end": date(start + 4, 12, 31)}
    persons = [appointed(**term) for _ in range(7)]  # floor(15 % × 7) = 1
    await deliver(app, *persons)
    auto = persons[0].supervisor_id
    await _annual_history(app, list(range(start, start + 5)), {auto: ["excellent"] * 5})
    ids = [p.supervisor_id for p in persons]
    round_id = await open_round(client, ids, kind="term", year=None, term_start=term["term_start"].isoformat(),
                                term_end=term["term_end"].isoformat())
    await to_district_proposed(client, round_id)
    for sid in ids:
        assert (await grade(client, round_id, sid, "qualified")).status_code == 200
    await to_notice(client, round_id)
    assert (await step(client, round_id, "finalized"))["state"] == "finalized"
    events = await results_of(kafka_bootstrap, round_id, expected=len(ids) + 1)
    finalized = {e["data"]["supervisor_id"]: e["data"] for e in events if e["type"] == "AppraisalFinalized"}
    assert finalized[str(auto)]["grade"] == "excellent" and finalized[str(auto)]["kind"] == "term"
    assert finalized[str(auto)]["period"] == f"{start}-01-01–{start + 4}-12-31"
    assert [e["data"]["kind"] for e in events if e["type"] == "CommendationIssued"] == ["term"]


async def test_r29_1_open_round_takes_serving_supervisors_and_adds_later_appointees(app, client) -> None:
    year = unique_year()
    first = appointed(term_start=date(year - 1, 1, 1), term_end=date(year + 3, 12, 31))
    ended = appointed(term_start=date(year - 6, 1, 1), term_end=date(year - 1, 12, 31))
    await deliver(app, first, ended)
    r = await client.post("/rounds", headers=ADMIN, json={"kind": "annual", "year": year})
    assert r.status_code == 201 and r.json()["appraised"] == 1
    round_id = r.json()["id"]
    again = await client.post("/rounds", headers=ADMIN, json={"kind": "annual", "year": year})
    assert again.status_code == 409 and again.json()["code"] == "round_exists"
    later = appointed(term_start=date(year, 3, 1), term_end=date(year + 4, 12, 31))
    await deliver(app, later)
    r = await client.post(f"/rounds/{round_id}/participants/sync", headers=ADMIN)
    assert r.status_code == 200 and r.json()["appraised"] == 2
    listed = {p["supervisor_id"] for p in (await client.get(f"/rounds/{round_id}/participants", headers=ADMIN)).json()}
    assert listed == {str(first.supervisor_id), str(later.supervisor_id)}
    await step(client, round_id, "self_summaries")
    r = await client.post(f"/rounds/{round_id}/participants/sync", headers=ADMIN)
    assert r.status_code == 409 and r.json()["code"] == "R34.1"

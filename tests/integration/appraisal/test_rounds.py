"""Annual and term rounds through the HTTP API, on real years with the server's clock frozen:
R29.1, R30.1, R31.1, R32.1, R34.1, R35.1, R36.1, R37.1–R39.1. Each test has a database of its own (`fresh`)."""

import re
import uuid
from datetime import date

from sqlalchemy import select

from services.appraisal.models import participant, platform
from shared import clock
from tests.integration.appraisal.flow import (
    CRITERIA,
    NOTE,
    annual_history,
    consult,
    defence,
    grade,
    justify,
    open_round,
    open_term,
    people,
    remind,
    results_of,
    step,
    to_district_proposed,
    to_notice,
)
from tests.integration.appraisal.helpers import (
    ADMIN,
    SECOND,
    appointed,
    at,
    deliver,
    district_token,
    self_token,
    signed,
    trained,
)
from tests.support import pdf as read
from tests.support.apps import bearer

WRONG_TITLE = "《威海市人民监督员管理办法》"
TITLE = "《威海市人民监督员履职管理实施办法》"


async def test_r34_1_r37_1_r38_1_r39_1_full_annual_round_publishes_results(fresh, kafka_bootstrap) -> None:
    app, client = fresh
    with clock.frozen(at(2025, 12, 2)):  # a Tuesday: the year's end (R29.1)
        ids = await people(app, 7)
        best, weak, other_district = ids[0], ids[1], (await people(app, 1, district="荣成市"))[0]
        ids.append(other_district)  # 8 appraised: floor(15 % × 8) = 1 excellent allowed
        await deliver(app, *[signed(best, date(2025, m, 3), adopted=True) for m in (2, 3, 4)],
                      trained(best, date(2025, 5, 5), hours=12))
        await remind(client, weak, date(2025, 6, 1), 2, uncorrected_on=date(2025, 9, 1))
        round_id = await open_round(client, ids)
        # (1) self-summary: the supervisor's own, in the first step only
        r = await client.put(f"/rounds/{round_id}/participants/{best}/self-summary", headers=self_token(best),
                             json={"text": "全年参加监督活动三次"})
        assert r.status_code == 200 and r.json()["self_summary"] == "全年参加监督活动三次"
        assert (await client.put(f"/rounds/{round_id}/participants/{weak}/self-summary", headers=self_token(best),
                                 json={"text": "x"})).status_code == 403
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
        # (3) district proposals after consulting the district procuratorate: own district only
        r = await client.put(f"/rounds/{round_id}/participants/{best}/district-grade",
                             headers=district_token("环翠区"), json={"grade": "excellent"})
        assert r.status_code == 200, r.text
        r = await client.put(f"/rounds/{round_id}/participants/{other_district}/district-grade",
                             headers=district_token("环翠区"), json={"grade": "qualified"})
        assert r.status_code == 403 and r.json()["code"] == "R2.1"
        r = await client.put(f"/rounds/{round_id}/districts/环翠区/consultation", headers=district_token("环翠区"),
                             json={"note": "已征求环翠区人民检察院意见"})
        assert r.status_code == 200, r.text
        refused = await client.post(f"/rounds/{round_id}/steps/district_proposed", headers=ADMIN)
        assert refused.status_code == 409 and refused.json()["code"] == "R34.1" and "荣成市" in refused.json()["detail"]
        await consult(client, round_id, "荣成市")
        await step(client, round_id, "district_proposed")
        # the system proposes (R31.1, R33.1) and flags grounds on record (R32.1)
        proposals = {p["supervisor_id"]: p for p in
                     (await client.get(f"/rounds/{round_id}/proposals", headers=ADMIN)).json()}
        assert proposals[str(best)]["excellent_candidate"] and proposals[str(best)]["proposed_grade"] == "qualified"
        assert "3 次" in proposals[str(best)]["excellent_checklist"]["activities"]
        assert proposals[str(ids[2])]["proposed_grade"] == "basically_qualified"
        assert proposals[str(weak)]["unqualified_grounds_on_record"] == [2]
        candidates = (await client.get(f"/rounds/{round_id}/candidates", headers=ADMIN)).json()
        assert candidates["excellent_allowed"] == 1
        assert [c["supervisor_id"] for c in candidates["candidates"]] == [str(best)]
        # (4) the bureau's grades
        refused = await grade(client, round_id, weak, "unqualified", [1])
        assert refused.status_code == 409 and refused.json()["code"] == "R32.1"
        assert (await grade(client, round_id, weak, "unqualified", [2])).status_code == 200
        r = await grade(client, round_id, best, "excellent")
        assert r.status_code == 200 and r.json()["excellent_allowed"] == 1 and r.json()["cap_exceeded"] is False
        for sid in ids[2:]:
            assert (await grade(client, round_id, sid, "qualified")).status_code == 200
        r = await client.post(f"/rounds/{round_id}/steps/bureau_proposed", headers=ADMIN, json={"note": NOTE})
        assert r.status_code == 409 and r.json()["code"] == "R35.1"  # the unqualified person was never told
        sent = await defence(client, round_id, weak)
        assert sent["sent_on"] == "2025-12-02" and sent["window_end"] == "2025-12-12"
        notice = await to_notice(client, round_id)
        assert notice["notice_start"] == "2025-12-02" and notice["notice_end"] == "2025-12-09"
        assert "测试0" in notice["notice_text"] and TITLE in notice["notice_text"]
        assert WRONG_TITLE not in notice["notice_text"]
    with clock.frozen(at(2025, 12, 10)):
        r = await client.post(f"/rounds/{round_id}/steps/finalized", headers=ADMIN)
        assert r.status_code == 409 and r.json()["code"] == "R35.1"  # the defence window runs to Dec 12
        r = await client.post(f"/rounds/{round_id}/participants/{weak}/statement", headers=self_token(weak),
                              json={"text": "因病失联，附病历", "final": True})
        assert r.status_code == 200 and r.json()["statement_final"] is True
        final = await step(client, round_id, "finalized")
    assert final["state"] == "finalized" and final["finalized_on"] == "2025-12-10"
    assert [s["state"] for s in final["steps"]] == ["opened", "self_summaries", "reviewed", "district_proposed",
                                                    "bureau_proposed", "public_notice", "finalized"]
    assert all(s["actor"] == "admin-appraisal" and s["at"] for s in final["steps"])
    assert (final["entered_by"], final["reported_by"]) == ("2025-12-17", "2025-12-24")
    # R37.1 / R38.1: events on appraisal.results
    events = await results_of(kafka_bootstrap, round_id, expected=len(ids) + 1)
    finalized = {e["data"]["supervisor_id"]: e["data"] for e in events if e["type"] == "AppraisalFinalized"}
    assert len(finalized) == len(ids) and finalized[str(best)]["grade"] == "excellent"
    assert finalized[str(weak)]["grade"] == "unqualified" and finalized[str(weak)]["result_version"] == 1
    assert [e["data"]["supervisor_id"] for e in events if e["type"] == "CommendationIssued"] == [str(best)]
    assert all(e["period"] == "2025" for e in finalized.values())
    # R39.1: four recipients per person, R38.1 commendation
    notices = (await client.get(f"/rounds/{round_id}/notices", headers=ADMIN)).json()
    assert len([n for n in notices if n["kind"] == "result"]) == 4 * len(ids)
    assert [n["recipient"] for n in notices if n["kind"] == "commendation"] == ["public"]
    assert all("2025年12月10日" in n["text"] for n in notices)
    mine = (await client.get(f"/rounds/{round_id}/notices", headers=self_token(best))).json()
    assert {n["recipient"] for n in mine} == {"person", "employer", "recommending_body", "procuratorate"}
    await _printed_papers(client, round_id, notices, mine, best, weak)
    # R34.1(6): deadlines can be marked done once
    r = await client.post(f"/rounds/{round_id}/deadlines/entered/done", headers=ADMIN)
    assert r.status_code == 200 and r.json()["entered_done_at"]
    assert (await client.post(f"/rounds/{round_id}/deadlines/entered/done", headers=ADMIN)).status_code == 409
    r = await client.post(f"/rounds/{round_id}/steps/finalized", headers=ADMIN)
    assert r.status_code == 409


async def test_r30_1_above_the_cap_is_flagged_when_graded_and_goes_on_with_an_approved_justification(fresh) -> None:
    """The old dead end: 2 of 10 excellent passed the notice, then finalizing answered 409 for ever."""
    app, client = fresh
    with clock.frozen(at(2025, 12, 2)):
        ids = await people(app, 10)  # floor(15 % × 10) = 1
        round_id = await open_round(client, ids)
        await to_district_proposed(client, round_id)
        assert (await grade(client, round_id, ids[0], "excellent")).json()["cap_exceeded"] is False
        flagged = (await grade(client, round_id, ids[1], "excellent")).json()
        assert (flagged["excellent_count"], flagged["excellent_allowed"], flagged["cap_exceeded"]) == (2, 1, True)
        for sid in ids[2:]:
            await grade(client, round_id, sid, "qualified")
        rnd = (await client.get(f"/rounds/{round_id}", headers=ADMIN)).json()
        assert rnd["cap_exceeded"] is True and rnd["excellent_count"] == 2
        # flagged at step (4), before the public notice, never at finalizing
        r = await client.post(f"/rounds/{round_id}/steps/bureau_proposed", headers=ADMIN, json={"note": NOTE})
        assert r.status_code == 409 and r.json()["code"] == "R30.1"
        r = await client.put(f"/rounds/{round_id}/cap-justification", headers=ADMIN,
                             json={"text": "两人均全年参加活动十次以上，意见多次被采纳"})
        assert r.status_code == 200 and r.json()["cap_justified_count"] == 2
        own = await client.post(f"/rounds/{round_id}/cap-justification/approval", headers=ADMIN)
        assert own.status_code == 409 and own.json()["code"] == "R30.1"  # never by its author
        r = await client.post(f"/rounds/{round_id}/steps/bureau_proposed", headers=ADMIN, json={"note": NOTE})
        assert r.status_code == 409 and r.json()["code"] == "R30.1"  # not approved yet
        r = await client.post(f"/rounds/{round_id}/cap-justification/approval", headers=SECOND)
        assert r.status_code == 200 and r.json()["cap_approved_by"] == "admin-appraisal-2"
        # a third excellent is not covered by the approved justification
        assert (await grade(client, round_id, ids[2], "excellent")).json()["excellent_count"] == 3
        r = await client.post(f"/rounds/{round_id}/steps/bureau_proposed", headers=ADMIN, json={"note": NOTE})
        assert r.status_code == 409 and r.json()["code"] == "R30.1"
        await grade(client, round_id, ids[2], "qualified")
        await to_notice(client, round_id)
    with clock.frozen(at(2025, 12, 10)):
        final = await step(client, round_id, "finalized")
    assert final["state"] == "finalized" and final["excellent_count"] == 2
    history = (await client.get(f"/rounds/{round_id}/history", headers=ADMIN)).json()
    assert [h["actor"] for h in history if h["action"] in ("cap.justified", "cap.approved")] == [
        "admin-appraisal", "admin-appraisal-2"]
    # R38.1: each person's appraisal history shows the round with the grade now that it is final
    mine = (await client.get(f"/supervisors/{ids[1]}/appraisals", headers=ADMIN)).json()
    assert [(a["round_id"], a["state"], a["final_grade"], a["final_grade_label"]) for a in mine] == [
        (round_id, "finalized", "excellent", "优秀")]
    own = bearer("supervisor", subject="s", supervisor_id=str(ids[3]))
    assert [a["final_grade_label"] for a in (await client.get(f"/supervisors/{ids[3]}/appraisals",
                                                             headers=own)).json()] == ["合格"]
    assert (await client.get(f"/supervisors/{ids[1]}/appraisals", headers=own)).status_code == 403


async def test_r36_1_r30_1_five_person_term_round_with_automatic_excellent_finalizes(fresh, kafka_bootstrap) -> None:
    """The old deadlock: four annual excellent make the term excellent automatic, 5 people allow none."""
    app, client = fresh
    start, end = date(2021, 1, 1), date(2025, 12, 31)
    with clock.frozen(at(2025, 12, 2)):
        ids = await people(app, 5, term_start=start, term_end=end)
        auto = ids[0]
        await annual_history(app, list(range(2021, 2026)), {auto: ["excellent"] * 4 + ["qualified"]})
        round_id = await open_term(client, ids, start, end)
        await to_district_proposed(client, round_id)
        for sid in ids:
            r = await grade(client, round_id, sid, "qualified")
            assert r.status_code == 200
        assert r.json()["cap_exceeded"] is True and r.json()["excellent_allowed"] == 0
        assert (await client.get(f"/rounds/{round_id}/participants", headers=ADMIN)).json()[0]["bureau_grade"]
        r = await client.post(f"/rounds/{round_id}/steps/bureau_proposed", headers=ADMIN, json={"note": NOTE})
        assert r.status_code == 409 and r.json()["code"] == "R30.1"
        await justify(client, round_id, "任期内四次年度考核优秀，依第三十六条应当确定为优秀")
        await to_notice(client, round_id)
    with clock.frozen(at(2025, 12, 10)):
        assert (await step(client, round_id, "finalized"))["state"] == "finalized"
    events = await results_of(kafka_bootstrap, round_id, expected=len(ids) + 1)
    finalized = {e["data"]["supervisor_id"]: e["data"] for e in events if e["type"] == "AppraisalFinalized"}
    assert finalized[str(auto)]["grade"] == "excellent" and finalized[str(auto)]["kind"] == "term"
    assert finalized[str(auto)]["period"] == "2021-01-01–2025-12-31"
    assert [e["data"]["kind"] for e in events if e["type"] == "CommendationIssued"] == ["term"]


async def test_r36_1_term_round_uses_the_annual_results(fresh) -> None:
    app, client = fresh
    start, end = date(2021, 1, 1), date(2025, 12, 31)
    with clock.frozen(at(2025, 12, 2)):
        auto, eligible, spoiled, none = await people(app, 4, term_start=start, term_end=end)
        await annual_history(app, list(range(2021, 2026)), {
            auto: ["excellent"] * 4 + ["qualified"], eligible: ["excellent"],
            spoiled: [None, "excellent", "basically_qualified"]})
        round_id = await open_term(client, [auto, eligible, spoiled, none], start, end)
        proposals = {p["supervisor_id"]: p for p in
                     (await client.get(f"/rounds/{round_id}/proposals", headers=ADMIN)).json()}
        assert proposals[str(auto)]["term_excellent_automatic"] is True
        assert proposals[str(eligible)]["term_excellent_eligible"] is True
        assert proposals[str(spoiled)]["term_excellent_eligible"] is False
        await to_district_proposed(client, round_id)
        r = await grade(client, round_id, auto, "qualified")
        assert r.status_code == 200 and r.json()["grade"] == "excellent"  # automatic, whatever is proposed
        assert (await grade(client, round_id, eligible, "excellent")).json()["grade"] == "excellent"
        for person in (spoiled, none):
            r = await grade(client, round_id, person, "excellent")
            assert r.status_code == 409 and r.json()["code"] == "R36.1"
            assert (await grade(client, round_id, person, "qualified")).status_code == 200


async def test_r34_1_public_notice_starts_on_the_server_date(fresh) -> None:
    """A client-stated start ("2024-01-02") once made finalizing possible at once; now the server's date."""
    app, client = fresh
    with clock.frozen(at(2025, 12, 2)):
        ids = await people(app, 2)
        round_id = await open_round(client, ids)
        await to_district_proposed(client, round_id)
        r = await client.post(f"/rounds/{round_id}/steps/bureau_proposed", headers=ADMIN)
        assert r.status_code == 409 and r.json()["code"] == "grades_missing"
        for sid in ids:
            await grade(client, round_id, sid, "qualified")
        r = await client.post(f"/rounds/{round_id}/steps/bureau_proposed", headers=ADMIN)
        assert r.status_code == 422 and r.json()["code"] == "R34.1"  # the city procuratorate must be consulted
        await step(client, round_id, "bureau_proposed", note=NOTE)
        r = await client.post(f"/rounds/{round_id}/steps/public_notice", headers=ADMIN,
                              json={"notice_start": "2024-01-02"})
        assert r.status_code == 422  # no client date
        r = await client.post(f"/rounds/{round_id}/steps/public_notice", headers=ADMIN, json={"notice_days": 2})
        assert r.status_code == 409 and r.json()["code"] == "R34.1"  # never shorter than the configured days
        assert (await client.get(f"/rounds/{round_id}", headers=ADMIN)).json()["state"] == "bureau_proposed"
        rnd = await step(client, round_id, "public_notice")
        assert (rnd["notice_start"], rnd["notice_end"]) == ("2025-12-02", "2025-12-09")
        r = await client.post(f"/rounds/{round_id}/steps/finalized", headers=ADMIN)
        assert r.status_code == 409 and r.json()["code"] == "R34.1"
    with clock.frozen(at(2025, 12, 9, 23)):  # the notice's last day is still in the notice
        r = await client.post(f"/rounds/{round_id}/steps/finalized", headers=ADMIN)
        assert r.status_code == 409 and r.json()["code"] == "R34.1"
    with clock.frozen(at(2025, 12, 10, 8)):
        assert (await step(client, round_id, "finalized"))["finalized_on"] == "2025-12-10"


async def test_r35_1_defence_window_from_the_next_day_to_the_end_of_its_last_day(fresh) -> None:
    app, client = fresh
    with clock.frozen(at(2025, 12, 2)):
        own, paper, silent, other = await people(app, 4)
        for sid in (own, paper, silent):
            await remind(client, sid, date(2025, 5, 1), 2, uncorrected_on=date(2025, 7, 1))
        round_id = await open_round(client, [own, paper, silent, other])
        await to_district_proposed(client, round_id)
        for sid in (own, paper, silent):
            assert (await grade(client, round_id, sid, "unqualified", [2])).status_code == 200
        await grade(client, round_id, other, "qualified")
        r = await client.post(f"/rounds/{round_id}/participants/{other}/defence-notice", headers=ADMIN,
                              json={"reasons": "x", "basis": "y"})
        assert r.status_code == 409 and r.json()["code"] == "R35.1"  # only for an unqualified proposal
        r = await client.post(f"/rounds/{round_id}/participants/{own}/defence-notice", headers=ADMIN,
                              json={"reasons": "x", "basis": "y", "sent_on": "2025-01-01"})
        assert r.status_code == 422  # the server's date, never a client's
        sent = {sid: await defence(client, round_id, sid) for sid in (own, paper, silent)}
        doc = sent[own]["document"]
        assert sent[own]["sent_on"] == "2025-12-02" and sent[own]["window_end"] == "2025-12-12"
        assert doc["title"] == "人民监督员考核拟确定不合格等次告知书" and doc["date_zh"] == "2025年12月2日"
        assert TITLE in sent[own]["text"] and "2025年12月12日二十四时" in sent[own]["text"]
        assert "陈述和申辩的权利" in sent[own]["text"] and "第三十二条第（2）项" in sent[own]["text"]
        # the person is told (notify reads DefenceNoticeSent): the dates, not the reasons
        async with app.state.db.transaction() as session:
            told = (await session.execute(select(platform.outbox.c.envelope).where(
                platform.outbox.c.event_type == "DefenceNoticeSent",
                platform.outbox.c.key == str(own)))).scalars().all()
        assert [(e["data"]["round_id"], e["data"]["sent_on"], e["data"]["window_end"]) for e in told] == [
            (round_id, "2025-12-02", "2025-12-12")]
        # who closes it: the supervisor, or the bureau recording a statement received on paper with its date
        r = await client.post(f"/rounds/{round_id}/participants/{own}/statement",
                              headers=self_token(paper), json={"text": "x"})
        assert r.status_code == 403
        r = await client.post(f"/rounds/{round_id}/participants/{paper}/statement", headers=ADMIN,
                              json={"text": "书面申辩"})
        assert r.status_code == 422 and r.json()["code"] == "R35.1"
        r = await client.post(f"/rounds/{round_id}/participants/{paper}/statement", headers=ADMIN,
                              json={"text": "书面申辩", "received_on": "2025-12-01"})
        assert r.status_code == 422 and r.json()["code"] == "R35.1"  # before the notice was sent
        r = await client.post(f"/rounds/{round_id}/participants/{paper}/statement", headers=ADMIN,
                              json={"text": "书面申辩", "received_on": "2025-12-02"})
        assert r.status_code == 200 and r.json()["statement_received_on"] == "2025-12-02"
        r = await client.post(f"/rounds/{round_id}/participants/{own}/statement", headers=self_token(own),
                              json={"text": "本人申辩", "final": True})
        assert r.status_code == 200 and r.json()["statement_by"] == f"sup-{own}"
        await to_notice(client, round_id)
    for moment in (at(2025, 12, 10), at(2025, 12, 12, 23)):  # `silent`'s window runs to the end of Dec 12
        with clock.frozen(moment):
            r = await client.post(f"/rounds/{round_id}/steps/finalized", headers=ADMIN)
            assert r.status_code == 409 and r.json()["code"] == "R35.1" and "测试2" in r.json()["detail"]
    with clock.frozen(at(2025, 12, 13, 0)):
        assert (await step(client, round_id, "finalized"))["state"] == "finalized"


async def test_r32_1_reminder_within_the_year_before_the_grade_and_conduct_after_it(fresh) -> None:
    app, client = fresh
    with clock.frozen(at(2025, 12, 2)):
        after, same_day, late, fixed = await people(app, 4)
        await remind(client, after, date(2025, 3, 1), 2)  # reminded, nothing on record after it (yet)
        await remind(client, same_day, date(2025, 12, 2), 4, uncorrected_on=date(2025, 12, 2))
        future = await client.post(f"/ledger/{after}/conduct", headers=ADMIN, json={
            "kind": "reminder", "text": "x", "occurred_on": "2025-12-03", "ground": 2})
        assert future.status_code == 422 and future.json()["code"] == "R28.1"  # never dated after today
        nameless = await client.post(f"/ledger/{after}/conduct", headers=ADMIN, json={
            "kind": "uncorrected", "text": "x", "occurred_on": "2025-04-01"})
        assert nameless.status_code == 422 and nameless.json()["code"] == "R32.1"
        round_id = await open_round(client, [after, same_day, late, fixed])
        await to_district_proposed(client, round_id)
        for sid, ground in ((after, 2), (same_day, 4)):
            r = await grade(client, round_id, sid, "unqualified", [ground])
            assert r.status_code == 409 and r.json()["code"] == "R32.1"
        await remind(client, fixed, date(2025, 3, 1), 1)
        await client.post(f"/ledger/{fixed}/conduct", headers=ADMIN, json={
            "kind": "uncorrected", "text": "仍无故缺席", "occurred_on": "2025-04-01", "ground": 1})
        assert (await grade(client, round_id, fixed, "unqualified", [1])).status_code == 200
        await client.post(f"/ledger/{after}/conduct", headers=ADMIN, json={
            "kind": "uncorrected", "text": "仍长期失联", "occurred_on": "2025-05-01", "ground": 2})
        assert (await grade(client, round_id, after, "unqualified", [2])).status_code == 200
    with clock.frozen(at(2026, 1, 6)):  # early next year: a reminder of the new year is not of 2025
        await remind(client, late, date(2026, 1, 2), 2, uncorrected_on=date(2026, 1, 5))
        r = await grade(client, round_id, late, "unqualified", [2])
        assert r.status_code == 409 and r.json()["code"] == "R32.1"
        proposals = {p["supervisor_id"]: p for p in
                     (await client.get(f"/rounds/{round_id}/proposals", headers=ADMIN)).json()}
    assert proposals[str(late)]["unqualified_grounds_on_record"] == []
    assert proposals[str(fixed)]["unqualified_grounds_on_record"] == [1]


async def test_r31_1_excellent_records_the_five_conditions_with_evidence(fresh) -> None:
    app, client = fresh
    with clock.frozen(at(2025, 12, 2)):
        ids = await people(app, 7)
        round_id = await open_round(client, ids)
        await to_district_proposed(client, round_id)
        r = await grade(client, round_id, ids[0], "excellent", criteria={})
        assert r.status_code == 422 and r.json()["code"] == "R31.1"
        partial = {k: v for k, v in CRITERIA.items() if k != "opinion_quality"}
        r = await grade(client, round_id, ids[0], "excellent", criteria={**partial, "ethics": {
            "met": False, "evidence": "有待核实"}})
        assert r.status_code == 422
        assert "提出监督意见质量高" in r.json()["detail"] and "恪守职业道德" in r.json()["detail"]
        assert (await grade(client, round_id, ids[0], "excellent")).status_code == 200
        listed = {p["supervisor_id"]: p for p in
                  (await client.get(f"/rounds/{round_id}/participants", headers=ADMIN)).json()}
    checklist = listed[str(ids[0])]["excellent_criteria"]
    assert set(checklist) == {"political_quality", "ethics", "activities", "opinion_quality", "training"}
    assert checklist["training"] == {"label": "积极参加业务培训", "met": True, "evidence": "经核实：积极参加业务培训"}


async def test_r29_1_rounds_open_at_the_year_end_and_term_rounds_after_the_annual_ones(fresh) -> None:
    app, client = fresh
    start, end = date(2021, 1, 1), date(2025, 12, 31)
    first = appointed(term_start=start, term_end=end)
    ended = appointed(term_start=date(2016, 1, 1), term_end=date(2020, 12, 31))
    await deliver(app, first, ended)
    with clock.frozen(at(2025, 11, 28)):
        for year in (2025, 2026):
            r = await client.post("/rounds", headers=ADMIN, json={"kind": "annual", "year": year})
            assert r.status_code == 409 and r.json()["code"] == "R29.1"
    with clock.frozen(at(2025, 12, 1)):
        r = await client.post("/rounds", headers=ADMIN, json={"kind": "annual", "year": 2025})
        assert r.status_code == 201, r.text
        round_id = r.json()["id"]
        listed = {p["supervisor_id"] for p in
                  (await client.get(f"/rounds/{round_id}/participants", headers=ADMIN)).json()}
        assert str(first.supervisor_id) in listed and str(ended.supervisor_id) not in listed
        again = await client.post("/rounds", headers=ADMIN, json={"kind": "annual", "year": 2025})
        assert again.status_code == 409 and again.json()["code"] == "round_exists"
        later = appointed(term_start=date(2025, 3, 1), term_end=date(2029, 12, 31))
        await deliver(app, later)
        r = await client.post(f"/rounds/{round_id}/participants/sync", headers=ADMIN)
        assert r.status_code == 200
        listed = {p["supervisor_id"] for p in
                  (await client.get(f"/rounds/{round_id}/participants", headers=ADMIN)).json()}
        assert str(later.supervisor_id) in listed
        # the term round waits for the person's 2025 annual round
        r = await client.post("/rounds", headers=ADMIN, json={
            "kind": "term", "term_start": start.isoformat(), "term_end": end.isoformat(),
            "supervisor_ids": [str(first.supervisor_id)]})
        assert r.status_code == 409 and r.json()["code"] == "R29.1" and "2025年度" in r.json()["detail"]
        await step(client, round_id, "self_summaries")
        r = await client.post(f"/rounds/{round_id}/participants/sync", headers=ADMIN)
        assert r.status_code == 409 and r.json()["code"] == "R34.1"


async def test_r34_1_back_with_a_reason_and_grade_correction_before_finalizing(fresh) -> None:
    app, client = fresh
    with clock.frozen(at(2025, 12, 2)):
        ids = await people(app, 7)
        round_id = await open_round(client, ids)
        r = await client.post(f"/rounds/{round_id}/back", headers=ADMIN, json={"reason": "x"})
        assert r.status_code == 409 and r.json()["code"] == "invalid_transition"  # nothing before the first step
        await to_district_proposed(client, round_id)
        r = await client.post(f"/rounds/{round_id}/back", headers=ADMIN, json={})
        assert r.status_code == 422  # a reason is required
        await grade(client, round_id, ids[0], "excellent")
        for sid in ids[1:]:
            await grade(client, round_id, sid, "qualified")
        await to_notice(client, round_id)
        r = await client.post(f"/rounds/{round_id}/back", headers=ADMIN, json={"reason": "公示名单有误，撤回公示"})
        assert r.status_code == 200 and r.json()["state"] == "bureau_proposed" and r.json()["notice_text"] is None
        assert [s["state"] for s in r.json()["steps"]][-1] == "bureau_proposed"
        await step(client, round_id, "public_notice")
        # a corrected grade after step (4): back to the district proposals, (4) and (5) again
        r = await client.post(f"/rounds/{round_id}/participants/{ids[0]}/grade-correction", headers=ADMIN,
                              json={"grade": "qualified", "reason": "复核发现活动次数统计有误"})
        assert r.status_code == 200 and r.json()["state"] == "district_proposed"
        r = await client.post(f"/rounds/{round_id}/participants/{ids[1]}/grade-correction", headers=ADMIN,
                              json={"grade": "basically_qualified"})
        assert r.status_code == 422  # a reason is required
        rnd = (await client.get(f"/rounds/{round_id}", headers=ADMIN)).json()
        assert rnd["state"] == "district_proposed" and rnd["excellent_count"] == 0 and rnd["notice_start"] is None
        history = (await client.get(f"/rounds/{round_id}/history", headers=ADMIN)).json()
        actions = [(h["action"], h["from_state"], h["to_state"]) for h in history]
        assert ("round.back", "public_notice", "bureau_proposed") in actions
        assert ("round.back_for_correction", "public_notice", "district_proposed") in actions
        withdrawn = next(h for h in history if h["action"] == "round.back")
        assert withdrawn["reason"] == "公示名单有误，撤回公示" and "withdrawn_notice" in withdrawn["details"]
        corrected = next(h for h in history if h["action"] == "grade.corrected")
        assert corrected["details"]["old_grade"] == "excellent" and corrected["reason"] == "复核发现活动次数统计有误"
        await to_notice(client, round_id)
    with clock.frozen(at(2025, 12, 10)):
        assert (await step(client, round_id, "finalized"))["excellent_count"] == 0


async def test_r37_1_result_correction_after_finalizing_publishes_a_new_version(fresh, kafka_bootstrap) -> None:
    app, client = fresh
    with clock.frozen(at(2025, 12, 2)):
        first, second = await people(app, 2)
        await remind(client, second, date(2025, 4, 1), 2, uncorrected_on=date(2025, 6, 1))
        round_id = await open_round(client, [first, second])
        await to_district_proposed(client, round_id)
        for sid in (first, second):
            await grade(client, round_id, sid, "qualified")
        await to_notice(client, round_id)
    with clock.frozen(at(2025, 12, 10)):
        await step(client, round_id, "finalized")
        r = await client.post(f"/rounds/{round_id}/back", headers=ADMIN, json={"reason": "x"})
        assert r.status_code == 409 and r.json()["code"] == "invalid_transition"
        url = f"/rounds/{round_id}/participants/{first}/result-correction"
        assert (await client.post(url, headers=ADMIN, json={"grade": "basically_qualified"})).status_code == 422
        same = await client.post(url, headers=ADMIN, json={"grade": "qualified", "reason": "x"})
        assert same.status_code == 409 and same.json()["code"] == "no_change"
        r = await client.post(url, headers=ADMIN, json={"grade": "basically_qualified",
                                                        "reason": "培训记录补录后复核"})
        assert r.status_code == 200 and r.json()["result_version"] == 2 and r.json()["grade"] == "basically_qualified"
        # to unqualified only after the R35.1 notice and a closed window
        url2 = f"/rounds/{round_id}/participants/{second}/result-correction"
        body = {"grade": "unqualified", "grounds": [2], "reason": "失联情况核实"}
        r = await client.post(url2, headers=ADMIN, json=body)
        assert r.status_code == 409 and r.json()["code"] == "R35.1"
        await defence(client, round_id, second)
        await client.post(f"/rounds/{round_id}/participants/{second}/statement", headers=self_token(second),
                          json={"text": "无异议", "final": True})
        assert (await client.post(url2, headers=ADMIN, json=body)).json()["result_version"] == 2
    versions = (await client.get(f"/rounds/{round_id}/participants/{first}/results", headers=ADMIN)).json()
    assert [(v["version"], v["grade"], v["reason"]) for v in versions] == [
        (1, "qualified", None), (2, "basically_qualified", "培训记录补录后复核")]
    events = [e["data"] for e in await results_of(kafka_bootstrap, round_id, expected=4)
              if e["type"] == "AppraisalFinalized"]
    corrected = [e for e in events if e["result_version"] == 2]
    assert {(e["supervisor_id"], e["grade"], e["corrects_version"]) for e in corrected} == {
        (str(first), "basically_qualified", 1), (str(second), "unqualified", 1)}
    assert all(e["correction_reason"] for e in corrected)
    notices = (await client.get(f"/rounds/{round_id}/notices", headers=self_token(first))).json()
    assert len(notices) == 8 and sum("更正" in n["text"] for n in notices) == 4
    async with app.state.db.transaction() as session:
        finals = dict((await session.execute(select(participant.c.supervisor_id, participant.c.final_grade)
                                             .where(participant.c.round_id == uuid.UUID(round_id)))).all())
    assert finals == {first: "basically_qualified", second: "unqualified"}


async def test_r34_1_overdue_entry_and_report_deadlines_are_listed(fresh) -> None:
    app, client = fresh
    with clock.frozen(at(2025, 12, 2)):
        ids = await people(app, 1)
        round_id = await open_round(client, ids)
        await to_district_proposed(client, round_id)
        await grade(client, round_id, ids[0], "qualified")
        await to_notice(client, round_id)
    with clock.frozen(at(2025, 12, 10)):
        final = await step(client, round_id, "finalized")
        assert (final["entered_by"], final["reported_by"]) == ("2025-12-17", "2025-12-24")
        assert round_id not in {o["round_id"] for o in (await client.get("/deadlines/overdue", headers=ADMIN)).json()}
    with clock.frozen(at(2025, 12, 18)):
        overdue = [o for o in (await client.get("/deadlines/overdue", headers=ADMIN)).json()
                   if o["round_id"] == round_id]
        assert {(o["deadline"], o["due"]) for o in overdue} == {("entered", "2025-12-17")}
    with clock.frozen(at(2025, 12, 25)):
        await client.post(f"/rounds/{round_id}/deadlines/entered/done", headers=ADMIN)
        overdue = [o["deadline"] for o in (await client.get("/deadlines/overdue", headers=ADMIN)).json()
                   if o["round_id"] == round_id]
        assert overdue == ["reported"]


async def test_r2_1_district_bureau_sees_only_own_district_in_a_round(fresh) -> None:
    app, client = fresh
    with clock.frozen(at(2025, 12, 2)):
        mine, theirs = await people(app, 1, district="临港区"), await people(app, 1, district="文登区")
        round_id = await open_round(client, mine + theirs)
        listed = (await client.get(f"/rounds/{round_id}/participants", headers=district_token("临港区"))).json()
        assert [p["supervisor_id"] for p in listed] == [str(mine[0])]
        proposals = (await client.get(f"/rounds/{round_id}/proposals", headers=district_token("临港区"))).json()
        assert [p["supervisor_id"] for p in proposals] == [str(mine[0])]
        assert (await client.get(f"/rounds/{round_id}/candidates", headers=district_token("临港区"))).status_code == 403
        await step(client, round_id, "self_summaries")
        await step(client, round_id, "reviewed")
        r = await client.put(f"/rounds/{round_id}/districts/文登区/consultation", headers=district_token("临港区"),
                             json={"note": "x"})
        assert r.status_code == 403 and r.json()["code"] == "R2.1"


async def _printed_papers(client, round_id, notices, mine, best, weak) -> None:
    """Issue 18: the notices (R39.1, R38.1), the public notice (R34.1(5)) and the 告知书 (R35.1) print in the
    GB/T 9704 layout with a 文号 each, archived (asked again: the same bytes); same access as their JSON."""
    # each notice took its 文号 when finalizing issued it, in order, one sequence per kind — not at its first print
    results = [n for n in notices if n["kind"] == "result"]
    seq = [int(re.fullmatch(r"威司〔2025〕(\d+)号", n["number"]).group(1)) for n in results]
    assert seq == list(range(seq[0], seq[0] + len(results))), seq
    last = results[-1]  # printed first: it keeps the number it was issued with
    assert last["number"] in read.text((await client.get(f"/rounds/{round_id}/notices/{last['id']}.pdf",
                                                         headers=ADMIN)).content)
    person = next(n for n in mine if n["recipient"] == "person")
    url = f"/rounds/{round_id}/notices/{person['id']}.pdf"
    r = await client.get(url, headers=self_token(best))
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    text = read.text(r.content)
    assert "威海市司法局" in text and "2025年12月10日" in text and "考核等次为“优秀”，并予以通报表扬" in text
    assert person["number"] in text and "— 1 —" in text and TITLE in text
    assert all(read.fonts(r.content).values())
    assert (await client.get(url, headers=ADMIN)).content == r.content  # archived: byte-identical
    assert (await client.get(url, headers=self_token(weak))).status_code == 403  # not theirs
    commendation = next(n for n in notices if n["kind"] == "commendation")
    r = await client.get(f"/rounds/{round_id}/notices/{commendation['id']}.pdf", headers=ADMIN)
    assert r.status_code == 200 and "予以通报表扬的决定" in read.text(r.content)
    r = await client.get(f"/rounds/{round_id}/public-notice.pdf", headers=ADMIN)
    text = read.text(r.content)
    assert r.status_code == 200 and "拟确定优秀等次人员的公示" in text and "2025年12月2日至2025年12月9日" in text
    # the public notice and the 告知书 took their 文号 when the notice began and when it was sent (0008)
    rnd = (await client.get(f"/rounds/{round_id}", headers=ADMIN)).json()
    assert re.fullmatch(r"威司〔2025〕\d+号", rnd["notice_number"]) and rnd["notice_number"] in text
    sent = next(p for p in (await client.get(f"/rounds/{round_id}/participants", headers=ADMIN)).json()
                if p["supervisor_id"] == str(weak))
    assert re.fullmatch(r"威司〔2025〕\d+号", sent["defence_number"])
    r = await client.get(f"/rounds/{round_id}/participants/{weak}/defence-notice.pdf", headers=self_token(weak))
    text = read.text(r.content)
    assert r.status_code == 200 and "人民监督员考核拟确定不合格等次告知书" in text and "陈述和申辩的权利" in text
    assert "2025年12月12日二十四时" in text and "2025-12" not in text
    assert sent["defence_number"] in text
    assert (await client.get(f"/rounds/{round_id}/participants/{weak}/defence-notice.pdf",
                             headers=self_token(best))).status_code == 403
    assert (await client.get(f"/rounds/{round_id}/participants/{best}/defence-notice.pdf",
                             headers=ADMIN)).status_code == 404  # never sent to them

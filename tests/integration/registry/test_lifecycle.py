"""Appointment, certificates, change reports, resignation, dismissal and its notices (R4.1–R9.1, R37.1)."""

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select, text

from services.registry import consumers
from services.registry.appointments.service import term_end_job
from services.registry.dismissals.service import record_appraisal_result
from services.registry.models import ban, dismissal, platform
from shared import clock
from shared.events.contracts import AppraisalFinalized
from shared.events.envelope import Envelope
from shared.events.kafka import make_producer
from shared.events.topics import APPRAISAL_RESULTS
from tests.support import pdf as read
from tests.support.apps import bearer
from tests.support.eventing import wait_until
from tests.support.registry_helpers import ADMIN, appoint, appointed, create, record, session, trained
from tests.support.signing import publish


async def test_r4_1_appointment_records_decision_and_five_year_term(client):
    sup = await create(client)
    response = await appoint(client, sup["id"], decision_date=date(2025, 3, 1))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "active"
    assert body["decision_date"] == "2025-03-01"
    assert body["term_start"] == "2025-03-01" and body["term_end"] == "2030-02-28"
    assert body["eligible"] is False and body["eligibility_reasons"] == ["initial_training_pending"]
    history = (await client.get(f"/supervisors/{sup['id']}/appointments", headers=ADMIN)).json()
    assert len(history) == 1 and history[0]["decision_no"].startswith("威司任")


async def test_r5_1_certificate_and_work_card_numbers_unique(client):
    a = await appointed(client, decision_date=date(2025, 5, 1))
    b = await appointed(client, decision_date=date(2025, 5, 2))
    assert a["certificate_no"].startswith("威监证〔2025〕") and a["work_card_no"].startswith("WH-GZ-2025-")
    assert a["certificate_no"] != b["certificate_no"] and a["work_card_no"] != b["work_card_no"]
    c = await create(client)
    duplicate = await appoint(client, c["id"], certificate_no=a["certificate_no"])
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "duplicate_certificate_no"
    assert duplicate.headers["content-type"] == "application/problem+json"
    duplicate_card = await appoint(client, c["id"], work_card_no=b["work_card_no"])
    assert duplicate_card.status_code == 409 and duplicate_card.json()["code"] == "duplicate_work_card_no"
    hand = f"威监证〔2031〕{uuid.uuid4().hex[:6]}"
    ok = await appoint(client, c["id"], certificate_no=hand)
    assert ok.status_code == 201 and ok.json()["certificate_no"] == hand


async def test_n_term_third_consecutive_term_refused(client):
    sup = await create(client)
    assert (await appoint(client, sup["id"], decision_date=date(2015, 1, 1))).status_code == 201
    # still inside the current term: out of order
    early = await appoint(client, sup["id"], decision_date=date(2018, 1, 1))
    assert early.status_code == 409 and early.json()["code"] == "invalid_transition"
    assert (await appoint(client, sup["id"], decision_date=date(2020, 1, 1))).status_code == 201
    third = await appoint(client, sup["id"], decision_date=date(2025, 1, 1))
    assert third.status_code == 409
    assert third.json()["code"] == "N-TERM"


async def test_n_ban_dismissed_for_fraud_cannot_be_appointed_again(client):
    sup = await appointed(client)
    response = await client.post(f"/supervisors/{sup['id']}/dismissals", headers=ADMIN,
                                 json={"ground": 4, "evidence_note": "提供虚假学历证明"})
    assert response.status_code == 201, response.text
    assert response.json()["permanent_ban"] is True
    again = await appoint(client, sup["id"], decision_date=clock.today() + timedelta(days=1))
    assert again.status_code == 409
    assert again.json()["code"] == "N-BAN"
    assert (await client.get(f"/supervisors/{sup['id']}", headers=ADMIN)).json()["permanent_ban"] is True


async def test_r8_1_dismissal_requires_one_of_six_grounds(client):
    sup = await appointed(client)
    url = f"/supervisors/{sup['id']}/dismissals"
    for body in ({"evidence_note": "无"}, {"ground": 7, "evidence_note": "无"}, {"ground": 0, "evidence_note": "x"},
                 {"ground": 2, "evidence_note": ""}, {"ground": 2}):
        response = await client.post(url, json=body, headers=ADMIN)
        assert response.status_code == 422, body
        assert response.json()["code"] == "validation_error"
    assert (await client.get(f"/supervisors/{sup['id']}", headers=ADMIN)).json()["status"] == "active"
    assert (await client.post(url, json={"ground": 2, "evidence_note": "已加入外国国籍"},
                              headers=bearer("district_bureau", district="环翠区"))).status_code == 403
    ok = await client.post(url, json={"ground": 2, "evidence_note": "已加入外国国籍"}, headers=ADMIN)
    assert ok.status_code == 201 and ok.json()["permanent_ban"] is False


async def test_r9_1_dismissal_notices_announcement_and_recall(client):
    sup = await trained(client, name="王免除", employer="威海某厂", recommending_body="文登区某社区")
    assert sup["eligible"] is True
    response = await client.post(f"/supervisors/{sup['id']}/dismissals", headers=ADMIN,
                                 json={"ground": 6, "evidence_note": "受到刑事处罚"})
    assert response.status_code == 201
    case = response.json()
    assert case["status"] == "confirmed" and case["ground"] == 6 and case["permanent_ban"] is True
    recipients = {n["recipient_kind"]: n for n in case["notices"]}
    assert set(recipients) == {"person", "employer", "recommending_body", "procuratorate"}
    assert recipients["employer"]["recipient"] == "威海某厂"
    assert recipients["recommending_body"]["recipient"] == "文登区某社区"
    assert recipients["procuratorate"]["recipient"] == "威海市人民检察院"
    assert all("王免除" in n["text"] for n in case["notices"])
    assert "王免除" in case["announcement"] and "公告" in case["announcement"]
    assert case["recall"]["certificate_no"] == sup["certificate_no"]
    assert case["recall"]["work_card_no"] == sup["work_card_no"]
    after = (await client.get(f"/supervisors/{sup['id']}", headers=ADMIN)).json()
    assert after["status"] == "dismissed" and after["eligible"] is False
    assert after["eligibility_reasons"] == ["dismissed"]
    assert (await client.get(f"/dismissals/{case['id']}", headers=ADMIN)).json()["announcement"]


async def test_out_of_order_transitions_are_409(client):
    candidate = await create(client)
    r = await client.post(f"/supervisors/{candidate['id']}/dismissals", headers=ADMIN,
                          json={"ground": 3, "evidence_note": "x"})
    assert r.status_code == 409 and r.json()["code"] == "invalid_transition"
    sup = await appointed(client)
    resign = await client.post(f"/supervisors/{sup['id']}/resignations", headers=ADMIN,
                               json={"reason_kind": "health", "reason": "身体原因"})
    assert resign.status_code == 201
    decided = await client.post(f"/resignations/{resign.json()['id']}/decision", headers=ADMIN,
                                json={"approve": True})
    assert decided.status_code == 200 and decided.json()["status"] == "approved"
    twice = await client.post(f"/resignations/{resign.json()['id']}/decision", headers=ADMIN, json={"approve": True})
    assert twice.status_code == 409
    dismiss_resigned = await client.post(f"/supervisors/{sup['id']}/dismissals", headers=ADMIN,
                                         json={"ground": 2, "evidence_note": "x"})
    assert dismiss_resigned.status_code == 409 and dismiss_resigned.json()["code"] == "invalid_transition"
    # the resigned term ended today: a new one cannot start before tomorrow
    reappoint = await appoint(client, sup["id"], decision_date=clock.today())
    assert reappoint.status_code == 409 and reappoint.json()["code"] == "invalid_transition"
    assert clock.today().isoformat() in reappoint.json()["detail"]


async def test_n_ban_resigned_or_dismissed_on_grounds_2_3_can_be_appointed_again(client):
    """N-BAN binds only the permanent grounds: the person (id hash) is kept apart from each term."""
    tomorrow = clock.today() + timedelta(days=1)
    resigned = await trained(client)
    applied = await client.post(f"/supervisors/{resigned['id']}/resignations", headers=ADMIN,
                                json={"reason_kind": "job_change", "reason": "调动"})
    await client.post(f"/resignations/{applied.json()['id']}/decision", headers=ADMIN, json={"approve": True})
    for ground, sup in ((None, resigned), (2, await trained(client)), (3, await trained(client))):
        if ground:
            done = await client.post(f"/supervisors/{sup['id']}/dismissals", headers=ADMIN,
                                     json={"ground": ground, "evidence_note": "证明材料"})
            assert done.status_code == 201 and done.json()["permanent_ban"] is False
        again = await appoint(client, sup["id"], decision_date=tomorrow)
        assert again.status_code == 201, again.text
        body = again.json()
        assert body["status"] == "active" and body["permanent_ban"] is False
        assert body["term_start"] == tomorrow.isoformat() and body["certificate_no"] != sup["certificate_no"]
        assert body["eligible"] is True  # the initial exam was passed in the first term (R22.3)
        terms = (await client.get(f"/supervisors/{sup['id']}/appointments", headers=ADMIN)).json()
        assert [(t["ended_on"], t["end_reason"]) for t in terms] == [
            (clock.today().isoformat(), "resigned" if ground is None else "dismissed"), (None, None)]
    # the permanent grounds still ban for life
    for ground in (4, 6):
        sup = await trained(client)
        await client.post(f"/supervisors/{sup['id']}/dismissals", headers=ADMIN,
                          json={"ground": ground, "evidence_note": "证明材料"})
        refused = await appoint(client, sup["id"], decision_date=tomorrow)
        assert refused.status_code == 409 and refused.json()["code"] == "N-BAN"


async def test_r7_1_resignation_application_then_bureau_decision(client):
    sup = await appointed(client)
    token = bearer("supervisor", supervisor_id=sup["id"])
    applied = await client.post(f"/supervisors/{sup['id']}/resignations", headers=token,
                                json={"reason_kind": "job_change", "reason": "调往外地工作"})
    assert applied.status_code == 201 and applied.json()["status"] == "pending"
    again = await client.post(f"/supervisors/{sup['id']}/resignations", headers=token,
                              json={"reason_kind": "other", "reason": "再次申请"})
    assert again.status_code == 409 and again.json()["code"] == "resignation_pending"
    assert (await client.post(f"/resignations/{applied.json()['id']}/decision", headers=token,
                              json={"approve": True})).status_code == 403
    rejected = await client.post(f"/resignations/{applied.json()['id']}/decision", headers=ADMIN,
                                 json={"approve": False, "note": "请继续履职"})
    assert rejected.json()["status"] == "rejected"
    assert (await client.get(f"/supervisors/{sup['id']}", headers=ADMIN)).json()["status"] == "active"
    second = await client.post(f"/supervisors/{sup['id']}/resignations", headers=token,
                               json={"reason_kind": "health", "reason": "病"})
    await client.post(f"/resignations/{second.json()['id']}/decision", headers=ADMIN, json={"approve": True})
    after = (await client.get(f"/supervisors/{sup['id']}", headers=ADMIN)).json()
    assert after["status"] == "resigned" and after["permanent_ban"] is False
    cases = (await client.get(f"/dismissals?supervisor_id={sup['id']}", headers=ADMIN)).json()["items"]
    assert [(c["ground"], c["source"], c["permanent_ban"]) for c in cases] == [(1, "resignation", False)]


async def test_r7_1_a_persons_resignations_are_listed_for_the_bureau_to_decide(client, app):
    """GET /supervisors/{id}/resignations (added for the portal's person page: the pending application to decide)."""
    sup = await appointed(client, district="文登区")
    applied = await client.post(f"/supervisors/{sup['id']}/resignations", headers=ADMIN,
                                json={"reason_kind": "health", "reason": "身体原因"})
    listed = await client.get(f"/supervisors/{sup['id']}/resignations", headers=ADMIN)
    assert listed.status_code == 200
    assert [(r["id"], r["status"], r["reason"]) for r in listed.json()] == [
        (applied.json()["id"], "pending", "身体原因")]
    await client.post(f"/resignations/{applied.json()['id']}/decision", headers=ADMIN,
                      json={"approve": False, "note": "请继续履职"})
    [decided] = (await client.get(f"/supervisors/{sup['id']}/resignations", headers=ADMIN)).json()
    assert (decided["status"], decided["decision_note"], decided["decided_by"]) == ("rejected", "请继续履职", "admin-1")
    # R2.1: another district's bureau does not read it; the person reads their own
    other = bearer("district_bureau", district="环翠区")
    assert (await client.get(f"/supervisors/{sup['id']}/resignations", headers=other)).status_code == 403
    own = bearer("supervisor", supervisor_id=sup["id"])
    assert (await client.get(f"/supervisors/{sup['id']}/resignations", headers=own)).status_code == 200
    async with app.state.db.transaction() as session:  # audited like the other personal reads (R3.1)
        reads = await session.scalar(select(func.count()).select_from(platform.audit).where(
            platform.audit.c.subject == f"supervisor:{sup['id']}",
            platform.audit.c.action == "supervisor.read_resignations"))
    assert reads == 3


async def test_r6_1_change_report_late_flag_and_confirmation(client):
    sup = await appointed(client, district="高区")
    token = bearer("supervisor", supervisor_id=sup["id"])
    url = f"/supervisors/{sup['id']}/change-reports"
    with clock.frozen(datetime(2025, 2, 28, 10, 0, tzinfo=clock.SHANGHAI)):
        on_time = await client.post(url, headers=token, json={
            "changes": {"employer": "新的工作单位"}, "changed_on": "2025-01-31"})
    assert on_time.status_code == 201, on_time.text
    assert on_time.json()["reported_on"] == "2025-02-28"  # the server's date
    assert on_time.json()["late"] is False and on_time.json()["status"] == "pending"
    with clock.frozen(datetime(2025, 3, 1, 9, 0, tzinfo=clock.SHANGHAI)):
        late = await client.post(url, headers=token, json={
            "changes": {}, "description": "住址变更", "changed_on": "2025-01-31"})
    assert late.json()["reported_on"] == "2025-03-01" and late.json()["late"] is True
    # a supervisor cannot file for someone else
    other = await appointed(client)
    assert (await client.post(f"/supervisors/{other['id']}/change-reports", headers=token, json={
        "changes": {"employer": "x"}, "changed_on": "2025-01-01"})).status_code == 403
    assert (await client.get(f"/supervisors/{sup['id']}", headers=ADMIN)).json()["employer"] != "新的工作单位"
    confirmed = await client.post(f"/change-reports/{on_time.json()['id']}/confirm", headers=ADMIN)
    assert confirmed.json()["status"] == "applied"
    assert (await client.get(f"/supervisors/{sup['id']}", headers=ADMIN)).json()["employer"] == "新的工作单位"
    assert (await client.post(f"/change-reports/{on_time.json()['id']}/confirm", headers=ADMIN)).status_code == 409
    lates = (await client.get("/change-reports?late=true&district=高区&limit=200", headers=ADMIN)).json()
    assert late.json()["id"] in {r["id"] for r in lates["items"]}
    own = (await client.get(url, headers=token)).json()
    assert len(own) == 2
    # the bureau's own report applies at once; a bad district is refused
    direct = await client.post(url, headers=ADMIN, json={
        "changes": {"district": "经区"}, "changed_on": clock.today().isoformat()})
    assert direct.json()["status"] == "applied"
    bad = await client.post(url, headers=ADMIN, json={
        "changes": {"district": "北京"}, "changed_on": clock.today().isoformat()})
    assert bad.status_code == 422 and bad.json()["code"] == "unknown_district"


async def test_r6_1_a_back_dated_report_is_impossible(client):
    sup = await appointed(client)
    url = f"/supervisors/{sup['id']}/change-reports"
    today = clock.today()
    for headers in (ADMIN, bearer("supervisor", supervisor_id=sup["id"])):
        for claimed in (today - timedelta(days=40), today + timedelta(days=1)):
            response = await client.post(url, headers=headers, json={
                "changes": {"employer": "倒签单位"}, "changed_on": (today - timedelta(days=45)).isoformat(),
                "reported_on": claimed.isoformat()})
            assert response.status_code == 422, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == "R6.1" and today.isoformat() in response.json()["detail"]
    assert (await client.get(url, headers=ADMIN)).json() == []  # nothing recorded
    assert (await client.get(f"/supervisors/{sup['id']}", headers=ADMIN)).json()["employer"] != "倒签单位"
    # a change dated after today is not a change that happened
    future = await client.post(url, headers=ADMIN, json={"changes": {"employer": "x"},
                                                          "changed_on": (today + timedelta(days=3)).isoformat()})
    assert future.status_code == 422 and future.json()["code"] == "invalid_dates"


async def deliver(app, event: AppraisalFinalized) -> None:
    async with app.state.db.transaction() as session:
        envelope = Envelope(type=event.TYPE, version=1, source="appraisal", correlation_id="t",
                            subject=event.subject, data=event.model_dump(mode="json"))
        await consumers.on_appraisal_finalized(session, event, envelope)


def appraisal(supervisor_id: str, round_id: uuid.UUID, grade: str = "unqualified", kind: str = "annual"):
    return AppraisalFinalized(round_id=round_id, kind=kind, period="2025", supervisor_id=uuid.UUID(supervisor_id),
                              grade=grade, finalized_at=datetime.now(UTC))


async def cases_of(app, supervisor_id: str) -> int:
    async with app.state.db.transaction() as session:
        return await session.scalar(select(func.count()).select_from(dismissal).where(
            dismissal.c.supervisor_id == uuid.UUID(supervisor_id)))


async def test_r37_1_unqualified_annual_appraisal_opens_dismissal_case(client, app):
    sup = await trained(client)
    round_id = uuid.uuid4()
    for event in (appraisal(sup["id"], round_id, grade="qualified"), appraisal(sup["id"], round_id, kind="term"),
                  appraisal(sup["id"], round_id), appraisal(sup["id"], round_id)):
        await deliver(app, event)
    assert await cases_of(app, sup["id"]) == 1  # once per round and person
    cases = (await client.get(f"/dismissals?supervisor_id={sup['id']}", headers=ADMIN)).json()["items"]
    assert cases[0]["status"] == "pending" and cases[0]["ground"] == 5 and cases[0]["source"] == "appraisal"
    assert (await client.get(f"/supervisors/{sup['id']}", headers=ADMIN)).json()["eligible"] is True
    confirmed = await client.post(f"/dismissals/{cases[0]['id']}/confirm", headers=ADMIN, json={})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "confirmed" and confirmed.json()["permanent_ban"] is True
    assert len(confirmed.json()["notices"]) == 4
    after = (await client.get(f"/supervisors/{sup['id']}", headers=ADMIN)).json()
    assert after["status"] == "dismissed" and after["permanent_ban"] is True
    assert (await client.post(f"/dismissals/{cases[0]['id']}/reject", headers=ADMIN)).status_code == 409


async def test_r37_1_appraisal_event_through_the_broker(client, app, registry_settings):
    sup = await trained(client)
    event = appraisal(sup["id"], uuid.uuid4())
    envelope = Envelope(type=event.TYPE, version=1, source="appraisal", correlation_id=str(uuid.uuid4()),
                        subject=event.subject, data=event.model_dump(mode="json"))
    producer = make_producer(registry_settings, client_id="test-appraisal")
    await producer.start()
    try:
        await publish(producer, envelope, topic=APPRAISAL_RESULTS)  # signed as appraisal's relay would
    finally:
        await producer.stop()

    async def opened() -> bool:
        return await cases_of(app, sup["id"]) == 1

    await wait_until(opened, timeout=60)
    case = (await client.get(f"/dismissals?supervisor_id={sup['id']}&status=pending", headers=ADMIN)).json()
    rejected = await client.post(f"/dismissals/{case['items'][0]['id']}/reject", headers=ADMIN)
    assert rejected.json()["status"] == "rejected"
    assert (await client.get(f"/supervisors/{sup['id']}", headers=ADMIN)).json()["status"] == "active"


async def test_n_excl_recorded_exclusion_makes_ineligible(client, app):
    sup = await trained(client)
    response = await client.post(f"/supervisors/{sup['id']}/exclusions", headers=ADMIN,
                                 json={"ground": "dishonest_debtor", "note": "列入失信被执行人名单"})
    assert response.status_code == 200, response.text
    assert response.json()["eligible"] is False and response.json()["eligibility_reasons"] == ["excluded"]
    # published as its own reason (selection takes the person off future rosters), not "suspended"
    assert (await outbox_events(app, sup["id"], "EligibilityChanged"))[-1]["reasons"] == ["excluded"]
    again = await client.post(f"/supervisors/{sup['id']}/exclusions", headers=ADMIN,
                              json={"ground": "criminal_penalty", "note": "x"})
    assert again.status_code == 409 and again.json()["code"] == "exclusion_in_force"


async def test_n_excl_excluded_candidate_cannot_be_appointed_and_the_note_is_kept(client, app):
    candidate = await create(client)
    url = f"/supervisors/{candidate['id']}/exclusions"
    assert (await client.post(url, headers=bearer("district_bureau", district="环翠区"), json={
        "ground": "criminal_penalty", "note": "x"})).status_code == 403
    recorded = await client.post(url, headers=ADMIN, json={"ground": "criminal_penalty",
                                                           "note": "2019年受过刑事处罚（判决书编号略）"})
    assert recorded.status_code == 200
    refused = await appoint(client, candidate["id"])
    assert refused.status_code == 409 and refused.json()["code"] == "N-EXCL"
    assert refused.headers["content-type"] == "application/problem+json"
    assert (await client.get(f"/supervisors/{candidate['id']}", headers=ADMIN)).json()["status"] == "candidate"
    kept = (await client.get(url, headers=bearer("auditor"))).json()
    assert [(e["ground"], e["note"], e["lifted_at"]) for e in kept] == [
        ("criminal_penalty", "2019年受过刑事处罚（判决书编号略）", None)]
    assert kept[0]["ground_label"] == "受过刑事处罚"
    assert (await client.get(url, headers=bearer("supervisor", supervisor_id=candidate["id"]))).status_code == 403
    # lifted with a reason (kept beside the note): appointable again
    lift = f"/exclusions/{kept[0]['id']}/lift"
    assert (await client.post(lift, headers=ADMIN, json={})).status_code == 422
    lifted = await client.post(lift, headers=ADMIN, json={"reason": "经核实系同名误报"})
    assert lifted.status_code == 200, lifted.text
    assert lifted.json()["lift_reason"] == "经核实系同名误报" and lifted.json()["lifted_by"] == "admin-1"
    assert lifted.json()["note"] == "2019年受过刑事处罚（判决书编号略）"
    assert (await client.post(lift, headers=ADMIN, json={"reason": "再次"})).status_code == 409
    assert (await appoint(client, candidate["id"])).status_code == 201
    assert (await client.post(f"/exclusions/{uuid.uuid4()}/lift", headers=ADMIN,
                              json={"reason": "x"})).status_code == 404


async def test_n_excl_lifting_makes_eligible_again(client, app):
    sup = await trained(client)
    await client.post(f"/supervisors/{sup['id']}/exclusions", headers=ADMIN,
                      json={"ground": "licence_revoked", "note": "执业证书被吊销"})
    record_id = (await client.get(f"/supervisors/{sup['id']}/exclusions", headers=ADMIN)).json()[0]["id"]
    await client.post(f"/exclusions/{record_id}/lift", headers=ADMIN, json={"reason": "行政复议撤销吊销决定"})
    after = (await client.get(f"/supervisors/{sup['id']}", headers=ADMIN)).json()
    assert after["eligible"] is True and after["excluded_ground"] is None
    assert (await outbox_events(app, sup["id"], "EligibilityChanged"))[-1] == {
        "supervisor_id": sup["id"], "eligible": True, "reasons": []}


async def test_n_term_one_procuratorate_level_only(client):
    sup = await create(client)
    assert (await appoint(client, sup["id"], decision_date=date(2016, 1, 1), level="provincial")).status_code == 201
    # the provincial term runs to 2020-12-31: no city term beside it
    beside = await appoint(client, sup["id"], decision_date=date(2018, 1, 1), level="city")
    assert beside.status_code == 409 and beside.json()["code"] == "N-TERM" and "层级" in beside.json()["detail"]
    same_level = await appoint(client, sup["id"], decision_date=date(2018, 1, 1), level="provincial")
    assert same_level.status_code == 409 and same_level.json()["code"] == "invalid_transition"
    after = await appoint(client, sup["id"], decision_date=date(2021, 1, 1))  # the bureau's level: city
    assert after.status_code == 201
    terms = (await client.get(f"/supervisors/{sup['id']}/appointments", headers=ADMIN)).json()
    assert [t["level"] for t in terms] == ["provincial", "city"]


async def test_r4_1_term_end_sweep_makes_ineligible(client):
    sup = await create(client)
    assert (await appoint(client, sup["id"], decision_date=date(2019, 1, 1))).status_code == 201
    assert (await record(client, await session(client), sup["id"])).status_code == 200
    before = (await client.get(f"/supervisors/{sup['id']}", headers=ADMIN)).json()
    assert before["status"] == "active" and before["term_end"] == "2023-12-31"
    swept = await client.post("/supervisors/term-end-sweep", headers=bearer("service", subject="scheduler"))
    assert swept.status_code == 200 and swept.json()["ended"] >= 1
    after = (await client.get(f"/supervisors/{sup['id']}", headers=ADMIN)).json()
    assert after["status"] == "term_ended" and after["eligible"] is False
    assert after["eligibility_reasons"] == ["term_ended"]
    assert (await client.post("/supervisors/term-end-sweep", headers=bearer("auditor"))).status_code == 403


async def test_r8_1_ground_5_only_on_the_appraisal_result_it_rests_on(client, app):
    sup = await trained(client)
    url = f"/supervisors/{sup['id']}/dismissals"
    round_id = uuid.uuid4()
    bare = await client.post(url, headers=ADMIN, json={"ground": 5, "evidence_note": "年度考核不合格"})
    assert bare.status_code == 422 and bare.json()["code"] == "R8.1"
    unknown = await client.post(url, headers=ADMIN, json={"ground": 5, "evidence_note": "x",
                                                          "appraisal_round_id": str(round_id)})
    assert unknown.status_code == 422 and unknown.json()["code"] == "R8.1"
    await deliver(app, appraisal(sup["id"], round_id, grade="basically_qualified"))
    not_unqualified = await client.post(url, headers=ADMIN, json={"ground": 5, "evidence_note": "x",
                                                                  "appraisal_round_id": str(round_id)})
    assert not_unqualified.status_code == 422 and not_unqualified.json()["code"] == "R8.1"
    other_ground = await client.post(url, headers=ADMIN, json={"ground": 2, "evidence_note": "x",
                                                               "appraisal_round_id": str(round_id)})
    assert other_ground.status_code == 422 and other_ground.json()["code"] == "R8.1"
    # nothing changed: still serving, no ban, no case
    after = (await client.get(f"/supervisors/{sup['id']}", headers=ADMIN)).json()
    assert after["status"] == "active" and after["permanent_ban"] is False
    assert await cases_of(app, sup["id"]) == 0
    async with app.state.db.transaction() as session:
        assert not await session.scalar(select(func.count()).select_from(ban).where(
            ban.c.supervisor_id == uuid.UUID(sup["id"])))
    # an unqualified annual result received: the case opened from it, and a bare second case is refused
    unqualified_round = uuid.uuid4()
    await deliver(app, appraisal(sup["id"], unqualified_round))
    duplicate = await client.post(url, headers=ADMIN, json={"ground": 5, "evidence_note": "x",
                                                            "appraisal_round_id": str(unqualified_round)})
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "R8.1"
    case = (await client.get(f"/dismissals?supervisor_id={sup['id']}", headers=ADMIN)).json()["items"][0]
    confirmed = await client.post(f"/dismissals/{case['id']}/confirm", headers=ADMIN, json={})
    assert confirmed.status_code == 200 and confirmed.json()["permanent_ban"] is True
    assert confirmed.json()["appraisal_round_id"] == str(unqualified_round)


async def test_r8_1_ground_5_by_the_bureau_with_a_received_result(client, app):
    sup = await trained(client)
    round_id = uuid.uuid4()
    async with app.state.db.transaction() as session:  # received, but no case opened (e.g. before this release)
        await record_appraisal_result(session, round_id=round_id, supervisor_id=uuid.UUID(sup["id"]),
                                          kind="annual", period="2025", grade="unqualified",
                                          finalized_at=datetime.now(UTC), event_id=None)
    done = await client.post(f"/supervisors/{sup['id']}/dismissals", headers=ADMIN, json={
        "ground": 5, "evidence_note": "2025年度考核不合格", "appraisal_round_id": str(round_id)})
    assert done.status_code == 201, done.text
    assert done.json()["permanent_ban"] is True and done.json()["appraisal_round_id"] == str(round_id)


async def outbox_events(app, supervisor_id: str, event_type: str) -> list[dict]:
    async with app.state.db.transaction() as session:
        return list((await session.execute(text(
            "SELECT envelope->'data' FROM registry.outbox_event WHERE key = :k AND event_type = :t ORDER BY id"),
            {"k": supervisor_id, "t": event_type})).scalars())


async def test_r4_1_term_end_job_ends_the_term_by_itself_on_the_day(client, app):
    # a term from 2021-03-01 to 2026-02-28 (the day before the 5th anniversary)
    with clock.frozen(datetime(2026, 2, 1, 10, 0, tzinfo=clock.SHANGHAI)):
        sup = await create(client)
        assert (await appoint(client, sup["id"], decision_date=date(2021, 3, 1))).status_code == 201
        assert (await record(client, await session(client, held_on=date(2026, 2, 1)), sup["id"])).status_code == 200
    assert (await client.get(f"/supervisors/{sup['id']}", headers=ADMIN)).json()["term_end"] == "2026-02-28"
    with clock.frozen(datetime(2026, 2, 28, 23, 59, tzinfo=clock.SHANGHAI)):  # the last day of the term
        await term_end_job(app)
    assert (await client.get(f"/supervisors/{sup['id']}", headers=ADMIN)).json()["status"] == "active"
    with clock.frozen(datetime(2026, 3, 1, 0, 5, tzinfo=clock.SHANGHAI)):  # the first day after it
        assert await term_end_job(app) >= 1
        assert await term_end_job(app) == 0  # idempotent: nothing left to end
    after = (await client.get(f"/supervisors/{sup['id']}", headers=ADMIN)).json()
    assert after["status"] == "term_ended" and after["eligible"] is False
    assert after["eligibility_reasons"] == ["term_ended"]
    assert (await outbox_events(app, sup["id"], "EligibilityChanged"))[-1] == {
        "supervisor_id": sup["id"], "eligible": False, "reasons": ["term_ended"]}
    terms = (await client.get(f"/supervisors/{sup['id']}/appointments", headers=ADMIN)).json()
    assert (terms[-1]["ended_on"], terms[-1]["end_reason"]) == ("2026-02-28", "term_ended")


async def test_r4_1_term_end_job_is_safe_with_several_replicas(client, app):
    with clock.frozen(datetime(2025, 5, 1, 10, 0, tzinfo=clock.SHANGHAI)):
        people = [await create(client) for _ in range(3)]
        for sup in people:
            assert (await appoint(client, sup["id"], decision_date=date(2020, 5, 2))).status_code == 201
    with clock.frozen(datetime(2025, 5, 2, 8, 0, tzinfo=clock.SHANGHAI)):
        counts = await asyncio.gather(*(term_end_job(app) for _ in range(4)))
        assert await term_end_job(app) == 0
    assert sum(counts) >= 3
    for sup in people:  # each term ended once: one EligibilityChanged(term_ended) each
        events = await outbox_events(app, sup["id"], "EligibilityChanged")
        assert [e["reasons"] for e in events].count(["term_ended"]) == 1


async def test_r4_1_the_service_runs_the_term_end_job_itself(registry):
    names = {task.get_name() for task in asyncio.all_tasks()}
    assert "registry-term-end" in names


async def test_r5_1_r9_1_certificate_dismissal_notices_and_announcement_print_in_the_official_layout(client):
    """Issue 18: the selection certificate (R5.1), the four dismissal notices and the announcement (R9.1) as PDF;
    rendered from what was recorded, so asked again they are the same bytes."""
    sup = await appointed(client, decision_date=date(2025, 5, 6))
    [term] = (await client.get(f"/supervisors/{sup['id']}/appointments", headers=ADMIN)).json()
    url = f"/supervisors/{sup['id']}/appointments/{term['id']}/certificate.pdf"
    r = await client.get(url, headers=ADMIN)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    text = "".join(read.text(r.content).split())  # the title is letter-spaced
    for field in ("人民监督员选任证书", sup["name"], term["certificate_no"], term["work_card_no"], term["decision_no"],
                  "2025年5月6日", "威海市司法局"):
        assert field in text, field
    assert all(read.fonts(r.content).values()) and (await client.get(url, headers=ADMIN)).content == r.content
    assert (await client.get(url, headers=bearer("supervisor", supervisor_id=str(uuid.uuid4())))).status_code == 403
    done = await client.post(f"/supervisors/{sup['id']}/dismissals", headers=ADMIN,
                             json={"ground": 2, "evidence_note": "本人书面确认长期不能履职"})
    assert done.status_code == 201, done.text
    case = done.json()
    for kind, expected in (("person", f"{sup['name']}同志："), ("employer", "特此通知。"),
                           ("recommending_body", "经贵单位推荐的人民监督员"), ("procuratorate", "特此函告。")):
        r = await client.get(f"/dismissals/{case['id']}/notices/{kind}.pdf", headers=ADMIN)
        assert r.status_code == 200, r.text
        text = read.text(r.content)
        assert expected in text and "威海市司法局" in text and "— 1 —" in text and "免除其人民监督员资格" in text
    r = await client.get(f"/dismissals/{case['id']}/announcement.pdf", headers=ADMIN)
    text = read.text(r.content)
    assert r.status_code == 200 and f"关于免除{sup['name']}人民监督员资格的公告" in text and "特此公告。" in text
    assert (await client.get(f"/dismissals/{case['id']}/announcement.pdf",
                             headers=bearer("supervisor", supervisor_id=sup["id"]))).status_code == 403

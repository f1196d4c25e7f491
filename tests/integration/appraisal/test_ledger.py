"""The ledger (R28.1): built from events, replay-idempotent, scoped by district (R2.1), exportable.

Real years (2026) and districts of their own per test: the session database is shared."""

import io
import uuid
from datetime import UTC, date, datetime

from openpyxl import load_workbook

from services.appraisal import ledger
from shared.events.contracts import OpinionAdoptionNotified, SupervisorDismissed, SupervisorUpdated
from shared.events.kafka import make_producer
from tests.integration.appraisal.helpers import (
    ADMIN,
    AUDITOR,
    appointed,
    deliver,
    district_token,
    envelope_of,
    self_token,
    signed,
    trained,
    unique_district,
)
from tests.support import pdf as read
from tests.support.eventing import wait_until
from tests.support.signing import publish

YEAR = 2026


def history(sid: uuid.UUID, year: int) -> list:
    """A year of facts for one person, including an adoption notice that arrives before its form."""
    early_activity = uuid.uuid4()
    first = signed(sid, date(year, 3, 1), adopted=True)
    return [
        first,
        signed(sid, date(year, 4, 1)),
        OpinionAdoptionNotified(activity_id=early_activity, supervisor_id=sid, adopted=True, reason="采纳",
                                notified_at=datetime.now(UTC)),
        signed(sid, date(year, 5, 1), activity_id=early_activity),
        OpinionAdoptionNotified(activity_id=first.activity_id, supervisor_id=sid, adopted=False, reason="未采纳",
                                notified_at=datetime.now(UTC)),
        trained(sid, date(year, 6, 1), hours=6),
        trained(sid, date(year, 7, 1), hours=3, kind="makeup", attended=False),
        signed(sid, date(year + 1, 1, 5)),  # next year's ledger
    ]


async def test_r28_1_ledger_built_from_events(app, client) -> None:
    year = YEAR
    person = appointed(district="文登区", name="李华")
    await deliver(app, person)
    sid = person.supervisor_id
    await deliver(app, *history(sid, year))
    reminder = await client.post(f"/ledger/{sid}/conduct", headers=ADMIN, json={
        "kind": "reminder", "text": "无正当理由缺席培训，已提醒", "occurred_on": f"{year}-08-01", "ground": 1})
    assert reminder.status_code == 201, reminder.text
    await client.post(f"/ledger/{sid}/conduct", headers=ADMIN, json={
        "kind": "late_change_report", "text": "工作单位变更逾期报告", "occurred_on": f"{year}-09-01"})
    r = await client.get(f"/ledger/{sid}/{year}", headers=ADMIN)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["name"], body["district"]) == ("李华", "文登区")
    assert body["figures"] == {"activities": 3, "adopted": 1, "training_hours": 6.0, "trainings_attended": 1,
                               "attended_annual_training": True, "reminders": 1, "conduct_records": 0,
                               "other_activities": 0, "late_change_reports": 1, "absences": 0}
    assert len(body["entries"]) == 7
    # each entry in the ledger's own Chinese words (R28.1), as the supervisor's page shows them
    labels = {(e["kind_label"], e["subkind_label"]) for e in body["entries"]}
    assert ("培训学习", "补训") in labels and ("遵纪守法与道德", "提醒教育") in labels, labels
    assert ("变更逾期报告", "个人信息变更逾期报告") in labels, labels
    assert all(e["kind_label"] and e["subkind_label"] for e in body["entries"]), body["entries"]
    assert (await client.get(f"/ledger/{sid}/{year + 1}", headers=AUDITOR)).json()["figures"]["activities"] == 1
    # roster facts follow the registry
    await deliver(app, SupervisorUpdated(supervisor_id=sid, changed={"district": "荣成市"}),
                  SupervisorDismissed(supervisor_id=sid, ground=1, decided_at=datetime.now(UTC), permanent_ban=False))
    assert (await client.get(f"/ledger/{sid}/{year}", headers=ADMIN)).json()["district"] == "荣成市"


async def test_r28_1_ledger_from_replayed_events_equals_ledger_built_live(app, client) -> None:
    year = YEAR
    person = appointed()
    sid = person.supervisor_id
    events = [person, *history(sid, year)]
    envelopes = await deliver(app, *events)

    async def snapshot():
        async with app.state.db.transaction() as session:
            return (await ledger.comparable(session, sid), await ledger.figures_of(session, sid, year))

    live = await snapshot()
    assert live[1].activities == 3 and live[1].adopted == 1
    await deliver(app, *events, envelopes=envelopes)  # redelivered: the inbox drops them
    assert await snapshot() == live
    await deliver(app, *events)  # the topic replayed with new envelope ids: natural keys drop them
    assert await snapshot() == live
    await deliver(app, *reversed(events))  # and in another order
    assert await snapshot() == live


async def test_r2_1_district_bureau_cannot_read_another_districts_ledger(app, client) -> None:
    year = YEAR
    person = appointed(district="乳山市")
    sid = person.supervisor_id
    await deliver(app, person, signed(sid, date(year, 2, 2)))
    other = await client.get(f"/ledger/{sid}/{year}", headers=district_token("环翠区"))
    assert other.status_code == 403 and other.json()["code"] == "R2.1"
    assert (await client.get(f"/ledger/{sid}/{year}.xlsx", headers=district_token("环翠区"))).status_code == 403
    own = await client.get(f"/ledger/{sid}/{year}", headers=district_token("乳山市"))
    assert own.status_code == 200 and own.json()["figures"]["activities"] == 1
    assert (await client.get(f"/ledger/{sid}/{year}", headers=self_token(sid))).status_code == 200
    assert (await client.get(f"/ledger/{sid}/{year}", headers=self_token(uuid.uuid4()))).status_code == 403
    listed = await client.get("/ledger", params={"year": year}, headers=district_token("环翠区"))
    assert listed.status_code == 200 and str(sid) not in listed.text
    listed = await client.get("/ledger", params={"year": year, "district": "乳山市"}, headers=district_token("乳山市"))
    assert listed.status_code == 200 and str(sid) in listed.text
    denied = await client.get("/ledger", params={"year": year, "district": "乳山市"},
                              headers=district_token("环翠区"))
    assert denied.status_code == 403 and denied.json()["code"] == "R2.1"


async def test_r28_1_ledger_exports_xlsx(app, client) -> None:
    year = YEAR
    person = appointed(name="赵敏")
    sid = person.supervisor_id
    await deliver(app, person, signed(sid, date(year, 2, 2), adopted=True), trained(sid, date(year, 3, 3)))
    r = await client.get(f"/ledger/{sid}/{year}.xlsx", headers=self_token(sid))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    workbook = load_workbook(io.BytesIO(r.content), read_only=True)
    assert workbook.sheetnames == ["台账汇总", "台账明细"]
    summary = [row for row in workbook["台账汇总"].iter_rows(values_only=True)]
    assert ("姓名", "赵敏") in summary and ("参加监督办案活动（次）", 1) in summary
    details = list(workbook["台账明细"].iter_rows(values_only=True))
    assert len(details) == 3 and details[1][3] == "采纳"
    r = await client.get(f"/ledger/{sid}/{year}.pdf", headers=self_token(sid))
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    text = read.text(r.content)
    assert f"人民监督员履职工作台账（{year}年度）" in text and "姓名：赵敏" in text and "采纳" in text
    assert f"{year}年2月2日" in text and str(sid) not in text and all(read.fonts(r.content).values())
    assert (await client.get(f"/ledger/{sid}/{year}.pdf", headers=self_token(uuid.uuid4()))).status_code == 403


async def test_r2_1_district_export_holds_only_own_district(app, client) -> None:
    year = YEAR
    d1, d2 = unique_district(), unique_district()
    mine, theirs = appointed(district=d1, name="周一"), appointed(district=d2, name="吴二")
    await deliver(app, mine, theirs, signed(mine.supervisor_id, date(year, 2, 2)),
                  signed(theirs.supervisor_id, date(year, 2, 3)), signed(theirs.supervisor_id, date(year, 2, 4)))
    r = await client.get(f"/ledger/{year}.xlsx", headers=district_token(d1))
    assert r.status_code == 200, r.text
    rows = list(load_workbook(io.BytesIO(r.content), read_only=True).active.iter_rows(values_only=True))
    assert [(row[1], row[2], row[4]) for row in rows[2:]] == [("周一", d1, 1)]
    denied = await client.get(f"/ledger/{year}.xlsx", params={"district": d2}, headers=district_token(d1))
    assert denied.status_code == 403 and denied.json()["code"] == "R2.1"
    theirs_only = await client.get(f"/ledger/{year}.xlsx", params={"district": d2}, headers=ADMIN)
    rows = list(load_workbook(io.BytesIO(theirs_only.content), read_only=True).active.iter_rows(values_only=True))
    assert [(row[1], row[2], row[4]) for row in rows[2:]] == [("吴二", d2, 2)]
    r = await client.get(f"/ledger/{year}.pdf", headers=district_token(d1))
    assert r.status_code == 200 and "周一" in read.text(r.content) and "吴二" not in read.text(r.content)
    denied = await client.get(f"/ledger/{year}.pdf", params={"district": d2}, headers=district_token(d1))
    assert denied.status_code == 403 and denied.json()["code"] == "R2.1"


async def test_r28_1_year_summary_and_export_list_everyone_appraised(app, client) -> None:
    """7 appraised, 2 with entries: all 7 are listed and exported, in Chinese, without internal ids."""
    year = YEAR
    district = unique_district()
    persons = [appointed(district=district, name=f"台账{i}", term_start=date(2025, 1, 1), term_end=date(2029, 12, 31))
               for i in range(7)]
    await deliver(app, *persons, signed(persons[0].supervisor_id, date(year, 3, 3), adopted=True),
                  trained(persons[1].supervisor_id, date(year, 4, 4)))
    listed = await client.get("/ledger", params={"year": year, "district": district, "limit": 200}, headers=ADMIN)
    assert listed.status_code == 200 and listed.json()["total"] == 7
    items = {i["name"]: i for i in listed.json()["items"]}
    assert set(items) == {f"台账{i}" for i in range(7)}
    assert items["台账0"]["figures"]["activities"] == 1 and items["台账1"]["figures"]["trainings_attended"] == 1
    assert items["台账6"]["figures"]["activities"] == 0 and items["台账6"]["district"] == district
    page = await client.get("/ledger", params={"year": year, "district": district, "limit": 3, "offset": 6},
                            headers=ADMIN)
    assert page.json()["total"] == 7 and len(page.json()["items"]) == 1
    r = await client.get(f"/ledger/{year}.xlsx", params={"district": district}, headers=ADMIN)
    sheet = load_workbook(io.BytesIO(r.content))["年度台账汇总"]
    rows = list(sheet.iter_rows(values_only=True))
    headers, body = rows[1], rows[2:]
    assert headers[:4] == ("序号", "姓名", "区市", "工作单位") and "参加监督办案活动（次）" in headers
    assert len(body) == 7 and [row[0] for row in body] == list(range(1, 8))
    ids = {str(p.supervisor_id) for p in persons}
    assert not any(str(cell) in ids for row in rows for cell in row)  # no UUID column
    assert {row[1] for row in body} == {f"台账{i}" for i in range(7)}
    assert all(value in ("是", "否") for row in body for value in [row[4 + list(ledger.FIGURE_ZH).index(
        "attended_annual_training")]])
    for i, header in enumerate(headers, start=1):  # no header is cut off
        width = sheet.column_dimensions[sheet.cell(row=2, column=i).column_letter].width
        assert width >= ledger._width(header), header
    # the person's own export: sub-kinds in Chinese
    r = await client.get(f"/ledger/{persons[0].supervisor_id}/{year}.xlsx", headers=ADMIN)
    details = list(load_workbook(io.BytesIO(r.content), read_only=True)["台账明细"].iter_rows(values_only=True))
    assert details[0][6] == "第三十二条情形" and details[1][2] == "公开听证/公开审查"


async def test_r28_1_events_from_the_broker_reach_the_ledger(app, client, appraisal_settings) -> None:
    """The running consumer (not a hand-fed batch) applies FeedbackSigned from `casework.feedback`."""
    year = YEAR
    person = appointed()
    sid = person.supervisor_id
    producer = make_producer(appraisal_settings, client_id="appraisal-test")
    await producer.start()
    try:
        for event in (person, signed(sid, date(year, 4, 4)), trained(sid, date(year, 5, 5))):
            await publish(producer, envelope_of(event), topic=event.TOPIC)  # signed as its relay would
    finally:
        await producer.stop()

    async def arrived() -> bool:
        r = await client.get(f"/ledger/{sid}/{year}", headers=ADMIN)
        return r.json()["figures"]["activities"] == 1 and r.json()["figures"]["trainings_attended"] == 1

    await wait_until(arrived, timeout=60, interval=0.2)


async def test_r6_1_late_change_reports_from_registry_are_counted_once_in_the_ledger(app, client) -> None:
    from shared.events.contracts import ChangeReportRecorded

    year = YEAR
    person = appointed(district="荣成市", name="周敏")
    await deliver(app, person)
    sid = person.supervisor_id
    late = ChangeReportRecorded(supervisor_id=sid, report_id=uuid.uuid4(), changed_on=date(year, 1, 10),
                                reported_on=date(year, 3, 1), late=True)
    on_time = ChangeReportRecorded(supervisor_id=sid, report_id=uuid.uuid4(), changed_on=date(year, 5, 1),
                                   reported_on=date(year, 5, 20), late=False)
    await deliver(app, late, on_time)
    await deliver(app, late)  # the same fact again under a new envelope id: counted once
    body = (await client.get(f"/ledger/{sid}/{year}", headers=ADMIN)).json()
    assert body["figures"]["late_change_reports"] == 1


async def test_r28_1_one_form_signed_by_three_counts_once_for_each_signer(app, client) -> None:
    """casework publishes one FeedbackSigned per signer, all with the activity's single form id."""
    year = YEAR
    people = [appointed(district="乳山市", name=f"签名{i}") for i in range(3)]
    await deliver(app, *people)
    activity = uuid.uuid4()
    events = [signed(p.supervisor_id, date(year, 4, 2), activity_id=activity) for p in people]
    form_id = events[0].form_id
    events = [e.model_copy(update={"form_id": form_id}) for e in events]
    await deliver(app, *events)
    await deliver(app, *events)  # replayed with new envelope ids: still once each
    for person in people:
        body = (await client.get(f"/ledger/{person.supervisor_id}/{year}", headers=ADMIN)).json()
        assert body["figures"]["activities"] == 1


async def test_r28_1_r23_1_centralized_training_counts_for_the_year_online_does_not(app, client) -> None:
    """TrainingRecorded: a term session counts as the year's centralized training; one marked not centralized not."""
    term, online = appointed(), appointed()
    await deliver(app, term, online)
    await deliver(app, trained(term.supervisor_id, date(YEAR, 5, 5), kind="term"),
                  trained(online.supervisor_id, date(YEAR, 5, 6)).model_copy(update={"centralized": False}))
    figures = {p.supervisor_id: (await client.get(f"/ledger/{p.supervisor_id}/{YEAR}", headers=ADMIN)).json()[
        "figures"]["attended_annual_training"] for p in (term, online)}
    assert figures == {term.supervisor_id: True, online.supervisor_id: False}

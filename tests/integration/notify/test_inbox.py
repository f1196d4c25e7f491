"""Events that concern people become messages in the in-app inbox (issue 14, "Notifications"): supervisors
see their own (R2.1, self only), staff by role and district; an event delivered twice makes one message;
no message carries a full id number (R3.1); bad input is a 422/403 problem and changes nothing."""

import re
import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text

from shared.events.contracts import (
    AppraisalFinalized,
    DefenceNoticeSent,
    DrawCompleted,
    FeedbackSigned,
    MaterialsShared,
    OpinionAdoptionNotified,
    OpinionRecorded,
    RecusalRequested,
    ShortNotice,
    SubsidyApproved,
    SubsidyPaid,
    SupervisionRequested,
    SupervisorAsked,
    SupervisorDrawn,
    SupervisorReleased,
)
from shared.events.topics import SELECTION_ASSIGNMENTS
from tests.integration.notify.conftest import deliveries, supervisor_token
from tests.support.apps import bearer
from tests.support.eventing import wait_until
from tests.support.signing import publish, signed_record

ADMIN = bearer("bureau_admin", subject="bureau-1")
FULL_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{16}[\dXx](?![0-9A-Za-z])")


def requested(district: str = "环翠区", *, starts_in: timedelta = timedelta(days=10), **extra) -> SupervisionRequested:
    starts = datetime.now(UTC) + starts_in
    return SupervisionRequested(
        request_id=uuid.uuid4(), activity_id=uuid.uuid4(), case_ref="威环检刑诉〔2026〕1号",
        activity_type="public_hearing", office="环翠区人民检察院", district=district, starts_at=starts,
        ends_at=starts + timedelta(hours=2), place="第一听证室", seats=2, requested_at=datetime.now(UTC),
        procuratorate_commitment="ab" * 32, **extra)


def drawn(request: SupervisionRequested, supervisor_id: uuid.UUID) -> SupervisorDrawn:
    return SupervisorDrawn(
        request_id=request.request_id, draw_id=uuid.uuid4(), supervisor_id=supervisor_id, name="张三",
        phone="13912345678", district=request.district, specialties=["法律"], group="local", draw_order=1,
        confirmed_at=datetime.now(UTC))


async def request_known(app, request: SupervisionRequested) -> None:
    """Wait until notify has casework's request (topics are not ordered with each other; a draw follows the
    request by days in real life): its activity notices say when and where."""
    async def stored() -> bool:
        async with app.state.db.transaction() as session:
            return bool(await session.scalar(text("SELECT count(*) FROM notify.request_info WHERE request_id = :r"),
                                             {"r": request.request_id}))
    await wait_until(stored, timeout=60)


async def inbox(client, headers, **params) -> dict:
    response = await client.get("/inbox", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def until_in_inbox(client, headers, count: int = 1, **params) -> list[dict]:
    async def arrived() -> bool:
        return (await inbox(client, headers, **params))["total"] >= count
    await wait_until(arrived, timeout=60)
    return (await inbox(client, headers, **params))["items"]


async def test_r12_1_a_drawn_supervisor_finds_the_notice_in_their_own_inbox_once(notify, producer) -> None:
    app, client = notify
    supervisor_id = uuid.uuid4()
    request = requested(starts_in=timedelta(hours=20))  # soon: urgent, its SMS goes even in quiet hours
    await publish(producer, request)
    await request_known(app, request)
    envelope = await publish(producer, drawn(request, supervisor_id))
    mine = supervisor_token(supervisor_id)
    [item] = await until_in_inbox(client, mine)
    assert item["kind"] == "supervisor_drawn" and item["rule"] == "R12.1" and item["read"] is False
    assert item["urgent"] is True
    assert "第一听证室" in item["body"] and "公开听证" in item["body"]  # from casework's SupervisionRequested
    assert "13912345678" not in item["body"]  # the phone travels with the SMS delivery only, sealed
    # the same event again (a redelivery, or gap repair): still one message
    await app.state.consumer.process([signed_record(envelope, SELECTION_ASSIGNMENTS, offset=10**9)])
    assert (await inbox(client, mine))["total"] == 1
    # delivery recorded per channel: the inbox at once; the SMS (development: the log) by the dispatch job
    async def sms_sent() -> bool:
        return any(d.channel == "sms" and d.status == "sent" for d in await deliveries(app, item["id"]))
    await wait_until(sms_sent, timeout=30)
    by_channel = {d.channel: d for d in await deliveries(app, item["id"])}
    assert by_channel["inbox"].status == "sent"
    assert (by_channel["sms"].provider, by_channel["sms"].attempts) == ("log", 1)


async def test_r12_1_a_supervisor_whose_turn_came_is_asked_to_confirm_before_the_call(notify, producer) -> None:
    app, client = notify
    supervisor_id = uuid.uuid4()
    request = requested()
    await publish(producer, request)
    await request_known(app, request)
    await publish(producer, SupervisorAsked(request_id=request.request_id, draw_id=uuid.uuid4(),
                                            supervisor_id=supervisor_id, group="local", draw_order=3,
                                            asked_at=datetime.now(UTC)))
    [item] = await until_in_inbox(client, supervisor_token(supervisor_id))
    assert item["kind"] == "supervisor_asked" and item["rule"] == "R12.1" and item["urgent"] is False
    assert "请确认能否参加" in item["title"] and "第3位" in item["body"]
    # what people read: the N-ACT label and a Chinese date, never the code or an ISO date
    assert "公开听证/公开审查" in item["body"] and "public_hearing" not in item["body"]
    assert not re.search(r"\d{4}-\d{2}-\d{2}", item["body"]) and "年" in item["body"]
    async def sms_queued() -> bool:
        return any(d.channel == "sms" for d in await deliveries(app, item["id"]))
    await wait_until(sms_queued, timeout=30)  # and by SMS (quiet hours may hold it: not urgent)


async def test_r2_1_a_supervisor_sees_only_their_own_messages_and_cannot_mark_others(notify, producer) -> None:
    _, client = notify
    owner, other = uuid.uuid4(), uuid.uuid4()
    await publish(producer, SubsidyApproved(line_id=uuid.uuid4(), supervisor_id=owner, activity_id=uuid.uuid4(),
                                            amount_fen=12050, approved_by="finance-1", approved_at=datetime.now(UTC)))
    [item] = await until_in_inbox(client, supervisor_token(owner))
    assert item["kind"] == "subsidy_approved" and "120.50" in item["body"]
    assert (await inbox(client, supervisor_token(other)))["total"] == 0
    refused = await client.post(f"/inbox/{item['id']}/read", headers=supervisor_token(other))
    assert refused.status_code == 404 and refused.headers["content-type"].startswith("application/problem+json")
    assert (await inbox(client, supervisor_token(owner)))["items"][0]["read"] is False  # nothing changed
    marked = await client.post(f"/inbox/{item['id']}/read", headers=supervisor_token(owner))
    assert marked.status_code == 200 and marked.json()["read"] is True
    again = await client.post(f"/inbox/{item['id']}/read", headers=supervisor_token(owner))
    assert again.status_code == 200  # idempotent
    assert (await inbox(client, supervisor_token(owner), unread="true"))["total"] == 0
    assert (await inbox(client, supervisor_token(owner)))["unread"] == 0


async def test_r14_1_r2_1_short_staffing_reaches_the_bureau_and_that_districts_staff_only(notify, producer) -> None:
    app, client = notify
    district = "文登区"
    request = requested(district)
    await publish(producer, request)
    await request_known(app, request)
    await publish(producer, DrawCompleted(request_id=request.request_id, draw_id=uuid.uuid4(), round=1,
                                          receipt_hash="cd" * 32, procuratorate_nonce_used=True,
                                          shortfall={"local": 1, "cross": 0}))
    theirs = bearer("district_bureau", subject="wd-1", district=district)
    items = await until_in_inbox(client, theirs, kind="short_staffed")
    assert any(i["subject_id"] == str(request.request_id) and "本区缺1人" in i["body"] for i in items)
    city = await inbox(client, ADMIN, kind="short_staffed")
    assert any(i["subject_id"] == str(request.request_id) for i in city["items"])
    elsewhere = await inbox(client, bearer("district_bureau", subject="rs-1", district="荣成市"), kind="short_staffed")
    assert all(i["subject_id"] != str(request.request_id) for i in elsewhere["items"])
    # a district's staff may not ask for another district's inbox
    other = await client.get("/inbox", headers=theirs, params={"district": "荣成市"})
    assert other.status_code == 403 and other.json()["code"] == "R2.1"


async def test_r10_2_r13_2_staff_are_asked_to_consent_and_to_decide_a_recusal(notify, producer) -> None:
    app, client = notify
    request = requested("乳山市", starts_in=timedelta(days=2), short_notice=ShortNotice(reason="羁押期限届满"))
    await publish(producer, request)
    await request_known(app, request)
    supervisor_id = uuid.uuid4()
    await publish(producer, RecusalRequested(request_id=request.request_id, supervisor_id=supervisor_id,
                                             source="party", ground="与当事人有亲属关系",
                                             requested_at=datetime.now(UTC)))
    staff = bearer("district_bureau", subject="rs-2", district="乳山市")
    consent = await until_in_inbox(client, staff, kind="short_notice_consent")
    assert any(i["subject_id"] == str(request.request_id) and i["urgent"] and "羁押期限届满" in i["body"]
               for i in consent)
    recusal = await until_in_inbox(client, staff, kind="recusal_to_decide")
    assert any(i["subject_id"] == str(request.request_id) and i["rule"] == "R13.2" for i in recusal)
    assert (await inbox(client, supervisor_token(supervisor_id)))["total"] == 0  # staff work, not the person's


async def test_r14_2_r17_1_r39_1_outcomes_recorded_for_a_supervisor_are_told_to_them(notify, producer) -> None:
    _, client = notify
    supervisor_id = uuid.uuid4()
    request = requested()
    await publish(producer, request)
    await publish(producer, SupervisorReleased(request_id=request.request_id, supervisor_id=supervisor_id,
                                               reason="declined"))
    await publish(producer, FeedbackSigned(
        form_id=uuid.uuid4(), activity_id=request.activity_id, request_id=request.request_id,
        supervisor_id=supervisor_id, activity_type="公开听证", activity_date=date(2026, 11, 20), district="环翠区",
        adopted=None, signed_at=datetime.now(UTC), signature_hash="ef" * 32))
    await publish(producer, AppraisalFinalized(round_id=uuid.uuid4(), kind="annual", period="2026年度",
                                               supervisor_id=supervisor_id, grade="excellent",
                                               finalized_at=datetime.now(UTC)))
    items = await until_in_inbox(client, supervisor_token(supervisor_id), count=3)
    assert {i["kind"] for i in items} == {"supervisor_released", "feedback_signed", "appraisal_finalized"}
    assert {i["rule"] for i in items} == {"R14.2", "R17.1", "R39.1"}


async def test_r15_1_r17_1_r35_1_r42_1_materials_form_to_sign_defence_notice_and_payment_reach_the_person(
        notify, producer) -> None:
    """What casework, appraisal and finance record for a supervisor reaches them: materials provided (to each
    confirmed person the event names), the opinion recorded and the form to sign, the 告知书 with its last
    day, the subsidy paid. Messages carry no case content."""
    app, client = notify
    supervisor_id, colleague = uuid.uuid4(), uuid.uuid4()
    request = requested()
    await publish(producer, request)
    await request_known(app, request)
    await publish(producer, MaterialsShared(activity_id=request.activity_id, material_id=uuid.uuid4(),
                                            supervisor_ids=[supervisor_id, colleague], shared_at=datetime.now(UTC)))
    await publish(producer, OpinionRecorded(activity_id=request.activity_id, supervisor_id=supervisor_id,
                                            source="procuratorate_record", version=1, recorded_at=datetime.now(UTC)))
    await publish(producer, DefenceNoticeSent(round_id=uuid.uuid4(), supervisor_id=supervisor_id, kind="annual",
                                              period="2026", sent_on=date(2026, 12, 2), window_end=date(2026, 12, 9)))
    await publish(producer, SubsidyPaid(line_id=uuid.uuid4(), supervisor_id=supervisor_id,
                                        activity_id=request.activity_id, amount_fen=40_050, paid_on=date(2026, 12, 3),
                                        paid_at=datetime.now(UTC)))
    items = {i["kind"]: i for i in await until_in_inbox(client, supervisor_token(supervisor_id), count=4)}
    assert set(items) == {"materials_shared", "opinion_recorded", "defence_notice_sent", "subsidy_paid"}
    assert {k: i["rule"] for k, i in items.items()} == {"materials_shared": "R15.1", "opinion_recorded": "R17.1",
                                                         "defence_notice_sent": "R35.1", "subsidy_paid": "R42.1"}
    assert "第一听证室" in items["materials_shared"]["body"]  # when and where, from casework's request
    assert "签字" in items["opinion_recorded"]["body"] and "检察院已如实记录" in items["opinion_recorded"]["body"]
    assert "2026年12月9日" in items["defence_notice_sent"]["body"] and items["defence_notice_sent"]["urgent"]
    assert "400.50 元" in items["subsidy_paid"]["body"]
    [theirs] = await until_in_inbox(client, supervisor_token(colleague), count=1)
    assert theirs["kind"] == "materials_shared"


async def test_r3_1_no_message_or_sms_ever_carries_a_full_id_number(notify, producer) -> None:
    app, client = notify
    supervisor_id = uuid.uuid4()
    full = "370602199001011234"
    await publish(producer, OpinionAdoptionNotified(activity_id=uuid.uuid4(), supervisor_id=supervisor_id,
                                                    adopted=False, reason=f"当事人身份证号{full}与案卷不符",
                                                    notified_at=datetime.now(UTC)))
    [item] = await until_in_inbox(client, supervisor_token(supervisor_id))
    assert full not in item["body"] and "3706" in item["body"]  # masked, not dropped
    async with app.state.db.transaction() as session:  # scan everything notify stores in plain text
        rows = (await session.execute(text(
            "SELECT m.title, m.body, coalesce(d.last_error, '') AS error FROM notify.message m "
            "LEFT JOIN notify.delivery d ON d.message_id = m.id"))).all()
    leaks = [r for r in rows if FULL_ID_NUMBER.search(r.title + r.body + r.error)]
    assert not leaks


async def test_inbox_pages_by_keyset_cursor_newest_first(notify, producer) -> None:
    _, client = notify
    supervisor_id = uuid.uuid4()
    for amount in (100, 200, 300):
        await publish(producer, SubsidyApproved(line_id=uuid.uuid4(), supervisor_id=supervisor_id,
                                                activity_id=uuid.uuid4(), amount_fen=amount, approved_by="f",
                                                approved_at=datetime.now(UTC)))
    mine = supervisor_token(supervisor_id)
    await until_in_inbox(client, mine, count=3)
    first = await inbox(client, mine, limit=2)
    assert len(first["items"]) == 2 and first["total"] == 3 and first["next_cursor"]
    second = await inbox(client, mine, limit=2, cursor=first["next_cursor"])
    assert len(second["items"]) == 1 and second["next_cursor"] is None
    ids = [i["id"] for i in first["items"] + second["items"]]
    assert len(set(ids)) == 3
    stamps = [i["created_at"] for i in first["items"] + second["items"]]
    assert stamps == sorted(stamps, reverse=True)
    # a cursor used with other filters, or edited, is a 422 invalid_cursor
    reused = await client.get("/inbox", headers=mine, params={"limit": 2, "unread": "true",
                                                                "cursor": first["next_cursor"]})
    assert reused.status_code == 422 and reused.json()["code"] == "invalid_cursor"
    tampered = first["next_cursor"][:-2] + ("00" if not first["next_cursor"].endswith("00") else "11")
    edited = await client.get("/inbox", headers=mine, params={"limit": 2, "cursor": tampered})
    assert edited.status_code == 422 and edited.json()["code"] == "invalid_cursor"


async def test_bad_inbox_queries_are_422_problems_in_chinese(notify) -> None:
    _, client = notify
    for params in ({"kind": "no_such_kind"}, {"from": "2026-12-10", "to": "2026-12-01"}, {"limit": 0},
                   {"unread": "maybe"}, {"from": "yesterday"}):
        response = await client.get("/inbox", headers=ADMIN, params=params)
        assert response.status_code == 422, (params, response.text)
        problem = response.json()
        assert response.headers["content-type"].startswith("application/problem+json")
        assert problem["code"] and re.search(r"[\u4e00-\u9fff]", problem["title"]), problem
    assert (await client.post("/inbox/not-a-uuid/read", headers=ADMIN)).status_code == 422
    assert (await client.get("/inbox")).status_code == 401
    assert (await client.get("/deliveries", headers=supervisor_token(uuid.uuid4()))).status_code == 403


"""Activities (N-ACT, N-MUST), supervision requests (R10.1, R10.2, R12.1, R14.2), recusal (R13.2), idempotency."""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from services.casework.models import platform, roster, supervision_request
from shared.events.contracts import RecusalDecided, SupervisionRequestRefused, SupervisorReleased
from tests.support.apps import bearer
from tests.support.casework_helpers import activity_body, drawn, during, proc, publish, staffed_activity
from tests.support.eventing import wait_until

ADMIN = bearer("bureau_admin", subject="bureau-1")


async def _outbox_events(app, subject: str, event_type: str) -> list[dict]:
    outbox = platform.outbox
    async with app.state.db.transaction() as session:
        rows = (await session.execute(select(outbox.c.envelope).where(
            outbox.c.key == subject, outbox.c.event_type == event_type))).scalars().all()
    return list(rows)


async def test_n_act_other_needs_description(cw):
    _, client = cw
    response = await client.post("/activities", headers=proc(), json=activity_body(activity_type="other"))
    assert response.status_code == 422 and response.json()["code"] == "N-ACT"
    response = await client.post("/activities", headers=proc(), json=activity_body(activity_type="party"))
    assert response.status_code == 422 and response.json()["code"] == "N-ACT"
    response = await client.post("/activities", headers=proc(),
                                 json=activity_body(activity_type="other", other_description="案件回访"))
    assert response.status_code == 201, response.text
    assert response.json()["activity_type_label"] == "其他"


async def test_n_must_mandatory_activity_cannot_close_without_supervisors(cw, producer):
    _, client = cw
    response = await client.post("/activities", headers=proc(), json=activity_body(mandatory_invitation=True))
    activity = response.json()
    with during(activity):
        response = await client.post(f"/activities/{activity['id']}/hold", headers=proc())
    assert response.status_code == 409 and response.json()["code"] == "N-MUST"
    staffed = await staffed_activity(client, producer, n=1, mandatory_invitation=True)
    with during(staffed["activity"]):
        response = await client.post(f"/activities/{staffed['activity_id']}/hold", headers=proc())
    assert response.status_code == 200 and response.json()["status"] == "held"


async def test_n_must_flag_follows_the_matter_the_measures_name(cw):
    _, client = cw
    named = await client.post("/activities", headers=proc(),
                              json=activity_body(hearing_matter="detention_necessity", mandatory_invitation=None))
    assert named.status_code == 201, named.text
    assert named.json()["mandatory_invitation"] is True
    assert named.json()["hearing_matter_label"] == "羁押必要性审查案件公开审查"
    # the office cannot switch it off where the measures name the matter...
    refused = await client.post("/activities", headers=proc(),
                                json=activity_body(hearing_matter="intended_non_prosecution",
                                                   mandatory_invitation=False))
    assert refused.status_code == 422 and refused.json()["code"] == "N-MUST"
    # ...nor name a hearing matter for another kind of activity
    wrong = await client.post("/activities", headers=proc(),
                              json=activity_body(activity_type="work_briefing", hearing_matter="criminal_complaint"))
    assert wrong.status_code == 422 and wrong.json()["code"] == "N-MUST"
    other = await client.post("/activities", headers=proc(),
                              json=activity_body(hearing_matter="other_hearing", mandatory_invitation=None))
    assert other.status_code == 201 and other.json()["mandatory_invitation"] is False


async def test_n_must_guards_every_close_hold_and_participation_report(cw, producer):
    _, client = cw
    staffed = await staffed_activity(client, producer, n=1, hearing_matter="criminal_complaint",
                                     mandatory_invitation=None)
    aid, rid, sid = staffed["activity_id"], staffed["request_id"], staffed["supervisors"][0]
    assert staffed["activity"]["mandatory_invitation"] is True
    await publish(producer, SupervisorReleased(request_id=uuid.UUID(rid), supervisor_id=uuid.UUID(sid),
                                               reason="declined", replaced_by=None))

    async def released() -> bool:
        view = (await client.get(f"/supervision-requests/{rid}", headers=proc())).json()
        return view["roster"] == []

    await wait_until(released, timeout=30)
    with during(staffed["activity"], after=timedelta(hours=4)):
        held = await client.post(f"/activities/{aid}/hold", headers=proc())
        assert held.status_code == 409 and held.json()["code"] == "N-MUST"
        report = await client.post(f"/activities/{aid}/participation-report", headers=proc(), json={})
        assert report.status_code == 409 and report.json()["code"] == "N-MUST"


async def test_bounds_every_text_field_is_bounded_and_blank_refused(cw):
    app, client = cw
    activity_id = (await client.post("/activities", headers=proc(), json=activity_body())).json()["id"]
    url = f"/activities/{activity_id}/supervision-requests"
    for body, field in (({"seats": 1, "conflict_parties": ["李" * 100_000]}, "conflict_parties"),
                        ({"seats": 1, "conflict_parties": ["   "]}, "conflict_parties"),
                        ({"seats": 1, "conflict_parties": ["张三\x00"]}, "conflict_parties"),
                        ({"seats": 1, "conflict_parties": [f"当事人{i}" for i in range(51)]}, "conflict_parties"),
                        ({"seats": 1, "specialty": "法" * 31}, "specialty"),
                        ({"seats": 1, "specialty": " "}, "specialty")):
        response = await client.post(url, headers=proc(), json=body)
        assert response.status_code == 422, (field, response.text)
        assert response.json()["code"] == "validation_error" and response.json()["errors"][0]["loc"][1] == field
    async with app.state.db.transaction() as session:  # nothing stored, nothing put on the bus
        assert await session.scalar(select(func.count()).select_from(supervision_request).where(
            supervision_request.c.activity_id == uuid.UUID(activity_id))) == 0
    ok = await client.post(url, headers=proc(), json={"seats": 1, "specialty": "法律",
                                                       "conflict_parties": ["威海某某贸易有限公司", "李" * 100]})
    assert ok.status_code == 201, ok.text
    for field, value in (("case_ref", "  "), ("case_ref", "号" * 101), ("place", "\n"), ("district", "区" * 51),
                         ("summary", "x" * 5001)):
        response = await client.post("/activities", headers=proc(), json=activity_body(**{field: value}))
        assert response.status_code == 422 and response.json()["errors"][0]["loc"][-1] == field, (field, response.text)


async def test_r2_1_other_district_procuratorate_is_refused(cw):
    _, client = cw
    response = await client.post("/activities", headers=proc(district="文登区", office="文登区人民检察院"),
                                 json=activity_body())
    assert response.status_code == 403 and response.json()["code"] == "R2.1"


async def test_r10_1_request_publishes_supervision_requested(cw):
    app, client = cw
    activity_id = (await client.post("/activities", headers=proc(), json=activity_body(6))).json()["id"]
    response = await client.post(f"/activities/{activity_id}/supervision-requests", headers=proc(),
                                 json={"seats": 3, "specialty": "法律", "conflict_parties": ["李某"]})
    assert response.status_code == 201, response.text
    view = response.json()
    assert view["status"] == "requested" and view["short_notice"] is None and view["acceptance"] is None
    assert view["staffing"] == {"confirmed": 0, "seats": 3} and view["receipt_checks"] == []
    [envelope] = await _outbox_events(app, view["request_id"], "SupervisionRequested")
    assert envelope["version"] == 2
    data = envelope["data"]
    assert data["activity_id"] == activity_id and data["seats"] == 3 and data["specialty"] == "法律"
    assert data["conflict_parties"] == ["李某"] and data["activity_type"] == "public_hearing"
    # the seat split is the bureau's policy and consent is the bureau's to record (R11.1, R10.2)
    assert "seats_local" not in data and "lead_time_consent" not in data and data["short_notice"] is None
    # one live request per activity
    again = await client.post(f"/activities/{activity_id}/supervision-requests", headers=proc(), json={"seats": 1})
    assert again.status_code == 409 and again.json()["code"] == "request_exists"


async def test_r11_1_r10_2_requester_cannot_set_the_seat_split_or_record_consent(cw):
    _, client = cw
    activity_id = (await client.post("/activities", headers=proc(), json=activity_body(4))).json()["id"]
    consent = {"by": "市司法局张科长", "at": datetime.now(UTC).isoformat(), "reason": "羁押必要性审查时限紧"}
    for extra in ({"seats_local": 2}, {"lead_time_consent": consent}):
        response = await client.post(f"/activities/{activity_id}/supervision-requests", headers=proc(),
                                     json={"seats": 3, **extra})
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "validation_error"
        assert [e["loc"][-1] for e in response.json()["errors"]] == list(extra)
    async with cw[0].state.db.transaction() as session:
        count = await session.scalar(select(func.count()).select_from(supervision_request).where(
            supervision_request.c.activity_id == uuid.UUID(activity_id)))
    assert count == 0


async def test_r10_2_bureau_refusal_is_visible_with_earliest_date(cw, producer):
    _, client = cw
    activity_id = (await client.post("/activities", headers=proc(), json=activity_body(4))).json()["id"]
    short = {"seats": 2, "short_notice": {"reason": "犯罪嫌疑人羁押期限即将届满"}}
    response = await client.post(f"/activities/{activity_id}/supervision-requests", headers=proc(), json=short)
    assert response.status_code == 201, response.text
    request_id = response.json()["request_id"]
    assert response.json()["status"] == "awaiting_consent"
    earliest = datetime(2027, 1, 8).date()
    await publish(producer, SupervisionRequestRefused(request_id=uuid.UUID(request_id), code="R10.2",
                                                      earliest_allowed_date=earliest,
                                                      detail="市司法局不同意缩短通知期限"))

    async def refused() -> bool:
        view = (await client.get(f"/supervision-requests/{request_id}", headers=proc())).json()
        return view["status"] == "refused"

    await wait_until(refused, timeout=30)
    view = (await client.get(f"/supervision-requests/{request_id}", headers=proc())).json()
    assert view["refusal"] == {"code": "R10.2", "detail": "市司法局不同意缩短通知期限",
                               "earliest_allowed_date": "2027-01-08"}
    # a refused request does not block a new one
    response = await client.post(f"/activities/{activity_id}/supervision-requests", headers=proc(), json=short)
    assert response.status_code == 201 and response.json()["status"] == "awaiting_consent"


async def test_r12_1_r15_1_roster_phones_for_procuratorate_only_encrypted_and_audited(cw, producer):
    app, client = cw
    staffed = await staffed_activity(client, producer, n=2)
    request_id = staffed["request_id"]
    view = (await client.get(f"/supervision-requests/{request_id}", headers=proc())).json()
    assert sorted(m["phone"] for m in view["roster"]) == ["13912345671", "13912345672"]
    assert {m["name"] for m in view["roster"]} == {"监督员1", "监督员2"}
    masked = (await client.get(f"/supervision-requests/{request_id}", headers=ADMIN)).json()
    assert all("*" in m["phone"] for m in masked["roster"])
    async with app.state.db.transaction() as session:
        stored = (await session.execute(select(roster.c.phone_encrypted).where(
            roster.c.request_id == uuid.UUID(request_id)))).scalars().all()
        audits = await session.scalar(select(func.count()).select_from(platform.audit).where(
            platform.audit.c.subject == f"request:{request_id}", platform.audit.c.action == "roster.contacts_read"))
    assert all("1391234567" not in s for s in stored)
    assert audits >= 1
    other = await client.get(f"/supervision-requests/{request_id}",
                             headers=proc(district="文登区", office="文登区人民检察院"))
    assert other.status_code == 403


async def test_r14_2_released_supervisor_leaves_roster_and_replacement_enters(cw, producer):
    _, client = cw
    staffed = await staffed_activity(client, producer, n=2)
    request_id, (first, _) = staffed["request_id"], staffed["supervisors"]
    newcomer = uuid.uuid4()
    await publish(producer, SupervisorReleased(request_id=uuid.UUID(request_id), supervisor_id=uuid.UUID(first),
                                               reason="declined", replaced_by=newcomer))
    await publish(producer, drawn(request_id, newcomer, 3, name="接替者", phone="13700000003"))

    async def replaced() -> bool:
        view = (await client.get(f"/supervision-requests/{request_id}", headers=proc())).json()
        return str(newcomer) in {m["supervisor_id"] for m in view["roster"]}

    await wait_until(replaced, timeout=30)
    view = (await client.get(f"/supervision-requests/{request_id}", headers=proc())).json()
    assert first not in {m["supervisor_id"] for m in view["roster"]}
    assert view["released"][0]["release_reason"] == "declined"
    assert view["released"][0]["replaced_by"] == str(newcomer)


async def test_r13_2_party_recusal_published_and_outcome_comes_back(cw, producer):
    app, client = cw
    staffed = await staffed_activity(client, producer, n=2)
    request_id, target = staffed["request_id"], staffed["supervisors"][0]
    response = await client.post(f"/supervision-requests/{request_id}/recusals", headers=proc(),
                                 json={"supervisor_id": target, "source": "party", "ground": "系当事人近亲属"})
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "pending"
    [envelope] = await _outbox_events(app, request_id, "RecusalRequested")
    assert envelope["data"]["source"] == "party" and envelope["data"]["supervisor_id"] == target
    not_drawn = await client.post(f"/supervision-requests/{request_id}/recusals", headers=proc(),
                                  json={"supervisor_id": str(uuid.uuid4()), "source": "procuratorate",
                                        "ground": "利害关系"})
    assert not_drawn.status_code == 409 and not_drawn.json()["code"] == "R13.2"
    await publish(producer, RecusalDecided(request_id=uuid.UUID(request_id), supervisor_id=uuid.UUID(target),
                                           granted=True, decided_by="bureau-1", reason="符合回避条件"))

    async def decided() -> bool:
        view = (await client.get(f"/supervision-requests/{request_id}", headers=proc())).json()
        return view["recusals"][0]["status"] == "granted"

    await wait_until(decided, timeout=30)


async def test_idempotency_key_retry_returns_first_answer(cw):
    app, client = cw
    headers = {**proc(), "Idempotency-Key": uuid.uuid4().hex}
    body = activity_body()
    first = await client.post("/activities", headers=headers, json=body)
    second = await client.post("/activities", headers=headers, json=body)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json() and second.headers["Idempotent-Replayed"] == "true"
    reused = await client.post("/activities", headers=headers, json={**body, "place": "别处"})
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"
    # a supervision request sent twice is one request (one event, one draw)
    activity_id = first.json()["id"]
    key = {**proc(), "Idempotency-Key": uuid.uuid4().hex}
    a = await client.post(f"/activities/{activity_id}/supervision-requests", headers=key, json={"seats": 2})
    b = await client.post(f"/activities/{activity_id}/supervision-requests", headers=key, json={"seats": 2})
    assert a.status_code == b.status_code == 201 and a.json()["request_id"] == b.json()["request_id"]
    async with app.state.db.transaction() as session:
        count = await session.scalar(select(func.count()).select_from(supervision_request).where(
            supervision_request.c.activity_id == uuid.UUID(activity_id)))
    assert count == 1
    assert len(await _outbox_events(app, a.json()["request_id"], "SupervisionRequested")) == 1

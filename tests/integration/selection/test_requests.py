"""Requests and the draw protocol of DRAW.md (people-supervisor-draw/4): one door, server time, commit–reveal,
beacon, one live request per activity, the chain; lead time (R10.1, R10.2, R44.1); receipts and verification (R11).
"""

import hashlib
import itertools
import json
import secrets
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from services.selection.draw import algorithm as alg
from services.selection.models import chain_entry, contact_log, draw, pool_blob
from services.selection.models import request as request_table
from shared.events.contracts import DrawNonceRevealed, SupervisionCancelled, SupervisionRequested
from tests.integration.selection.conftest import (
    ADMIN,
    activity_window,
    appoint,
    attempts_for,
    drawable,
    excluded_for,
    new_request,
    overridden_settings,
    publish,
    request_body,
    window_of,
)
from tests.support.apps import bearer
from tests.support.eventing import wait_until

ROOT = Path(__file__).resolve().parents[3]
BEACON = {"value": "2026年第139期 03 07 12 19 25 31 + 09"}


async def draws_of(app, request_id) -> int:
    async with app.state.db.transaction() as session:
        return await session.scalar(select(func.count()).select_from(draw).where(draw.c.request_id == request_id))


def requested_event(district: str, specialty: str, *, seats: int = 2, working_days_ahead: int = 8,
                    short_notice: dict | None = None) -> tuple[SupervisionRequested, str]:
    """casework's SupervisionRequested (v2) and the nonce it keeps back until the acceptance."""
    nonce = secrets.token_hex(32)
    requested_at, starts, ends = activity_window(working_days_ahead)
    event = SupervisionRequested(
        request_id=uuid.uuid4(), activity_id=uuid.uuid4(), case_ref="威检刑诉〔2026〕7号", activity_type="公开听证",
        office="威海市人民检察院", district=district, starts_at=starts, ends_at=ends, place="听证室",
        seats=seats, specialty=specialty, requested_at=requested_at, short_notice=short_notice,
        procuratorate_commitment=hashlib.sha256(bytes.fromhex(nonce)).hexdigest())
    return event, nonce


async def view_of(client, request_id) -> dict:
    response = await client.get(f"/requests/{request_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


async def status_is(client, request_id, status: str) -> bool:
    response = await client.get(f"/requests/{request_id}", headers=ADMIN)
    return response.status_code == 200 and response.json()["status"] == status


# --- the protocol -----------------------------------------------------------------------------------------

async def test_r11_1_protocol_no_draw_before_the_reveal_then_the_revealed_nonce_is_in_the_seed(
        svc, events, producer, unique_name):
    app, client = svc
    await appoint(app, unique_name, unique_name, 3)
    await appoint(app, unique_name + "-B", unique_name, 3)
    event, nonce = requested_event(unique_name, unique_name)
    await publish(producer, event)
    await publish(producer, event)  # a replay (new envelope id, same request): one acceptance
    [accepted] = await events.wait(event.request_id, "SupervisionAccepted")
    view = await view_of(client, event.request_id)
    assert view["status"] == "accepted" and view["draws"] == [] and not view["procuratorate_nonce_revealed"]
    assert accepted.data["bureau_commitment"] == view["bureau_commitment"]
    assert accepted.data["snapshot_hash"] == view["acceptance"]["snapshot_hash"]
    assert accepted.data["beacon"] is None  # off by default for a request with a procuratorate nonce
    assert await draws_of(app, event.request_id) == 0

    await publish(producer, DrawNonceRevealed(request_id=event.request_id, procuratorate_nonce=nonce))
    [completed] = await events.wait(event.request_id, "DrawCompleted")
    assert completed.data["procuratorate_nonce_used"] is True and completed.data["round"] == 1
    receipt = (await client.get(f"/draws/{completed.data['draw_id']}/receipt", headers=ADMIN)).json()
    assert receipt["alg"] == "people-supervisor-draw/4"
    assert receipt["nonces"]["procuratorate"] == nonce
    assert receipt["commitments"] == {"bureau": accepted.data["bureau_commitment"],
                                      "procuratorate": event.procuratorate_commitment}
    assert receipt["snapshot_hash"] == accepted.data["snapshot_hash"]
    assert receipt["params_hash"] == accepted.data["params_hash"]
    assert alg.verify_receipt(receipt)["ok"]
    verified = (await client.get(f"/draws/{completed.data['draw_id']}/verify", headers=ADMIN)).json()
    assert verified["ok"], verified
    assert len(events.of(event.request_id, "SupervisionAccepted")) == 1
    assert await draws_of(app, event.request_id) == 1


async def test_r11_1_a_reveal_that_does_not_match_is_refused_and_the_timeout_draws_without_it(
        svc, events, producer, unique_name):
    app, client = svc
    await appoint(app, unique_name, unique_name, 4)
    event, _ = requested_event(unique_name, unique_name, seats=1)
    await publish(producer, event)
    await events.wait(event.request_id, "SupervisionAccepted")
    await publish(producer, DrawNonceRevealed(request_id=event.request_id, procuratorate_nonce=secrets.token_hex(32)))

    async def refused() -> bool:
        return (await view_of(client, event.request_id))["procuratorate_nonce_reason"] == "reveal did not match"

    await wait_until(refused, timeout=30)
    assert await draws_of(app, event.request_id) == 0  # refused: no draw on a wrong nonce
    # the reveal timeout passes (the deadline moved back rather than waiting 10 minutes): the job draws
    async with app.state.db.transaction() as session:
        await session.execute(update(request_table).where(request_table.c.id == event.request_id).values(
            reveal_deadline=datetime.now(UTC) - timedelta(seconds=1)))
    [completed] = await events.wait(event.request_id, "DrawCompleted")
    assert completed.data["procuratorate_nonce_used"] is False
    receipt = (await client.get(f"/draws/{completed.data['draw_id']}/receipt", headers=ADMIN)).json()
    assert receipt["nonces"]["procuratorate"] is None
    assert receipt["procuratorate_nonce_reason"] == "reveal did not match"
    assert alg.verify_receipt(receipt)["ok"]


async def test_r11_1_bureau_recorded_request_names_a_beacon_and_draws_only_once_its_value_is_entered(
        svc, events, unique_name):
    app, client = svc
    local = await appoint(app, unique_name + "-A", unique_name, 6)
    cross = await appoint(app, unique_name + "-B", unique_name, 6)
    body = request_body(unique_name + "-A", unique_name, seats=3)
    created = await client.post("/requests", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    view = created.json()
    assert view["status"] == "accepted" and view["via"] == "http"
    assert view["beacon"]["source"] and view["beacon"]["round"] and view["beacon"]["value"] is None
    assert view["procuratorate_nonce_reason"] == "recorded by the bureau"
    assert await draws_of(app, body["request_id"]) == 0
    assert (await client.post("/requests", json=body, headers=ADMIN)).status_code == 200  # a replay

    drawn = await client.put(f"/requests/{body['request_id']}/beacon", json=BEACON, headers=ADMIN)
    assert drawn.status_code == 200, drawn.text
    view = drawn.json()
    assert view["status"] == "drawn" and view["seats_local"] == 2 and view["seats_cross"] == 1
    assert set(window_of(view, "local")) <= {str(i) for i in local}
    assert set(window_of(view, "cross")) <= {str(i) for i in cross}
    again = await client.put(f"/requests/{body['request_id']}/beacon", json={"value": "另一个"}, headers=ADMIN)
    assert again.status_code == 409 and again.json()["code"] == "beacon_entered"
    receipt = (await client.get(f"/draws/{view['draws'][0]['draw_id']}/receipt", headers=ADMIN)).json()
    assert receipt["beacon"]["value"] == BEACON["value"] and receipt["nonces"]["procuratorate"] is None
    assert alg.verify_receipt(receipt)["ok"]
    await events.wait(body["request_id"], "SupervisionAccepted")
    await events.wait(body["request_id"], "DrawCompleted")
    assert await draws_of(app, body["request_id"]) == 1


async def test_r10_1_a_procuratorate_token_cannot_create_a_request_in_selection(svc, unique_name):
    _, client = svc
    own = bearer("procuratorate", subject="p", district=unique_name)
    response = await client.post("/requests", json=request_body(unique_name, unique_name, seats=1), headers=own)
    assert response.status_code == 403


async def test_one_live_request_per_activity_and_a_cancelled_draw_stays_in_the_chain(svc, events, unique_name):
    app, client = svc
    await appoint(app, unique_name, unique_name, 6)
    first = await new_request(svc, unique_name, unique_name, seats=1)
    second = request_body(unique_name, unique_name, seats=1, activity_id=first["activity_id"])
    refused = await client.post("/requests", json=second, headers=ADMIN)
    assert refused.status_code == 409 and refused.json()["code"] == "request_exists"
    cancelled = await client.post(f"/requests/{first['request_id']}/cancel", json={"reason": "检察院改期"},
                                  headers=ADMIN)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["candidates"][0]["status"] == "cancelled"
    again = await client.post("/requests", json=second, headers=ADMIN)
    assert again.status_code == 201, again.text
    await client.put(f"/requests/{second['request_id']}/beacon", json=BEACON, headers=ADMIN)
    # a re-roll leaves a trace: both acceptances, both draws and the cancellation are in the chain
    async with app.state.db.transaction() as session:
        kinds = (await session.execute(
            select(chain_entry.c.kind, chain_entry.c.request_id).where(
                chain_entry.c.request_id.in_([uuid.UUID(first["request_id"]), uuid.UUID(second["request_id"])]))
            .order_by(chain_entry.c.seq))).all()
    assert [k.kind for k in kinds] == ["acceptance", "draw", "cancellation", "acceptance", "draw"]
    old = (await client.get(f"/draws/{first['draws'][0]['draw_id']}/verify", headers=ADMIN)).json()
    assert old["ok"], old
    chain = (await client.get("/chain?after=0&limit=500", headers=bearer("auditor"))).json()
    assert [e["seq"] for e in chain] == list(range(1, len(chain) + 1))
    assert all(e["prev_hash"] == p["hash"] for p, e in itertools.pairwise(chain))
    ours = [e for e in chain if e["request_id"] == first["request_id"] and e["kind"] == "cancellation"]
    assert ours and ours[0]["body"]["receipts"] == [first["draws"][0]["receipt_hash"]]
    assert alg.H(ours[0]["body"]) == ours[0]["hash"]


async def test_r11_1_cancelled_by_the_procuratorate_frees_the_booking(svc, events, producer, unique_name):
    app, client = svc
    people = await appoint(app, unique_name, unique_name, 3)
    view = await new_request(svc, unique_name, unique_name, seats=1, seats_local=1)
    sid = window_of(view)[0]
    confirmed = await client.post(f"/draws/{view['draws'][0]['draw_id']}/contacts", headers=ADMIN,
                                  json={"supervisor_id": sid, "outcome": "confirmed",
                                        "attempts": attempts_for("confirmed")})
    assert confirmed.status_code == 200, confirmed.text
    await publish(producer, SupervisionCancelled(
        request_id=uuid.UUID(view["request_id"]), activity_id=uuid.UUID(view["activity_id"]), reason="当事人撤回申请",
        cancelled_by="procuratorate-1", cancelled_at=datetime.now(UTC)))
    await wait_until(lambda: status_is(client, view["request_id"], "cancelled"), timeout=30)
    async with app.state.db.transaction() as session:
        active = await session.scalar(text(
            "SELECT count(*) FROM selection.booking WHERE request_id = :r AND active"), {"r": view["request_id"]})
    assert active == 0 and uuid.UUID(sid) in people


async def test_r11_1_a_reschedule_arriving_before_its_cancellation_replaces_the_old_request(
        svc, events, producer, unique_name):
    """casework's reschedule: the old request's SupervisionCancelled and the new SupervisionRequested
    (rescheduled_from = old) travel under different keys; the new one arriving first must not be refused
    as request_exists: it cancels the old one (bookings freed) and is accepted; the late cancellation
    then changes nothing."""
    app, client = svc
    await appoint(app, unique_name, unique_name, 3)
    old = await new_request(svc, unique_name, unique_name, seats=1, seats_local=1)
    sid = window_of(old)[0]
    confirmed = await client.post(f"/draws/{old['draws'][0]['draw_id']}/contacts", headers=ADMIN,
                                  json={"supervisor_id": sid, "outcome": "confirmed",
                                        "attempts": attempts_for("confirmed")})
    assert confirmed.status_code == 200, confirmed.text
    event, _ = requested_event(unique_name, unique_name, seats=1)
    event = event.model_copy(update={"activity_id": uuid.UUID(old["activity_id"]),
                                     "rescheduled_from": uuid.UUID(old["request_id"])})
    await publish(producer, event)
    await events.wait(event.request_id, "SupervisionAccepted")
    assert (await view_of(client, old["request_id"]))["status"] == "cancelled"
    async with app.state.db.transaction() as session:
        active = await session.scalar(text(
            "SELECT count(*) FROM selection.booking WHERE request_id = :r AND active"), {"r": old["request_id"]})
    assert active == 0
    late = await publish(producer, SupervisionCancelled(
        request_id=uuid.UUID(old["request_id"]), activity_id=uuid.UUID(old["activity_id"]), reason="改期",
        cancelled_by="procuratorate-1", cancelled_at=datetime.now(UTC), superseded_by=event.request_id))
    inbox = app.state.platform.inbox

    async def late_applied() -> bool:
        async with app.state.db.transaction() as session:
            return await session.scalar(select(inbox.c.status).where(inbox.c.event_id == late.id)) == "applied"
    await wait_until(late_applied, timeout=30)
    assert (await view_of(client, str(event.request_id)))["status"] == "accepted"


# --- lead time (R10.1, R10.2, R44.1) --------------------------------------------------------------------

async def test_r10_1_short_lead_time_is_refused_with_the_earliest_date_and_the_refusal_event(
        svc, events, producer, unique_name):
    app, client = svc
    body = request_body(unique_name, unique_name, seats=1, working_days_ahead=2)
    refused = await client.post("/requests", json=body, headers=ADMIN)
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["code"] == "R10.1" and problem["earliest_allowed_date"]
    assert problem["earliest_allowed_date"] in problem["detail"] and "calendar_provisional" in problem
    got = await events.wait(body["request_id"], "SupervisionRequestRefused")
    assert got[0].data["code"] == "R10.1"
    assert got[0].data["earliest_allowed_date"] == problem["earliest_allowed_date"]
    replay = await client.post("/requests", json=body, headers=ADMIN)  # the same refusal, nothing new
    assert replay.status_code == 200 and replay.json()["status"] == "refused"
    assert await draws_of(app, body["request_id"]) == 0

    event, _ = requested_event(unique_name, unique_name, seats=1, working_days_ahead=1)
    await publish(producer, event)
    refusal = await events.wait(event.request_id, "SupervisionRequestRefused", timeout=60)
    assert refusal[0].data["code"] == "R10.1"


async def test_r10_2_short_notice_waits_for_a_bureau_user_then_is_accepted_or_refused(
        svc, events, producer, unique_name):
    app, client = svc
    await appoint(app, unique_name, unique_name, 3)
    event, _ = requested_event(unique_name, unique_name, seats=1, working_days_ahead=3,
                                   short_notice={"reason": "羁押必要性审查期限紧迫"})
    await publish(producer, event)
    await wait_until(lambda: status_is(client, event.request_id, "awaiting_consent"), timeout=30)
    assert events.of(event.request_id, "SupervisionAccepted") == []
    # only a bureau user decides; the procuratorate cannot consent to its own request
    proc = bearer("procuratorate", subject="p", district=unique_name)
    url = f"/requests/{event.request_id}/short-notice-decision"
    assert (await client.post(url, json={"granted": True, "reason": "x"}, headers=proc)).status_code == 403
    granted = await client.post(url, json={"granted": True, "reason": "案件情况特殊，经研究同意"},
                                headers=bearer("bureau_admin", subject="bureau-chief"))
    assert granted.status_code == 200, granted.text
    assert granted.json()["short_notice_decision"]["by"] == "bureau-chief"
    [accepted] = await events.wait(event.request_id, "SupervisionAccepted")
    assert accepted.data["short_notice_consent"]["by"] == "bureau-chief"
    again = await client.post(url, json={"granted": False, "reason": "改变主意"}, headers=ADMIN)
    assert again.status_code == 409

    other, _ = requested_event(unique_name, unique_name, seats=1, working_days_ahead=4,
                               short_notice={"reason": "紧急"})
    await publish(producer, other)
    await wait_until(lambda: status_is(client, other.request_id, "awaiting_consent"), timeout=30)
    no = await client.post(f"/requests/{other.request_id}/short-notice-decision",
                           json={"granted": False, "reason": "不属于特殊情形"}, headers=ADMIN)
    assert no.status_code == 200 and no.json()["status"] == "refused"
    [refusal] = await events.wait(other.request_id, "SupervisionRequestRefused")
    assert refusal.data["code"] == "R10.2"

    # under 3 working days short notice is always refused
    too_short, _ = requested_event(unique_name, unique_name, seats=1, working_days_ahead=2,
                                   short_notice={"reason": "紧急"})
    await publish(producer, too_short)
    [refusal] = await events.wait(too_short.request_id, "SupervisionRequestRefused")
    assert refusal.data["code"] == "R10.2" and refusal.data["earliest_allowed_date"]


async def test_r10_1_a_stated_receipt_time_is_a_recorded_claim_and_never_in_the_future(svc, unique_name):
    app, client = svc
    await appoint(app, unique_name, unique_name, 1)  # the specialty exists on the roster (R11.2)
    future = request_body(unique_name, unique_name, seats=1,
                          received_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
    assert (await client.post("/requests", json=future, headers=ADMIN)).status_code == 422
    ancient = request_body(unique_name, unique_name, seats=1,
                           received_at=(datetime.now(UTC) - timedelta(days=40)).isoformat())
    assert (await client.post("/requests", json=ancient, headers=ADMIN)).status_code == 422
    stated = datetime.now(UTC) - timedelta(days=2)
    body = request_body(unique_name, unique_name, seats=1, received_at=stated.isoformat())
    created = await client.post("/requests", json=body, headers=bearer("bureau_admin", subject="clerk-7"))
    assert created.status_code == 201, created.text
    claim = created.json()["received_claim"]
    assert claim["by"] == "clerk-7" and datetime.fromisoformat(claim["at"]) == stated
    async with app.state.db.transaction() as session:
        audited = await session.scalar(text(
            "SELECT count(*) FROM selection.audit_log WHERE action = 'request.received_claim' AND subject = :s"),
            {"s": body["request_id"]})
    assert audited == 1


async def test_r10_1_absurd_dates_are_a_422_never_a_500(svc, unique_name):
    _, client = svc
    for starts in ("9999-12-31T23:00:00-12:00", "0001-01-01T00:00:00+14:00"):
        body = request_body(unique_name, unique_name, seats=1)
        body.update(starts_at=starts, ends_at=starts)
        response = await client.post("/requests", json=body, headers=ADMIN)
        assert response.status_code == 422, response.text
    past = request_body(unique_name, unique_name, seats=1, working_days_ahead=-30)
    refused = await client.post("/requests", json=past, headers=ADMIN)
    assert refused.status_code == 422 and refused.json()["code"] == "R10.1"
    far = request_body(unique_name, unique_name, seats=1, working_days_ahead=700)
    refused = await client.post("/requests", json=far, headers=ADMIN)
    assert refused.status_code == 422 and refused.json()["code"] == "activity_too_far"


async def test_r44_1_activities_before_the_measures_took_effect_are_refused(svc, unique_name):
    _, client = svc
    body = request_body(unique_name, unique_name, seats=1)
    body.update(starts_at="2024-11-29T09:00:00+08:00", ends_at="2024-11-29T11:00:00+08:00")
    refused = await client.post("/requests", json=body, headers=ADMIN)
    assert refused.status_code == 422 and refused.json()["code"] == "R44.1"


async def test_r4_1_eligibility_is_judged_on_the_activity_date(svc, unique_name):
    app, client = svc
    await appoint(app, unique_name, unique_name, 2)
    ending = await appoint(app, unique_name, unique_name, 2)
    _, starts, _ = activity_window(8)
    async with app.state.db.transaction() as session:
        await session.execute(text(
            "UPDATE selection.supervisor SET term_end = :d WHERE id = ANY(:ids)"),
            {"d": starts.date() - timedelta(days=1), "ids": ending})
    view = await new_request(svc, unique_name, unique_name, seats=2, seats_local=2)
    receipt = (await client.get(f"/draws/{view['draws'][0]['draw_id']}/receipt", headers=ADMIN)).json()
    assert excluded_for(receipt, "out_of_term") >= {str(i) for i in ending}
    assert not set(window_of(view)) & {str(i) for i in ending}


async def test_r2_1_procuratorate_reads_only_its_own_district(svc, unique_name):
    app, client = svc
    await appoint(app, unique_name, unique_name, 2)
    own = bearer("procuratorate", subject="p", district=unique_name)
    other = bearer("procuratorate", subject="q", district="别的区")
    view = await new_request(svc, unique_name, unique_name, seats=1)
    assert (await client.get(f"/requests/{view['request_id']}", headers=own)).status_code == 200
    assert (await client.get(f"/requests/{view['request_id']}", headers=other)).status_code == 403
    supervisor = bearer("supervisor", subject="s", supervisor_id=str(uuid.uuid4()))
    assert (await client.get(f"/requests/{view['request_id']}", headers=supervisor)).status_code == 403


# --- receipts -----------------------------------------------------------------------------------------------

async def test_r11_1_receipt_verifies_over_http_and_stand_alone_and_tampering_is_found(svc, unique_name, tmp_path):
    app, client = svc
    await appoint(app, unique_name + "-A", unique_name, 5)
    await appoint(app, unique_name + "-B", unique_name, 5)
    view = await new_request(svc, unique_name + "-A", unique_name, seats=2)
    draw_id = view["draws"][0]["draw_id"]
    first = window_of(view, "local")[0]
    declined = await client.post(f"/draws/{draw_id}/contacts", headers=ADMIN, json={
        "supervisor_id": first, "outcome": "declined", "reason": "出差", "attempts": attempts_for("declined")})
    assert declined.status_code == 200, declined.text

    receipt = (await client.get(f"/draws/{draw_id}/receipt", headers=ADMIN)).json()
    assert receipt["alg"] == alg.ALG and receipt["seed_formula"]
    assert receipt["commitments"]["bureau"] == view["bureau_commitment"]
    assert len(receipt["contact_log"]) == 1 and receipt["contact_log"][0]["outcome"] == "declined"
    assert receipt["contact_log"][0]["attempts"][0]["channel"] == "phone"
    assert "出差" not in json.dumps(receipt, ensure_ascii=False)  # reason text stays out of the receipt
    assert receipt["order"]["local"][0] == first
    assert len(drawable(receipt)) == 10
    assert alg.verify_receipt(receipt)["ok"]
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt, ensure_ascii=False), encoding="utf-8")
    done = subprocess.run(  # noqa: ASYNC221 (a short child process in a test)
        [sys.executable, "-S", "-m", "services.selection.draw.verify", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr

    # a log re-hashed to name someone out of order: the chain holds, the stand-alone verifier refuses it
    forged = json.loads(json.dumps(receipt))
    entry = forged["contact_log"][0]
    entry["supervisor_id"] = receipt["order"]["local"][3]
    entry["hash"] = alg.contact_entry_hash(entry)
    path.write_text(json.dumps(forged, ensure_ascii=False), encoding="utf-8")
    done = subprocess.run(  # noqa: ASYNC221
        [sys.executable, "-S", "-m", "services.selection.draw.verify", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["checks"]["contact_log_chain"]["ok"] and not result["checks"]["contacts_follow_order"]["ok"]

    verified = (await client.get(f"/draws/{draw_id}/verify", headers=ADMIN)).json()
    assert verified["ok"], verified
    assert {"order", "bureau_commitment", "chain_link", "contact_log_chain", "contacts_follow_order",
            "inputs_frozen_at_acceptance", "snapshot_chain_head"} <= set(verified["checks"])

    # tamper with the stored contact log: the chain check names it
    async with app.state.db.transaction() as session:
        await session.execute(update(contact_log).where(contact_log.c.draw_id == uuid.UUID(draw_id)).values(
            entry=contact_log.c.entry.op("||")(text("""'{"outcome": "confirmed"}'::jsonb"""))))
    tampered = (await client.get(f"/draws/{draw_id}/verify", headers=ADMIN)).json()
    assert not tampered["ok"] and not tampered["checks"]["contact_log_chain"]["ok"]

    # tamper with the stored pool (the first one's served count): the bucket check names it
    digest = receipt["snapshot"]["buckets"][first[:2]]
    async with app.state.db.transaction() as session:
        await session.execute(update(pool_blob).where(pool_blob.c.hash == digest).values(
            body=func.replace(pool_blob.c.body, f'"id":"{first}","served":0', f'"id":"{first}","served":1')))
    tampered = (await client.get(f"/draws/{draw_id}/verify", headers=ADMIN)).json()
    assert not tampered["ok"] and not tampered["checks"]["buckets"]["ok"]
    assert "content does not match" in tampered["checks"]["buckets"]["detail"]
    async with app.state.db.transaction() as session:  # put it back: every later draw names this bucket too
        await session.execute(update(pool_blob).where(pool_blob.c.hash == digest).values(
            body=func.replace(pool_blob.c.body, f'"id":"{first}","served":1', f'"id":"{first}","served":0')))
    assert (await client.get(f"/draws/{draw_id}/receipt", headers=ADMIN)).json()["buckets"] == receipt["buckets"]


async def test_r11_1_receipts_form_a_hash_chain(svc, unique_name):
    app, client = svc
    await appoint(app, unique_name, unique_name, 3)
    ids = []
    for _ in range(2):
        view = await new_request(svc, unique_name, unique_name, seats=1)
        ids.append(view["draws"][0]["draw_id"])
    second = (await client.get(f"/draws/{ids[1]}/receipt", headers=ADMIN)).json()
    async with app.state.db.transaction() as session:
        head_seq = await session.scalar(select(chain_entry.c.seq).where(
            chain_entry.c.hash == second["snapshot"]["chain_head"]))
        own_seq = await session.scalar(select(chain_entry.c.seq).where(chain_entry.c.draw_id == uuid.UUID(ids[1])))
    assert head_seq is not None and head_seq < own_seq
    verified = (await client.get(f"/draws/{ids[1]}/verify", headers=ADMIN)).json()
    assert verified["checks"]["chain_link"]["ok"] and verified["checks"]["snapshot_chain_head"]["ok"]


async def test_bad_input_is_problem_json_never_500(svc):
    _, client = svc
    for body in ({}, {"request_id": "nope"}, "x"):
        response = await client.post("/requests", json=body, headers=ADMIN)
        assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    for field, value in (("balance_mode", "weighted"), ("seats_local", 1), ("requested_at", "2026-01-01T00:00:00Z"),
                         ("procuratorate_nonce", "ab" * 32), ("public_value", "x")):
        body = request_body("d", "s", seats=1, **{field: value})  # policy and time are not the requester's
        assert (await client.post("/requests", json=body, headers=ADMIN)).status_code == 422, field
    assert (await client.get(f"/draws/{uuid.uuid4()}/receipt", headers=ADMIN)).status_code == 404
    assert (await client.get(f"/requests/{uuid.uuid4()}", headers=ADMIN)).status_code == 404
    assert (await client.get("/requests/not-a-uuid", headers=ADMIN)).status_code == 422
    assert (await client.put(f"/requests/{uuid.uuid4()}/beacon", json=BEACON, headers=ADMIN)).status_code == 404
    window = request_body("d", "s", seats=1)
    window["ends_at"] = window["starts_at"]
    bad = await client.post("/requests", json=window, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_window"


async def test_demo_is_idempotent_and_never_fails(svc, settings_env):
    from services.selection import demo
    from tests.integration.selection.conftest import selection_settings

    settings = selection_settings(settings_env)
    await demo.load(settings, wait_seconds=0)  # the session's pool has people by now, or is empty
    assert await demo.load(settings, wait_seconds=0) == 0


async def test_r11_1_snapshot_json_from_postgresql_is_canonical_for_awkward_text(svc, unique_name):
    """The snapshot rows are rendered by PostgreSQL; their bytes must equal the RFC 8785 canonical JSON."""
    app, client = svc
    district = unique_name + '区"引号\\反斜杠\n换行\t制表\x01控制😀'
    tag = unique_name + "专业/\"'<>&\u2028"
    await appoint(app, district, tag, 2)
    await appoint(app, unique_name + "其他", tag, 2)
    from services.selection.pool import service as pool_service
    from tests.integration.selection.conftest import appointed

    several = appointed(district, tag).model_copy(update={"specialties": ["金融", tag, "法律", "a\"b"]})
    async with app.state.db.transaction() as session:
        await pool_service.on_appointed(session, several)
    view = await new_request(svc, district, tag, seats=2)
    receipt = (await client.get(f"/draws/{view['draws'][0]['draw_id']}/receipt", headers=ADMIN)).json()
    assert {r["district"] for r in drawable(receipt).values()} == {district, unique_name + "其他"}
    assert any(len(r["specialties"]) == 4 for r in drawable(receipt).values())
    result = alg.verify_receipt(receipt)
    assert result["ok"], result
    assert (await client.get(f"/draws/{view['draws'][0]['draw_id']}/verify", headers=ADMIN)).json()["ok"]


async def test_r11_1_weighted_mode_is_the_bureaus_setting_recorded_in_params(svc, unique_name):
    app, client = svc
    await appoint(app, unique_name, unique_name, 6)
    with overridden_settings(app, balance_mode="weighted"):
        view = await new_request(svc, unique_name, unique_name, seats=2)
    assert view["balance_mode"] == "weighted"
    receipt = (await client.get(f"/draws/{view['draws'][0]['draw_id']}/receipt", headers=ADMIN)).json()
    assert receipt["params"]["balance_mode"] == "weighted" and receipt["params"]["weight_base"] == 4
    assert alg.verify_receipt(receipt)["ok"]


async def test_r10_2_a_short_notice_request_left_waiting_past_its_day_can_still_be_refused(
        svc, events, producer, unique_name):
    app, client = svc
    await appoint(app, unique_name, unique_name, 1)  # the specialty exists on the roster (R11.2)
    event, _ = requested_event(unique_name, unique_name, seats=1, working_days_ahead=3,
                               short_notice={"reason": "紧急"})
    await publish(producer, event)
    await wait_until(lambda: status_is(client, event.request_id, "awaiting_consent"), timeout=30)
    async with app.state.db.transaction() as session:  # nobody decided, and the day came
        await session.execute(update(request_table).where(request_table.c.id == event.request_id).values(
            starts_at=datetime.now(UTC) - timedelta(hours=1), ends_at=datetime.now(UTC) + timedelta(hours=1)))
    url = f"/requests/{event.request_id}/short-notice-decision"
    late = await client.post(url, json={"granted": True, "reason": "同意"}, headers=ADMIN)
    assert late.status_code == 409 and late.json()["code"] == "activity_started"
    refused = await client.post(url, json={"granted": False, "reason": "已过活动日期"}, headers=ADMIN)
    assert refused.status_code == 200 and refused.json()["status"] == "refused"


async def test_r11_2_a_specialty_nobody_has_is_refused_not_drawn_into_a_silent_shortfall(
        svc, events, producer, unique_name):
    app, client = svc
    await appoint(app, unique_name, unique_name, 3)
    body = request_body(unique_name, f"{unique_name}-无此专业", seats=1)
    refused = await client.post("/requests", json=body, headers=ADMIN)
    assert refused.status_code == 422 and refused.json()["code"] == "R11.2", refused.text
    assert (await client.get(f"/requests/{body['request_id']}", headers=ADMIN)).status_code == 404  # nothing kept
    # from the procuratorate's system: refused with its reason, as the lead-time refusals are
    event, _ = requested_event(unique_name, f"{unique_name}-无此专业", seats=1)
    await publish(producer, event)
    [refusal] = await events.wait(event.request_id, "SupervisionRequestRefused")
    assert refusal.data["code"] == "R11.2" and "专业" in refusal.data["detail"]
    assert await draws_of(app, event.request_id) == 0
    known = await client.post("/requests", json=request_body(unique_name, unique_name, seats=1), headers=ADMIN)
    assert known.status_code == 201, known.text


@pytest.mark.parametrize("activity_type", ["公开听证", "hearing", "", "public_hearing "])
async def test_r10_1_a_request_of_an_activity_type_outside_n_act_is_refused_and_nothing_is_kept(
        svc, unique_name, activity_type):
    """The bureau's door for paper and phone requests takes the N-ACT codes only (shared.activity_types): a label
    or an unknown type is a 422 naming the field, and no request exists afterwards."""
    _, client = svc
    body = {**request_body(unique_name, unique_name, seats=1), "activity_type": activity_type}
    refused = await client.post("/requests", json=body, headers=ADMIN)
    assert refused.status_code == 422 and refused.json()["code"] == "validation_error", refused.text
    assert any(e["loc"][-1] == "activity_type" for e in refused.json()["errors"])
    assert (await client.get(f"/requests/{body['request_id']}", headers=ADMIN)).status_code == 404

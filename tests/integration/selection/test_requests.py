"""Requests by POST and by event, replay safety, lead-time refusals, receipts and verification (R10, R11, R44.1)."""

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select, text, update

from services.selection.draw import algorithm as alg
from services.selection.models import contact_log, draw, pool_blob
from shared.events.contracts import SupervisionRequested
from tests.integration.selection.conftest import (
    ADMIN,
    activity_window,
    appoint,
    drawable,
    publish,
    request_body,
    window_of,
)
from tests.support.apps import bearer
from tests.support.eventing import wait_until

ROOT = Path(__file__).resolve().parents[3]


async def draws_of(app, request_id) -> int:
    async with app.state.db.transaction() as session:
        return await session.scalar(select(func.count()).select_from(draw).where(draw.c.request_id == request_id))


async def test_r11_1_request_via_post_draws_local_and_cross_and_replay_creates_no_second_draw(svc, unique_name):
    app, client = svc
    local = await appoint(app, unique_name + "-A", unique_name, 6)
    cross = await appoint(app, unique_name + "-B", unique_name, 6)
    body = request_body(unique_name + "-A", unique_name, seats=3)
    created = await client.post("/requests", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    view = created.json()
    assert view["status"] == "drawn" and view["seats_local"] == 2 and view["seats_cross"] == 1
    assert len(view["draws"]) == 1 and view["shortfall"] == {}
    assert {c for c in window_of(view, "local")} <= {str(i) for i in local}
    assert len(window_of(view, "local")) == 2 and len(window_of(view, "cross")) == 1
    assert set(window_of(view, "cross")) <= {str(i) for i in cross}

    again = await client.post("/requests", json=body, headers=ADMIN)
    assert again.status_code == 200
    assert again.json()["draws"] == view["draws"]
    assert await draws_of(app, body["request_id"]) == 1


async def test_r11_1_request_via_event_and_replayed_event_creates_no_second_draw(svc, producer, unique_name):
    app, client = svc
    await appoint(app, unique_name, unique_name, 4)
    requested_at, starts, ends = activity_window(8)
    event = SupervisionRequested(
        request_id=uuid.uuid4(), activity_id=uuid.uuid4(), case_ref="c", activity_type="公开听证",
        office="威海市人民检察院", district=unique_name, starts_at=starts, ends_at=ends, place="听证室",
        seats=2, seats_local=2, specialty=unique_name, requested_at=requested_at, procuratorate_nonce="pn")
    first = await publish(producer, event)
    replay = await publish(producer, event)  # a replay: new envelope id, same request id

    async def drawn() -> bool:
        response = await client.get(f"/requests/{event.request_id}", headers=ADMIN)
        return response.status_code == 200 and response.json()["status"] == "drawn"

    await wait_until(drawn, timeout=60)
    await wait_until(lambda: _both_applied(app, first.id, replay.id), timeout=30)
    view = (await client.get(f"/requests/{event.request_id}", headers=ADMIN)).json()
    assert len(window_of(view, "local")) == 2
    assert await draws_of(app, event.request_id) == 1


async def _both_applied(app, *event_ids) -> bool:
    async with app.state.db.transaction() as session:
        n = await session.scalar(text(
            "SELECT count(*) FROM selection.inbox_event WHERE event_id = ANY(:ids) AND status = 'applied'"),
            {"ids": list(event_ids)})
    return n == len(event_ids)


async def test_r10_1_short_lead_time_is_refused_with_the_earliest_date_and_the_refusal_event(
        svc, events, producer, unique_name):
    app, client = svc
    body = request_body(unique_name, unique_name, seats=1, working_days_ahead=2)
    refused = await client.post("/requests", json=body, headers=ADMIN)
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["code"] == "R10.1" and problem["earliest_allowed_date"]
    assert problem["earliest_allowed_date"] in problem["detail"]
    got = await events.wait(body["request_id"], "SupervisionRequestRefused")
    assert got[0].data["code"] == "R10.1"
    assert got[0].data["earliest_allowed_date"] == problem["earliest_allowed_date"]
    # replay: the same refusal, no second event, no draw
    assert (await client.post("/requests", json=body, headers=ADMIN)).status_code == 422
    assert await draws_of(app, body["request_id"]) == 0

    # the event path: refusal goes back to casework as an event
    requested_at, starts, ends = activity_window(1)
    event = SupervisionRequested(
        request_id=uuid.uuid4(), activity_id=uuid.uuid4(), case_ref="c", activity_type="询问",
        office="o", district=unique_name, starts_at=starts, ends_at=ends, place="p", seats=1,
        requested_at=requested_at)
    await publish(producer, event)
    refusal = await events.wait(event.request_id, "SupervisionRequestRefused", timeout=60)
    assert refusal[0].data["code"] == "R10.1"


async def test_r10_2_three_working_days_with_recorded_consent_is_accepted(svc, unique_name):
    app, client = svc
    await appoint(app, unique_name, unique_name, 2)
    consent = {"by": "市司法局张某", "at": datetime.now(UTC).isoformat(), "reason": "案件情况特殊"}
    body = request_body(unique_name, unique_name, seats=1, working_days_ahead=3, lead_time_consent=consent)
    assert (await client.post("/requests", json=body, headers=ADMIN)).status_code == 201
    too_short = request_body(unique_name, unique_name, seats=1, working_days_ahead=2, lead_time_consent=consent)
    refused = await client.post("/requests", json=too_short, headers=ADMIN)
    assert refused.status_code == 422 and refused.json()["code"] == "R10.2"


async def test_r44_1_activities_before_the_measures_took_effect_are_refused(svc, unique_name):
    _, client = svc
    body = request_body(unique_name, unique_name, seats=1)
    body.update(starts_at="2024-11-29T09:00:00+08:00", ends_at="2024-11-29T11:00:00+08:00",
                requested_at="2024-11-01T09:00:00+08:00")
    refused = await client.post("/requests", json=body, headers=ADMIN)
    assert refused.status_code == 422 and refused.json()["code"] == "R44.1"


async def test_r2_1_procuratorate_requests_and_reads_only_its_own_district(svc, unique_name):
    app, client = svc
    await appoint(app, unique_name, unique_name, 2)
    own = bearer("procuratorate", subject="p", district=unique_name)
    other = bearer("procuratorate", subject="q", district="别的区")
    body = request_body(unique_name, unique_name, seats=1)
    assert (await client.post("/requests", json=body, headers=other)).status_code == 403
    created = await client.post("/requests", json=body, headers=own)
    assert created.status_code == 201
    assert (await client.get(f"/requests/{body['request_id']}", headers=own)).status_code == 200
    assert (await client.get(f"/requests/{body['request_id']}", headers=other)).status_code == 403
    supervisor = bearer("supervisor", subject="s", supervisor_id=str(uuid.uuid4()))
    assert (await client.get(f"/requests/{body['request_id']}", headers=supervisor)).status_code == 403


async def test_r11_1_receipt_verifies_over_http_and_stand_alone_and_tampering_is_found(svc, unique_name, tmp_path):
    app, client = svc
    await appoint(app, unique_name + "-A", unique_name, 5)
    await appoint(app, unique_name + "-B", unique_name, 5)
    body = request_body(unique_name + "-A", unique_name, seats=2)
    view = (await client.post("/requests", json=body, headers=ADMIN)).json()
    draw_id = view["draws"][0]["draw_id"]
    first = window_of(view, "local")[0]
    declined = await client.post(f"/draws/{draw_id}/contacts", headers=ADMIN,
                                 json={"supervisor_id": first, "outcome": "declined", "reason": "出差"})
    assert declined.status_code == 200, declined.text

    receipt = (await client.get(f"/draws/{draw_id}/receipt", headers=ADMIN)).json()
    assert receipt["alg"] == alg.ALG and receipt["seed_formula"]
    assert receipt["commitments"]["bureau"] == view["bureau_commitment"]
    assert len(receipt["contact_log"]) == 1 and receipt["contact_log"][0]["outcome"] == "declined"
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

    verified = (await client.get(f"/draws/{draw_id}/verify", headers=ADMIN)).json()
    assert verified["ok"], verified
    assert {"order", "bureau_commitment", "chain_link", "contact_log_chain", "contacts_follow_order"} <= set(
        verified["checks"])

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
        view = (await client.post("/requests", json=request_body(unique_name, unique_name, seats=1),
                                  headers=ADMIN)).json()
        ids.append(view["draws"][0]["draw_id"])
    second = (await client.get(f"/draws/{ids[1]}/receipt", headers=ADMIN)).json()
    assert second["snapshot"]["prev_receipt_hash"] == second["prev_receipt_hash"]
    verified = (await client.get(f"/draws/{ids[1]}/verify", headers=ADMIN)).json()
    assert verified["checks"]["chain_link"]["ok"]


async def test_bad_input_is_problem_json_never_500(svc):
    _, client = svc
    for body in ({}, {"request_id": "nope"}, "x"):
        response = await client.post("/requests", json=body, headers=ADMIN)
        assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    assert (await client.get(f"/draws/{uuid.uuid4()}/receipt", headers=ADMIN)).status_code == 404
    assert (await client.get(f"/requests/{uuid.uuid4()}", headers=ADMIN)).status_code == 404
    assert (await client.get("/requests/not-a-uuid", headers=ADMIN)).status_code == 422
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
    """The snapshot rows are rendered by PostgreSQL; their bytes must equal Python's canonical JSON."""
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
    view = await new_request_raw(client, district, tag)
    receipt = (await client.get(f"/draws/{view['draws'][0]['draw_id']}/receipt", headers=ADMIN)).json()
    assert {r["district"] for r in drawable(receipt).values()} == {district, unique_name + "其他"}
    assert any(len(r["specialties"]) == 4 for r in drawable(receipt).values())
    result = alg.verify_receipt(receipt)
    assert result["ok"], result
    assert (await client.get(f"/draws/{view['draws'][0]['draw_id']}/verify", headers=ADMIN)).json()["ok"]


async def new_request_raw(client, district, specialty) -> dict:
    response = await client.post("/requests", json=request_body(district, specialty, seats=2), headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()


async def test_r11_1_weighted_mode_per_request_is_recorded_and_verifies(svc, unique_name):
    app, client = svc
    await appoint(app, unique_name, unique_name, 6)
    body = request_body(unique_name, unique_name, seats=2, balance_mode="weighted", public_value="2026-001期开奖号码")
    view = (await client.post("/requests", json=body, headers=ADMIN)).json()
    assert view["balance_mode"] == "weighted"
    receipt = (await client.get(f"/draws/{view['draws'][0]['draw_id']}/receipt", headers=ADMIN)).json()
    assert receipt["params"]["balance_mode"] == "weighted" and receipt["public_value"] == "2026-001期开奖号码"
    assert alg.verify_receipt(receipt)["ok"]

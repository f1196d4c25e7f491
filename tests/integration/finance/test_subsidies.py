"""R42.1 and N-RATE: subsidy lines from FeedbackSigned, pricing by activity date, the approval flow."""

import asyncio
import json
import uuid
from datetime import date

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import func, select

from services.finance import service as svc
from services.finance.models import platform, subsidy_line
from shared.events.topics import FINANCE_SUBSIDIES
from tests.integration.finance.helpers import (
    ADMIN,
    FIN_A,
    FIN_B,
    approve,
    deliver,
    envelope_of,
    feedback,
    line_of,
    unique_month,
)
from tests.support.apps import bearer
from tests.support.eventing import wait_until
from tests.support.signing import publish


async def count_lines(app, supervisor_id: uuid.UUID) -> int:
    async with app.state.db.transaction() as session:
        return await session.scalar(select(func.count()).select_from(subsidy_line)
                                    .where(subsidy_line.c.supervisor_id == supervisor_id))


async def test_r42_1_duplicate_feedback_signed_pays_once(app, client) -> None:
    year, month = unique_month()
    event = feedback(activity_date=date(year, month, 5))
    envelope = await deliver(app, event)
    await deliver(app, event, envelope=envelope)  # the same envelope redelivered
    await deliver(app, event)  # the same form again under a new envelope id
    again = event.model_copy(update={"form_id": uuid.uuid4()})
    await deliver(app, again)  # a second form for the same supervisor and activity
    assert await count_lines(app, event.supervisor_id) == 1
    [line] = await line_of(client, event.supervisor_id)
    assert line["status"] == "draft" and line["form_id"] == str(event.form_id)
    assert line["amount_fen"] > 0 and isinstance(line["amount_fen"], int)


async def test_r42_1_duplicate_delivery_on_the_real_broker_pays_once(app, client, kafka_bootstrap) -> None:
    year, month = unique_month()
    event = feedback(activity_date=date(year, month, 6))
    envelope = envelope_of(event)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for _ in range(2):
            await publish(producer, envelope, topic=event.TOPIC)  # signed as casework's relay would
    finally:
        await producer.stop()

    async def seen() -> bool:
        return await count_lines(app, event.supervisor_id) == 1

    await wait_until(seen, timeout=60)
    await asyncio.sleep(1.0)  # give the second copy time to arrive: it must change nothing
    assert await count_lines(app, event.supervisor_id) == 1


async def test_r42_1_unverified_signature_is_refused(app) -> None:
    year, month = unique_month()
    for bad in ("", "not-a-hash", "a" * 63):
        event = feedback(activity_date=date(year, month, 7), signature_hash=bad)
        with pytest.raises(ValueError, match=r"R42\.1"):
            async with app.state.db.transaction() as session:
                await svc.record_feedback(session, event)
        assert await count_lines(app, event.supervisor_id) == 0


async def test_r42_1_unknown_activity_type_priced_as_other_and_flagged(app, client) -> None:
    year, month = unique_month()
    event = feedback(activity_date=date(year, month, 8), activity_type="brand_new_kind")
    await deliver(app, event)
    [line] = await line_of(client, event.supervisor_id)
    other = await client.get("/rates/in-force", params={"activity_type": "other", "on": str(event.activity_date)},
                             headers=FIN_A)
    assert line["type_known"] is False and line["rate_id"] == other.json()["id"]
    assert line["amount_fen"] == other.json()["amount_fen"]


async def test_n_rate_rate_change_mid_month_prices_by_activity_date(app, client) -> None:
    year, month = unique_month()
    first = await client.post("/rates", headers=FIN_A, json={
        "activity_type": "circuit_inspection", "amount_fen": 12_300, "effective_from": str(date(year, month, 1))})
    mid = await client.post("/rates", headers=ADMIN, json={
        "activity_type": "circuit_inspection", "amount_fen": 23_400, "effective_from": str(date(year, month, 16))})
    assert first.status_code == mid.status_code == 201, first.text
    supervisor_id = uuid.uuid4()
    for day in (10, 15, 16, 25):
        await deliver(app, feedback(supervisor_id=supervisor_id, activity_type="circuit_inspection",
                                    activity_date=date(year, month, day)))
    lines = sorted(await line_of(client, supervisor_id), key=lambda line: line["activity_date"])
    assert [line["amount_fen"] for line in lines] == [12_300, 12_300, 23_400, 23_400]
    assert [line["rate_id"] for line in lines] == [first.json()["id"]] * 2 + [mid.json()["id"]] * 2


async def test_n_rate_paid_lines_are_never_repriced(app, client) -> None:
    year, month = unique_month()
    await client.post("/rates", headers=FIN_A, json={
        "activity_type": "public_delivery", "amount_fen": 11_100, "effective_from": str(date(year, month, 1))})
    event = feedback(activity_type="public_delivery", activity_date=date(year, month, 3))
    await deliver(app, event)
    [line] = await line_of(client, event.supervisor_id)
    paid = await approve(client, line["id"], pay=True)
    assert paid["status"] == "paid" and paid["amount_fen"] == 11_100
    # a later rate version effective on/before the activity date changes nothing already priced
    change = await client.post("/rates", headers=FIN_A, json={
        "activity_type": "public_delivery", "amount_fen": 99_900, "effective_from": str(date(year, month, 2))})
    assert change.status_code == 201
    after = (await client.get(f"/subsidy-lines/{line['id']}", headers=FIN_A)).json()
    assert (after["amount_fen"], after["rate_id"]) == (11_100, line["rate_id"])
    in_force = await client.get("/rates/in-force", headers=FIN_A,
                                params={"activity_type": "public_delivery", "on": str(date(year, month, 3))})
    assert in_force.json()["amount_fen"] == 99_900  # new lines would use the new rate


async def test_r42_1_self_approval_refused(app, client) -> None:
    year, month = unique_month()
    event = feedback(activity_date=date(year, month, 9))
    await deliver(app, event)
    [line] = await line_of(client, event.supervisor_id)
    url = f"/subsidy-lines/{line['id']}"
    assert (await client.post(f"{url}/check", headers=FIN_A)).status_code == 200
    refused = await client.post(f"{url}/approve", headers=FIN_A)
    assert refused.status_code == 403 and refused.json()["code"] == "self_approval"
    # a finance user who is the paid supervisor may not approve either
    own = bearer("finance", "supervisor", subject="fin-self", supervisor_id=str(event.supervisor_id))
    refused = await client.post(f"{url}/approve", headers=own)
    assert refused.status_code == 403 and refused.json()["code"] == "self_approval"
    assert (await client.post(f"{url}/approve", headers=FIN_B)).status_code == 200


async def test_r42_1_out_of_order_transitions_conflict(app, client) -> None:
    year, month = unique_month()
    event = feedback(activity_date=date(year, month, 10))
    await deliver(app, event)
    [line] = await line_of(client, event.supervisor_id)
    url = f"/subsidy-lines/{line['id']}"
    for path, kwargs in (("approve", {}), ("pay", {"json": {"paid_on": "2026-12-01", "payment_reference": "X"}})):
        r = await client.post(f"{url}/{path}", headers=FIN_B, **kwargs)
        assert r.status_code == 409 and r.json()["code"] == "invalid_transition"
    forbidden = await client.post(f"{url}/check", headers=bearer("auditor", subject="aud"))
    assert forbidden.status_code == 403


async def test_r42_1_audit_record_at_every_step(app, client) -> None:
    year, month = unique_month()
    event = feedback(activity_date=date(year, month, 11))
    await deliver(app, event)
    [line] = await line_of(client, event.supervisor_id)
    await approve(client, line["id"], pay=True)
    audit = platform.audit
    async with app.state.db.transaction() as session:
        rows = (await session.execute(select(audit.c.actor, audit.c.action, audit.c.details)
                                      .where(audit.c.subject == f"line:{line['id']}").order_by(audit.c.seq))).all()
    assert [r.action for r in rows] == ["subsidy_line.created", "subsidy_line.check", "subsidy_line.approve",
                                        "subsidy_line.pay"]
    assert [r.actor for r in rows[1:]] == ["fin-alice", "fin-bob", "fin-alice"]
    assert rows[2].details == {"from_state": "checked", "to_state": "approved", "amount_fen": line["amount_fen"]}


async def test_r42_1_approval_publishes_subsidy_approved(app, client, kafka_bootstrap) -> None:
    year, month = unique_month()
    event = feedback(activity_date=date(year, month, 12))
    await deliver(app, event)
    [line] = await line_of(client, event.supervisor_id)
    consumer = AIOKafkaConsumer(FINANCE_SUBSIDIES, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                                group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        await approve(client, line["id"])
        found = None
        deadline = asyncio.get_running_loop().time() + 60
        while found is None and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    body = json.loads(record.value)
                    if body["type"] == "SubsidyApproved" and body["data"]["line_id"] == line["id"]:
                        found = body
    finally:
        await consumer.stop()
    assert found is not None, "SubsidyApproved not published"
    assert found["data"]["amount_fen"] == line["amount_fen"]
    assert found["data"]["approved_by"] == "fin-bob"
    assert found["subject"] == str(event.supervisor_id)


async def test_r42_1_a_supervisor_sees_only_own_lines(app, client) -> None:
    year, month = unique_month()
    mine, other = uuid.uuid4(), uuid.uuid4()
    await deliver(app, feedback(supervisor_id=mine, activity_date=date(year, month, 13)))
    await deliver(app, feedback(supervisor_id=other, activity_date=date(year, month, 13)))
    me = bearer("supervisor", subject="sup-me", supervisor_id=str(mine))
    listed = await client.get("/subsidy-lines", headers=me)
    assert listed.status_code == 200
    assert {item["supervisor_id"] for item in listed.json()["items"]} == {str(mine)}
    assert (await client.get("/subsidy-lines", headers=me, params={"supervisor_id": str(other)})).status_code == 403
    [their_line] = await line_of(client, other)
    assert (await client.get(f"/subsidy-lines/{their_line['id']}", headers=me)).status_code == 404
    [my_line] = await line_of(client, mine)
    assert (await client.get(f"/subsidy-lines/{my_line['id']}", headers=me)).status_code == 200
    assert (await client.post(f"/subsidy-lines/{my_line['id']}/check", headers=me)).status_code == 403


async def test_r42_1_concurrent_deliveries_of_one_participation_pay_once(app) -> None:
    year, month = unique_month()
    event = feedback(activity_date=date(year, month, 15))
    copies = [event.model_copy(update={"form_id": uuid.uuid4()}) for _ in range(4)]

    async def apply(e) -> None:
        async with app.state.db.transaction() as session:
            await svc.record_feedback(session, e)

    await asyncio.gather(*(apply(e) for e in copies))
    assert await count_lines(app, event.supervisor_id) == 1

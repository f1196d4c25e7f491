"""R42.1 and N-RATE: subsidy lines from FeedbackSigned, pricing by activity date, the approval flow."""

import asyncio
import json
import uuid
from datetime import date, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import func, select

from services.finance import rules
from services.finance import service as svc
from services.finance.models import platform, subsidy_line
from shared import clock
from shared.events.topics import FINANCE_SUBSIDIES
from tests.integration.finance.helpers import (
    ADMIN,
    FIN_A,
    FIN_B,
    approve,
    covering_letter,
    deliver,
    envelope_of,
    feedback,
    fund,
    funded_district,
    issue,
    line_of,
    new_district,
    pay,
)
from tests.support.apps import bearer
from tests.support.eventing import wait_until
from tests.support.signing import publish


async def count_lines(app, supervisor_id: uuid.UUID) -> int:
    async with app.state.db.transaction() as session:
        return await session.scalar(select(func.count()).select_from(subsidy_line)
                                    .where(subsidy_line.c.supervisor_id == supervisor_id))


async def test_r42_1_duplicate_feedback_signed_pays_once(app, client) -> None:
    event = feedback(activity_date=date(2026, 3, 5))
    envelope = await deliver(app, event)
    await deliver(app, event, envelope=envelope)  # the same envelope redelivered
    await deliver(app, event)  # the same form again under a new envelope id
    again = event.model_copy(update={"form_id": uuid.uuid4(), "signature_hash": uuid.uuid4().hex * 2})
    await deliver(app, again)  # a second (re-signed) form for the same supervisor and activity
    assert await count_lines(app, event.supervisor_id) == 1
    [line] = await line_of(client, event.supervisor_id)
    assert line["status"] == "draft" and line["form_id"] == str(event.form_id)
    assert line["amount_fen"] > 0 and isinstance(line["amount_fen"], int)


async def test_r42_1_duplicate_delivery_on_the_real_broker_pays_once(app, client, kafka_bootstrap) -> None:
    event = feedback(activity_date=date(2026, 3, 6))
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
    for bad in ("", "not-a-hash", "a" * 63):
        event = feedback(activity_date=date(2026, 3, 7), signature_hash=bad)
        with pytest.raises(ValueError, match=r"R42\.1"):
            async with app.state.db.transaction() as session:
                await svc.record_feedback(session, event)
        assert await count_lines(app, event.supervisor_id) == 0


async def test_r42_1_a_signature_hash_that_does_not_cover_the_signed_content_is_refused(app) -> None:
    """The hash is recomputed from the form, signer, content hash, time, method and image casework sent:
    one that covers other content (or another signer) creates no line."""
    base = feedback(activity_date=date(2026, 3, 7))
    content = "c" * 64
    good = base.model_copy(update={"content_hash": content, "method": "on_site_token", "signature_hash":
                                   rules.expected_signature_hash(
                                       form_id=str(base.form_id), supervisor_id=str(base.supervisor_id),
                                       content_hash=content, signed_at=base.signed_at, method="on_site_token",
                                       image_sha256=None)})
    for tampered in (good.model_copy(update={"content_hash": "d" * 64}),
                     good.model_copy(update={"method": "handwritten"}),
                     good.model_copy(update={"supervisor_id": uuid.uuid4()})):
        with pytest.raises(rules.SignatureRefused, match="does not match"):
            async with app.state.db.transaction() as session:
                await svc.record_feedback(session, tampered)
        assert await count_lines(app, tampered.supervisor_id) == 0
    await deliver(app, good)  # through the consumer, as it comes off the broker
    assert await count_lines(app, good.supervisor_id) == 1


async def test_r42_1_signature_in_the_future_before_the_activity_or_replayed_is_refused(app) -> None:
    base = feedback(activity_date=date(2026, 3, 7))
    future = base.model_copy(update={"signed_at": clock.now() + timedelta(hours=1)})
    early = base.model_copy(update={"activity_date": date(2026, 3, 7),
                                    "signed_at": datetime(2026, 3, 6, 12, 0, tzinfo=clock.SHANGHAI)})
    for event in (future, early):
        with pytest.raises(rules.SignatureRefused, match=r"R42\.1"):
            async with app.state.db.transaction() as session:
                await svc.record_feedback(session, event)
    await deliver(app, base)
    # the same signature hash presented for another signer (or another form) is a copy, not a signature
    copy = base.model_copy(update={"supervisor_id": uuid.uuid4()})
    with pytest.raises(rules.SignatureRefused, match="already used"):
        async with app.state.db.transaction() as session:
            await svc.record_feedback(session, copy)
    assert await count_lines(app, copy.supervisor_id) == 0 and await count_lines(app, base.supervisor_id) == 1


async def test_r42_1_unknown_activity_type_priced_as_other_and_flagged(app, client) -> None:
    event = feedback(activity_date=date(2026, 3, 8), activity_type="brand_new_kind")
    await deliver(app, event)
    [line] = await line_of(client, event.supervisor_id)
    other = await client.get("/rates/in-force", params={"activity_type": "other", "on": str(event.activity_date)},
                             headers=FIN_A)
    assert line["type_known"] is False and line["rate_id"] == other.json()["id"]
    assert line["amount_fen"] == other.json()["amount_fen"]


async def test_n_rate_rate_change_mid_month_prices_by_activity_date(app, client) -> None:
    with clock.frozen(datetime(2025, 6, 1, 9, 0, tzinfo=clock.SHANGHAI)):  # both rates lie in the future
        first = await client.post("/rates", headers=FIN_A, json={
            "activity_type": "circuit_inspection", "amount_fen": 12_300, "effective_from": "2025-07-01"})
        mid = await client.post("/rates", headers=ADMIN, json={
            "activity_type": "circuit_inspection", "amount_fen": 23_400, "effective_from": "2025-07-16"})
    assert first.status_code == mid.status_code == 201, first.text
    assert first.json()["status"] == mid.json()["status"] == "approved"
    supervisor_id = uuid.uuid4()
    for day in (10, 15, 16, 25):
        await deliver(app, feedback(supervisor_id=supervisor_id, activity_type="circuit_inspection",
                                    activity_date=date(2025, 7, day)))
    lines = sorted(await line_of(client, supervisor_id), key=lambda line: line["activity_date"])
    assert [line["amount_fen"] for line in lines] == [12_300, 12_300, 23_400, 23_400]
    assert [line["rate_id"] for line in lines] == [first.json()["id"]] * 2 + [mid.json()["id"]] * 2


async def test_n_rate_a_rate_effective_on_a_past_date_needs_a_second_finance_user(app, client) -> None:
    district = new_district()
    await fund(client, 2025, district)
    with clock.frozen(datetime(2025, 6, 1, 9, 0, tzinfo=clock.SHANGHAI)):
        created = await client.post("/rates", headers=FIN_A, json={
            "activity_type": "public_delivery", "amount_fen": 11_100, "effective_from": "2025-08-01"})
    assert created.json()["status"] == "approved"
    event = feedback(activity_type="public_delivery", activity_date=date(2025, 8, 3), district=district)
    await deliver(app, event)
    [line] = await line_of(client, event.supervisor_id)
    approved = await approve(client, line["id"])
    assert approved["status"] == "approved" and approved["amount_fen"] == 11_100

    def in_force():
        return client.get("/rates/in-force", headers=FIN_A,
                          params={"activity_type": "public_delivery", "on": "2025-08-03"})

    with clock.frozen(datetime(2025, 9, 1, 9, 0, tzinfo=clock.SHANGHAI)):
        change = await client.post("/rates", headers=FIN_A, json={
            "activity_type": "public_delivery", "amount_fen": 99_900, "effective_from": "2025-08-02"})
        assert change.status_code == 201 and change.json()["status"] == "pending"
        assert (await in_force()).json()["amount_fen"] == 11_100  # not in force before the second approval
        own = await client.post(f"/rates/{change.json()['id']}/approve", headers=FIN_A)
        assert own.status_code == 403 and own.json()["code"] == "self_approval"
        second = await client.post(f"/rates/{change.json()['id']}/approve", headers=FIN_B)
        assert second.status_code == 200 and second.json()["approved_by"] == "fin-bob"
        again = await client.post(f"/rates/{change.json()['id']}/approve", headers=ADMIN)
        assert again.status_code == 409
    assert (await in_force()).json()["amount_fen"] == 99_900  # new lines use the new rate
    after = (await client.get(f"/subsidy-lines/{line['id']}", headers=FIN_A)).json()
    assert (after["amount_fen"], after["rate_id"]) == (11_100, line["rate_id"])  # never repriced


async def test_r42_1_self_approval_refused(app, client) -> None:
    event = feedback(activity_date=date(2026, 3, 9), district=await funded_district(client))
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
    event = feedback(activity_date=date(2026, 3, 10))
    await deliver(app, event)
    [line] = await line_of(client, event.supervisor_id)
    url = f"/subsidy-lines/{line['id']}"
    for path, kwargs in (("approve", {}), ("pay", {"json": {"payment_reference": "X"}})):
        r = await client.post(f"{url}/{path}", headers=FIN_B, **kwargs)
        assert r.status_code == 409 and r.json()["code"] == "invalid_transition"
    forbidden = await client.post(f"{url}/check", headers=bearer("auditor", subject="aud"))
    assert forbidden.status_code == 403


async def test_r42_1_audit_record_at_every_step(app, client) -> None:
    district = await funded_district(client)
    event = feedback(activity_date=date(2026, 3, 11), district=district)
    await deliver(app, event)
    [line] = await line_of(client, event.supervisor_id)
    await approve(client, line["id"])
    with clock.frozen(datetime(2026, 4, 2, 10, 0, tzinfo=clock.SHANGHAI)):
        await issue(client, "2026-03", district)
        await covering_letter(client, "2026-03", district)
        assert (await pay(client, line["id"])).status_code == 200
    audit = platform.audit
    async with app.state.db.transaction() as session:
        rows = (await session.execute(select(audit.c.actor, audit.c.action, audit.c.details)
                                      .where(audit.c.subject == f"line:{line['id']}").order_by(audit.c.seq))).all()
    assert [r.action for r in rows] == ["subsidy_line.created", "subsidy_line.check", "subsidy_line.approve",
                                        "subsidy_line.pay"]
    assert [r.actor for r in rows[1:]] == ["fin-alice", "fin-bob", "fin-alice"]
    assert {k: rows[2].details[k] for k in ("from_state", "to_state", "amount_fen")} == {
        "from_state": "checked", "to_state": "approved", "amount_fen": line["amount_fen"]}


async def test_r42_1_paid_is_a_state_once_by_an_issued_table_after_the_covering_letter(app, client) -> None:
    district = await funded_district(client)
    event = feedback(activity_date=date(2026, 3, 12), district=district)
    await deliver(app, event)
    [line] = await line_of(client, event.supervisor_id)
    await approve(client, line["id"])
    not_issued = await pay(client, line["id"])
    assert not_issued.status_code == 409 and not_issued.json()["code"] == "R42.1"
    moment = datetime(2026, 4, 3, 15, 30, tzinfo=clock.SHANGHAI)
    with clock.frozen(moment):
        await issue(client, "2026-03", district)
        no_letter = await pay(client, line["id"])
        assert no_letter.status_code == 409 and no_letter.json()["code"] == "R42.1"
        assert "反馈函" in no_letter.json()["title"]
        await covering_letter(client, "2026-03", district)
        paid = await pay(client, line["id"], "ICBC-20260403-0001")
    assert paid.status_code == 200, paid.text
    body = paid.json()
    assert (body["status"], body["paid_by"], body["payment_reference"]) == ("paid", "fin-alice", "ICBC-20260403-0001")
    assert datetime.fromisoformat(body["paid_at"]) == moment and body["paid_on"] == "2026-04-03"
    twice = await pay(client, line["id"], "ICBC-20260403-0002")
    assert twice.status_code == 409 and twice.json()["code"] == "already_paid"
    # the supervisor is told it was paid (notify reads SubsidyPaid): once, not again for the refused second pay
    async with app.state.db.transaction() as session:
        paid_events = (await session.execute(select(platform.outbox.c.envelope).where(
            platform.outbox.c.event_type == "SubsidyPaid",
            platform.outbox.c.key == str(event.supervisor_id)))).scalars().all()
    assert [e["data"] for e in paid_events] == [{
        "line_id": line["id"], "supervisor_id": str(event.supervisor_id), "activity_id": str(event.activity_id),
        "amount_fen": line["amount_fen"], "paid_on": "2026-04-03", "paid_at": body["paid_at"]}]
    assert (await client.get(f"/subsidy-lines/{line['id']}", headers=FIN_A)).json()["payment_reference"] == \
        "ICBC-20260403-0001"
    table = (await client.get("/disbursements/2026-03", headers=FIN_A, params={"district": district})).json()
    [row] = table["rows"]
    assert row["paid_fen"] == row["total_fen"] and row["payment"].startswith("已支付")
    assert "ICBC-20260403-0001" in row["payment"]


async def test_r42_1_reject_needs_a_reason_and_is_final(app, client) -> None:
    event = feedback(activity_date=date(2026, 3, 13), district=await funded_district(client))
    await deliver(app, event)
    [line] = await line_of(client, event.supervisor_id)
    url = f"/subsidy-lines/{line['id']}"
    assert (await client.post(f"{url}/reject", headers=FIN_A, json={"reason": "  "})).status_code == 422
    rejected = await client.post(f"{url}/reject", headers=FIN_A, json={"reason": "签字人与名单不符"})
    assert rejected.status_code == 200
    assert (rejected.json()["status"], rejected.json()["reject_reason"]) == ("rejected", "签字人与名单不符")
    assert (await client.post(f"{url}/check", headers=FIN_B)).status_code == 409


async def test_r42_1_approval_publishes_subsidy_approved(app, client, kafka_bootstrap) -> None:
    event = feedback(activity_date=date(2026, 3, 12), district=await funded_district(client))
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
    mine, other = uuid.uuid4(), uuid.uuid4()
    await deliver(app, feedback(supervisor_id=mine, activity_date=date(2026, 3, 13)))
    await deliver(app, feedback(supervisor_id=other, activity_date=date(2026, 3, 13)))
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
    event = feedback(activity_date=date(2026, 3, 15))
    copies = [event.model_copy(update={"form_id": uuid.uuid4(), "signature_hash": uuid.uuid4().hex * 2})
              for _ in range(4)]

    async def apply(e) -> None:
        async with app.state.db.transaction() as session:
            await svc.record_feedback(session, e)

    await asyncio.gather(*(apply(e) for e in copies))
    assert await count_lines(app, event.supervisor_id) == 1

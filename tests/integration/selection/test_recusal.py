"""Recusal from each source (R13.1 self, R13.2 procuratorate, R13.2 party) → replacement and RecusalDecided."""

import uuid
from datetime import UTC, datetime

from shared.events.contracts import RecusalRequested
from tests.integration.selection.conftest import ADMIN, appoint, drawable, new_request, publish, window_of
from tests.integration.selection.test_contact import contact, order_of
from tests.support.apps import bearer
from tests.support.eventing import wait_until


async def test_r13_1_self_declared_recusal_takes_effect_at_once_and_is_replaced(svc, events, unique_name):
    app, client = svc
    await appoint(app, unique_name, unique_name, 4)
    view = await new_request(svc, unique_name, unique_name, seats=1, seats_local=1)
    order = await order_of(client, view)
    view = await contact(client, view, order[0], "confirmed")
    me = bearer("supervisor", subject="s", supervisor_id=order[0])
    rid = view["request_id"]
    response = await client.post(f"/assignments/{rid}/recusal", json={"ground": "系当事人近亲属"}, headers=me)
    assert response.status_code == 200 and response.json()["status"] == "recused"
    after = (await client.get(f"/requests/{rid}", headers=ADMIN)).json()
    assert window_of(after) == [order[1]] and after["roster"] == []
    decided = await events.wait(rid, "RecusalDecided")
    assert decided[0].data["granted"] is True and decided[0].data["supervisor_id"] == order[0]
    released = await events.wait(rid, "SupervisorReleased")
    assert released[0].data["reason"] == "recused" and released[0].data["replaced_by"] == order[1]
    # someone else cannot recuse on the person's behalf, and a stranger has nothing to recuse from
    stranger = bearer("supervisor", subject="x", supervisor_id=str(uuid.uuid4()))
    assert (await client.post(f"/assignments/{rid}/recusal", json={"ground": "g"},
                              headers=stranger)).status_code == 404


async def test_r13_1_declared_relations_exclude_people_from_a_request_with_that_party(svc, unique_name):
    app, client = svc
    people = await appoint(app, unique_name, unique_name, 3)
    related = people[0]
    me = bearer("supervisor", subject="s", supervisor_id=str(related))
    declared = await client.put(f"/supervisors/{related}/declared-relations",
                                json={"party_names": ["李四", " 王五 "]}, headers=me)
    assert declared.status_code == 200 and declared.json()["count"] == 2
    other = bearer("supervisor", subject="o", supervisor_id=str(people[1]))
    assert (await client.put(f"/supervisors/{related}/declared-relations", json={"party_names": []},
                             headers=other)).status_code == 403
    view = await new_request(svc, unique_name, unique_name, seats=3, seats_local=3,
                             conflict_parties=["王五", "赵六"])
    receipt = (await client.get(f"/draws/{view['draws'][0]['draw_id']}/receipt", headers=ADMIN)).json()
    assert str(related) not in drawable(receipt)
    assert receipt["params"]["excluded"][str(related)] == ["conflict", "recused"]
    assert view["shortfall"] == {"local": 1}
    recusals = (await client.get(f"/requests/{view['request_id']}/recusals", headers=ADMIN)).json()
    assert [(r["supervisor_id"], r["source"], r["status"]) for r in recusals] == [
        (str(related), "conflict_list", "granted")]


async def test_r13_2_procuratorate_recusal_decided_by_the_bureau_and_replaced(svc, events, unique_name):
    app, client = svc
    await appoint(app, unique_name, unique_name, 4)
    view = await new_request(svc, unique_name, unique_name, seats=2, seats_local=2)
    order = await order_of(client, view)
    view = await contact(client, view, order[0], "confirmed")
    rid = view["request_id"]
    created = await client.post("/recusals", headers=ADMIN, json={
        "request_id": rid, "supervisor_id": order[0], "source": "procuratorate", "ground": "曾担任本案证人"})
    assert created.status_code == 201
    recusal_id = created.json()["recusal_id"]
    procuratorate = bearer("procuratorate", subject="p", district=unique_name)
    assert (await client.post(f"/recusals/{recusal_id}/decision", json={"granted": True, "reason": "r"},
                              headers=procuratorate)).status_code == 403
    decided = await client.post(f"/recusals/{recusal_id}/decision", headers=ADMIN,
                                json={"granted": True, "reason": "符合回避条件"})
    assert decided.status_code == 200 and decided.json()["status"] == "granted"
    after = (await client.get(f"/requests/{rid}", headers=ADMIN)).json()
    assert window_of(after) == [order[1], order[2]]
    event = (await events.wait(rid, "RecusalDecided"))[0]
    assert event.data == {"request_id": rid, "supervisor_id": order[0], "granted": True,
                          "decided_by": "bureau-1", "reason": "符合回避条件"}
    assert (await events.wait(rid, "SupervisorReleased"))[0].data["replaced_by"] == order[2]
    again = await client.post(f"/recusals/{recusal_id}/decision", headers=ADMIN,
                              json={"granted": False, "reason": "x"})
    assert again.status_code == 409


async def test_r13_2_party_application_by_event_then_bureau_decision(svc, events, producer, unique_name):
    app, client = svc
    await appoint(app, unique_name, unique_name, 4)
    view = await new_request(svc, unique_name, unique_name, seats=1, seats_local=1)
    order = await order_of(client, view)
    rid = view["request_id"]
    await publish(producer, RecusalRequested(request_id=uuid.UUID(rid), supervisor_id=uuid.UUID(order[0]),
                                             source="party", ground="当事人申请：与对方当事人有利害关系",
                                             requested_at=datetime.now(UTC)))

    async def pending() -> bool:
        rows = (await client.get(f"/requests/{rid}/recusals", headers=ADMIN)).json()
        return any(r["source"] == "party" and r["status"] == "pending" for r in rows)

    await wait_until(pending, timeout=60)
    recusal_id = next(r["recusal_id"] for r in (await client.get(f"/requests/{rid}/recusals", headers=ADMIN)).json())
    # a rejected application changes nothing but is still published
    decided = await client.post(f"/recusals/{recusal_id}/decision", headers=ADMIN,
                                json={"granted": False, "reason": "不符合回避条件"})
    assert decided.json()["status"] == "rejected"
    assert window_of((await client.get(f"/requests/{rid}", headers=ADMIN)).json()) == [order[0]]
    first = (await events.wait(rid, "RecusalDecided"))[0]
    assert first.data["granted"] is False

    # a second application (bureau-registered) is granted: the pending person is skipped and replaced
    second = await client.post("/recusals", headers=ADMIN, json={
        "request_id": rid, "supervisor_id": order[0], "source": "party", "ground": "补充材料"})
    await client.post(f"/recusals/{second.json()['recusal_id']}/decision", headers=ADMIN,
                      json={"granted": True, "reason": "符合回避条件"})
    after = (await client.get(f"/requests/{rid}", headers=ADMIN)).json()
    assert window_of(after) == [order[1]]
    assert [c["status"] for c in after["candidates"]][:1] == ["recused"]
    decided_events = await events.wait(rid, "RecusalDecided", n=2)
    assert decided_events[-1].data["granted"] is True


async def test_r13_2_recusal_granted_before_the_person_is_reached_skips_them(svc, unique_name):
    app, client = svc
    await appoint(app, unique_name, unique_name, 4)
    view = await new_request(svc, unique_name, unique_name, seats=1, seats_local=1)
    order = await order_of(client, view)
    rid = view["request_id"]
    created = await client.post("/recusals", headers=ADMIN, json={
        "request_id": rid, "supervisor_id": order[1], "source": "procuratorate", "ground": "利害关系"})
    await client.post(f"/recusals/{created.json()['recusal_id']}/decision", headers=ADMIN,
                      json={"granted": True, "reason": "符合回避条件"})
    view = await contact(client, view, order[0], "declined")
    assert window_of(view) == [order[2]]
    statuses = {c["supervisor_id"]: c["status"] for c in view["candidates"]}
    assert statuses[order[1]] == "recused"
    verified = (await client.get(f"/draws/{view['draws'][0]['draw_id']}/verify", headers=ADMIN)).json()
    assert verified["ok"], verified


async def test_r13_2_the_same_application_arriving_twice_at_once_is_recorded_once(svc, unique_name):
    """Two deliveries applied at the same time (an HTTP request and its event, a redelivery): one recusal."""
    import asyncio

    from services.selection.contact import service as contact_service

    app, client = svc
    await appoint(app, unique_name, unique_name, 3)
    view = await new_request(svc, unique_name, unique_name, seats=1, seats_local=1)
    order = await order_of(client, view)

    async def apply(session) -> uuid.UUID:
        return await contact_service.request_recusal(
            session, request_id=uuid.UUID(view["request_id"]), supervisor_id=uuid.UUID(order[0]),
            source="party", ground="与当事人系同学关系", requested_at=datetime.now(UTC))

    async def apply_alone() -> uuid.UUID:
        async with app.state.db.transaction() as session:
            return await apply(session)

    async with app.state.db.transaction() as first:
        first_id = await apply(first)
        second = asyncio.create_task(apply_alone())  # while the first is not committed yet
        await asyncio.sleep(0.5)
    second_id = await second
    assert second_id == first_id
    listed = (await client.get(f"/requests/{view['request_id']}/recusals", headers=ADMIN)).json()
    assert [(r["recusal_id"], r["status"]) for r in listed] == [(str(first_id), "pending")]

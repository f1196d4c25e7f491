"""Helpers of the round tests: people, rounds driven through the HTTP API, reminders, results off the broker."""

import asyncio
import json
import uuid
from datetime import date

from aiokafka import AIOKafkaConsumer

from services.appraisal import rules
from services.appraisal.models import appraisal_round, participant
from shared.events.topics import APPRAISAL_RESULTS
from tests.integration.appraisal.helpers import ADMIN, SECOND, appointed, deliver

CRITERIA = {key: {"met": True, "evidence": f"经核实：{label}"} for key, label in rules.EXCELLENT_CRITERIA.items()}
NOTE = "已征求市人民检察院意见，无异议"


async def people(app, n: int, district: str = "环翠区", **term) -> list[uuid.UUID]:
    events = [appointed(district=district, name=f"测试{i}", **term) for i in range(n)]
    await deliver(app, *events)
    return [e.supervisor_id for e in events]


async def open_round(client, ids: list[uuid.UUID], **body) -> str:
    body = {"kind": "annual", "year": 2025, **body}
    r = await client.post("/rounds", headers=ADMIN, json={**body, "supervisor_ids": [str(i) for i in ids]})
    assert r.status_code == 201, r.text
    assert r.json()["appraised"] == len(ids)
    return r.json()["id"]


async def open_term(client, ids: list[uuid.UUID], start: date, end: date) -> str:
    return await open_round(client, ids, kind="term", year=None, term_start=start.isoformat(),
                            term_end=end.isoformat())


async def step(client, round_id: str, state: str, **body) -> dict:
    r = await client.post(f"/rounds/{round_id}/steps/{state}", headers=ADMIN, json=body or None)
    assert r.status_code == 200, r.text
    return r.json()


async def back(client, round_id: str, reason: str = "材料需补正") -> dict:
    r = await client.post(f"/rounds/{round_id}/back", headers=ADMIN, json={"reason": reason})
    assert r.status_code == 200, r.text
    return r.json()


async def grade(client, round_id: str, sid: uuid.UUID, value: str, grounds: list[int] | None = None,
                criteria: dict | None = None):
    body = {"grade": value, "grounds": grounds or []}
    if criteria is not None or value == "excellent":
        body["excellent_criteria"] = CRITERIA if criteria is None else criteria
    return await client.put(f"/rounds/{round_id}/participants/{sid}/grade", headers=ADMIN, json=body)


async def consult(client, round_id: str, *districts: str) -> None:
    for district in districts:
        r = await client.put(f"/rounds/{round_id}/districts/{district}/consultation", headers=ADMIN,
                             json={"note": f"已征求{district}人民检察院意见"})
        assert r.status_code == 200, r.text


async def to_district_proposed(client, round_id: str, districts: tuple[str, ...] = ("环翠区",)) -> None:
    await step(client, round_id, "self_summaries")
    await step(client, round_id, "reviewed")
    await consult(client, round_id, *districts)
    await step(client, round_id, "district_proposed")


async def to_notice(client, round_id: str) -> dict:
    await step(client, round_id, "bureau_proposed", note=NOTE)
    return await step(client, round_id, "public_notice")


async def justify(client, round_id: str, text: str = "本年度表现突出者较多，经集体研究") -> dict:
    r = await client.put(f"/rounds/{round_id}/cap-justification", headers=ADMIN, json={"text": text})
    assert r.status_code == 200, r.text
    r = await client.post(f"/rounds/{round_id}/cap-justification/approval", headers=SECOND)
    assert r.status_code == 200, r.text
    return r.json()


async def remind(client, sid: uuid.UUID, on: date, ground: int, *, uncorrected_on: date | None = None) -> None:
    """R32.1: a reminder on record, and (optionally) the conduct going on after it."""
    r = await client.post(f"/ledger/{sid}/conduct", headers=ADMIN, json={
        "kind": "reminder", "text": "已提醒教育", "occurred_on": on.isoformat(), "ground": ground})
    assert r.status_code == 201, r.text
    if uncorrected_on:
        r = await client.post(f"/ledger/{sid}/conduct", headers=ADMIN, json={
            "kind": "uncorrected", "text": "经提醒仍未改正", "occurred_on": uncorrected_on.isoformat(),
            "ground": ground})
        assert r.status_code == 201, r.text


async def defence(client, round_id: str, sid: uuid.UUID) -> dict:
    r = await client.post(f"/rounds/{round_id}/participants/{sid}/defence-notice", headers=ADMIN, json={
        "reasons": "长期失联，经提醒教育仍未改正", "basis": "第三十二条第（二）项"})
    assert r.status_code == 200, r.text
    return r.json()


async def annual_history(app, years: list[int], grades: dict[uuid.UUID, list[str | None]]) -> None:
    """Constructed history: one finalized annual round per year, with these grades (inserted directly)."""
    async with app.state.db.transaction() as session:
        for i, year in enumerate(years):
            rid = uuid.uuid4()
            await session.execute(appraisal_round.insert().values(id=rid, kind="annual", year=year,
                                                                  state="finalized", created_by="history"))
            for supervisor_id, values in grades.items():
                if i < len(values) and values[i] is not None:
                    await session.execute(participant.insert().values(round_id=rid, supervisor_id=supervisor_id,
                                                                      final_grade=values[i], result_version=1))


RESULT_TYPES = ("AppraisalFinalized", "CommendationIssued")


async def results_of(bootstrap: str, round_id: str, expected: int) -> list[dict]:
    """AppraisalFinalized / CommendationIssued of this round read back from `appraisal.results`."""
    consumer = AIOKafkaConsumer(APPRAISAL_RESULTS, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    seen: list[dict] = []
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while len(seen) < expected and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    body = json.loads(record.value)
                    # the results only (DefenceNoticeSent of the round shares the topic)
                    if body["data"].get("round_id") == round_id and body["type"] in RESULT_TYPES:
                        seen.append(body)
    finally:
        await consumer.stop()
    return seen

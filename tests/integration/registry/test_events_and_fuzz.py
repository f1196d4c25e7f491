"""Every registry event reaches a consumer on the broker; schemathesis finds no 5xx."""

import asyncio
import json
import time

from aiokafka import AIOKafkaConsumer

from services.registry.app import create_app
from services.registry.rules import add_months
from shared import clock
from shared.events.topics import REGISTRY_SUPERVISORS, REGISTRY_TRAINING
from tests.support.apps import bearer
from tests.support.fuzz import assert_no_server_errors
from tests.support.registry_helpers import ADMIN, appointed, record, session


async def test_events_of_each_kind_reach_a_consumer(client, registry_settings):
    sup = await appointed(client, name="事件测试", district="荣成市", specialties=["金融"])
    sid = sup["id"]
    course = await session(client)
    assert (await record(client, course, sid)).status_code == 200
    await client.patch(f"/supervisors/{sid}", headers=ADMIN, json={"employer": "事件新单位"})
    reported_on = clock.today()
    changed_on = add_months(reported_on, -2)
    report = await client.post(f"/supervisors/{sid}/change-reports", headers=ADMIN, json={
        "description": "住址变更", "changed_on": changed_on.isoformat()})
    assert report.status_code == 201, report.text
    await client.post(f"/supervisors/{sid}/dismissals", headers=ADMIN, json={"ground": 3, "evidence_note": "x"})

    consumer = AIOKafkaConsumer(REGISTRY_SUPERVISORS, REGISTRY_TRAINING,
                                bootstrap_servers=registry_settings.kafka_bootstrap_servers, group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    seen: list[dict] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for rec in records:
                    envelope = json.loads(rec.value)
                    if envelope["subject"] == sid:
                        assert rec.key.decode() == sid
                        seen.append(envelope)
            kinds = {e["type"] for e in seen}
            if {"SupervisorAppointed", "TrainingRecorded", "SupervisorUpdated", "SupervisorDismissed",
                "ChangeReportRecorded"} <= kinds \
                    and sum(e["type"] == "EligibilityChanged" for e in seen) >= 3:
                break
            await asyncio.sleep(0.1)
    finally:
        await consumer.stop()
    by_type: dict[str, list[dict]] = {}
    for e in seen:
        by_type.setdefault(e["type"], []).append(e["data"])
    appointed_event = by_type["SupervisorAppointed"][0]
    assert appointed_event["name"] == "事件测试" and appointed_event["district"] == "荣成市"
    assert appointed_event["certificate_no"] == sup["certificate_no"] and appointed_event["eligible"] is False
    assert appointed_event["term_end"] == sup["term_end"]
    training = by_type["TrainingRecorded"][0]
    assert training["session_id"] == course and training["kind"] == "initial" and training["exam_passed"] is True
    assert training["centralized"] is False  # R23.1: the initial course is not the yearly centralized training
    assert training["date"] == clock.today().isoformat()
    assert by_type["SupervisorUpdated"][0]["changed"] == {"employer": "事件新单位"}
    assert by_type["ChangeReportRecorded"] == [{  # R6.1: late (> 1 month), so the ledger will count it
        "supervisor_id": sid, "report_id": report.json()["id"], "changed_on": changed_on.isoformat(),
        "reported_on": reported_on.isoformat(), "late": True}]
    dismissed = by_type["SupervisorDismissed"][0]
    assert dismissed["ground"] == 3 and dismissed["permanent_ban"] is False
    eligibility = [(d["eligible"], d["reasons"]) for d in by_type["EligibilityChanged"]]
    assert eligibility == [(False, ["initial_training_pending"]), (True, []), (False, ["dismissed"])]
    assert all(e["source"] == "registry" for e in seen)


def test_schemathesis_finds_no_server_errors(registry_settings):
    assert assert_no_server_errors(create_app(registry_settings), bearer("bureau_admin", subject="fuzz")) > 0


def test_schemathesis_as_district_bureau_finds_no_server_errors(registry_settings):
    token = bearer("district_bureau", subject="fuzz-district", district="环翠区")
    assert assert_no_server_errors(create_app(registry_settings), token, max_examples=10) > 0

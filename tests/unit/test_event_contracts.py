"""The event contract (EVENTS.md): every event has its topic and key, round-trips, and is documented."""

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.events import topics
from shared.events.asyncapi import build_document
from shared.events.contracts import ALL_EVENTS, REGISTRY, EligibilityChanged, contract_for
from shared.events.envelope import Envelope

ROOT = Path(__file__).resolve().parents[2]

EXPECTED = {  # EVENTS.md: topic of each event type
    "SupervisorAppointed": "registry.supervisors", "SupervisorUpdated": "registry.supervisors",
    "SupervisorDismissed": "registry.supervisors", "EligibilityChanged": "registry.supervisors",
    "ChangeReportRecorded": "registry.supervisors",  # added after EVENTS.md v1 (a new type, not a breaking change)
    "TrainingRecorded": "registry.training", "SupervisionRequested": "casework.supervision-requests",
    "RecusalRequested": "casework.supervision-requests",
    "DrawNonceRevealed": "casework.supervision-requests", "SupervisionCancelled": "casework.supervision-requests",
    "ReceiptMismatchDetected": "casework.supervision-requests",  # added by the project (DRAW.md protocol step 5)
    "SupervisionAccepted": "selection.assignments",
    "DrawCompleted": "selection.assignments",  # added by the project: where casework fetches each receipt
    "SupervisorAbsenceRecorded": "selection.assignments",  # added by the project: absence after the fact
    "SupervisionRequestRefused": "selection.assignments", "SupervisorDrawn": "selection.assignments",
    "SupervisorAsked": "selection.assignments",
    "SupervisorReleased": "selection.assignments", "SupervisionStaffed": "selection.assignments",
    "RecusalDecided": "selection.assignments", "FeedbackSigned": "casework.feedback",
    "OpinionAdoptionNotified": "casework.feedback", "AppraisalFinalized": "appraisal.results",
    "CommendationIssued": "appraisal.results", "SubsidyApproved": "finance.subsidies",
    "CalendarYearPublished": "platform.calendar",  # added after EVENTS.md v1: every service publishes and reads it
    "AuditHeadPublished": "platform.audit",  # added by the project (issue 16): every service publishes and reads it
    # added by the project (issue 14): what is recorded for a supervisor reaches them (services/notify)
    "MaterialsShared": "casework.feedback", "OpinionRecorded": "casework.feedback",
    "DefenceNoticeSent": "appraisal.results", "SubsidyPaid": "finance.subsidies",
}


def test_every_event_of_the_contract_exists_on_its_topic_with_its_key_field():
    assert {e.TYPE: e.TOPIC for e in ALL_EVENTS} == EXPECTED
    for event in ALL_EVENTS:
        assert event.TOPIC in topics.ALL_TOPICS
        assert event.KEY in event.model_fields, event
        assert event.VERSION == (2 if event.TYPE == "SupervisionRequested" else 1)  # EVENTS.md version 2
        assert contract_for(event.TYPE, event.VERSION) is event
    assert len(REGISTRY) == len(ALL_EVENTS)
    assert contract_for("SupervisorDrawn", 2) is None
    assert contract_for("SupervisionRequested", 1) is None  # v1 (with the nonce in it) is dropped


def test_events_are_frozen_and_refuse_unknown_fields():
    event = EligibilityChanged(supervisor_id=uuid.uuid4(), eligible=False, reasons=["dismissed"])
    with pytest.raises(ValidationError):
        event.eligible = True
    with pytest.raises(ValidationError):
        EligibilityChanged(supervisor_id=uuid.uuid4(), eligible=True, reasons=[], extra="x")
    with pytest.raises(ValidationError):
        EligibilityChanged(supervisor_id=uuid.uuid4(), eligible=True, reasons=["on_holiday"])


def test_the_envelope_round_trips_and_its_subject_is_the_aggregate_id():
    supervisor = uuid.uuid4()
    event = EligibilityChanged(supervisor_id=supervisor, eligible=True, reasons=[])
    envelope = Envelope(type=event.TYPE, version=event.VERSION, source="registry", correlation_id="c1",
                        subject=event.subject, data=event.model_dump(mode="json"),
                        occurred_at=datetime(2026, 11, 29, 7, 30, tzinfo=UTC))
    assert envelope.subject == str(supervisor)
    again = Envelope.from_bytes(envelope.to_bytes())
    assert again == envelope
    assert EligibilityChanged.model_validate(again.data) == event
    assert dict(envelope.kafka_headers()) == {"type": b"EligibilityChanged", "version": b"1",
                                              "correlation_id": b"c1"}
    assert json.loads(envelope.to_bytes())["occurred_at"] == "2026-11-29T07:30:00Z"


def test_asyncapi_document_covers_every_event_and_every_reference_resolves():
    document = build_document()
    assert document["asyncapi"].startswith("3.")
    assert {m["name"] for m in document["components"]["messages"].values()} == set(EXPECTED)
    assert {c["address"] for c in document["channels"].values()} == set(topics.ALL_TOPICS)

    def resolve(ref: str):
        node = document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        return node

    def refs(node):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    found = list(refs(document))
    assert found
    for ref in found:
        assert resolve(ref) is not None, ref
    requested = document["components"]["messages"]["SupervisionRequested_v2"]["payload"]
    fields = requested["properties"]["data"]["properties"]
    assert "procuratorate_commitment" in fields and "short_notice" in fields
    assert not {"procuratorate_nonce", "lead_time_consent", "seats_local"} & set(fields)


def test_the_committed_asyncapi_document_is_up_to_date():
    committed = json.loads((ROOT / "docs" / "asyncapi.json").read_text(encoding="utf-8"))
    assert committed == build_document(), "run `make docs` and commit docs/asyncapi.json"

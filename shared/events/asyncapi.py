"""`python -m shared.events.asyncapi OUT.json`: the AsyncAPI 3.0 document, generated from the contracts."""

import json
import sys
from pathlib import Path
from typing import Any

from shared.events import topics
from shared.events.contracts import ALL_EVENTS, Event
from shared.events.envelope import Envelope

SERVICES = ["registry", "selection", "casework", "appraisal", "finance", "notify"]
# Who reads which topic (ARCHITECTURE.md); the publisher is the topic's domain prefix, except for
# the platform's own topics, which every service publishes and reads.
PUBLISHERS: dict[str, list[str]] = {topics.PLATFORM_CALENDAR: SERVICES, topics.PLATFORM_AUDIT: SERVICES}
SUBSCRIBERS: dict[str, list[str]] = {
    topics.REGISTRY_SUPERVISORS: ["selection", "appraisal", "finance"],
    topics.REGISTRY_TRAINING: ["appraisal"],
    # notify reads every topic with events that concern people (services/notify/consumers.py)
    topics.CASEWORK_SUPERVISION_REQUESTS: ["selection", "notify"],
    topics.CASEWORK_FEEDBACK: ["appraisal", "finance", "notify"],
    topics.SELECTION_ASSIGNMENTS: ["casework", "appraisal", "notify"],
    topics.APPRAISAL_RESULTS: ["registry", "notify"],
    topics.FINANCE_SUBSIDIES: ["notify"],
    topics.PLATFORM_CALENDAR: SERVICES,
    topics.PLATFORM_AUDIT: SERVICES,  # each service witnesses the others' audit heads
}


def publishers(topic: str) -> list[str]:
    return PUBLISHERS.get(topic, [topic.split(".")[0]])


def _channel_id(topic: str) -> str:
    return topic.replace(".", "_").replace("-", "_")


REF_TEMPLATE = "#/components/schemas/{model}"


def _message(event: type[Event], schemas: dict[str, Any]) -> dict[str, Any]:
    """A message whose payload is the envelope with `data` replaced by the event's own schema."""
    envelope = Envelope.model_json_schema(ref_template=REF_TEMPLATE)
    data = event.model_json_schema(ref_template=REF_TEMPLATE)
    schemas.update(data.pop("$defs", {}))  # nested models (e.g. LeadTimeConsent) live in components
    envelope["properties"]["data"] = data
    envelope["properties"]["type"] = {"const": event.TYPE}
    envelope["properties"]["version"] = {"const": event.VERSION}
    envelope["title"] = f"{event.TYPE} v{event.VERSION}"
    return {
        "name": event.TYPE,
        "title": f"{event.TYPE} (v{event.VERSION})",
        "summary": event.SUMMARY,
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "required": ["type", "version", "correlation_id", "source", "seq", "sig"],
            "properties": {
                "type": {"const": event.TYPE}, "version": {"const": str(event.VERSION)},
                "correlation_id": {"type": "string"},
                "source": {"type": "string", "description": "the producing service, = envelope.source; "
                           "selects the Ed25519 public key that verifies `sig`"},
                "seq": {"type": "string", "pattern": "^(0|[1-9][0-9]{0,18})$",
                        "description": "the producer's sequence (its outbox id), increasing in publishing order"},
                "sig": {"type": "string", "contentEncoding": "base64",
                        "description": "Ed25519 signature over 'people-supervisors/event/1\\n' + topic + '\\n' + "
                                       "seq + '\\n' + the message bytes; with `sig.path`, over "
                                       "'people-supervisors/event-batch/1\\n' + the Merkle root of its batch "
                                       "(shared/events/signing.py). Unsigned or badly signed: dead-lettered."},
                "sig.path": {"type": "string", "description": "binary: the message's Merkle path to the signed "
                             "root, 33 bytes a level (side byte, sibling SHA-256); absent when signed alone"},
            },
        },
        "x-latest-wins": event.LATEST_WINS,  # an older one of its subject after a newer one is stale
        "bindings": {"kafka": {"key": {"type": "string", "description": f"= data.{event.KEY}"}}},
        "payload": envelope,
    }


def build_document() -> dict[str, Any]:
    """The whole document: one channel per topic, one message per (event, version), send/receive ops."""
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for event in ALL_EVENTS:
        message_id = f"{event.TYPE}_v{event.VERSION}"
        messages[message_id] = _message(event, schemas)
        channel = channels.setdefault(_channel_id(event.TOPIC), {
            "address": event.TOPIC,
            "description": f"Published by {', '.join(publishers(event.TOPIC))}; dead letters in "
                           f"{topics.dead_letter(event.TOPIC)}.",
            "messages": {},
        })
        channel["messages"][message_id] = {"$ref": f"#/components/messages/{message_id}"}
    for topic in topics.ALL_TOPICS:
        channel_id = _channel_id(topic)
        refs = [{"$ref": f"#/channels/{channel_id}/messages/{m}"} for m in channels[channel_id]["messages"]]
        for publisher in publishers(topic):
            operations[f"{publisher}_sends_{channel_id}"] = {
                "action": "send", "channel": {"$ref": f"#/channels/{channel_id}"}, "messages": refs,
            }
        for subscriber in SUBSCRIBERS[topic]:
            operations[f"{subscriber}_receives_{channel_id}"] = {
                "action": "receive", "channel": {"$ref": f"#/channels/{channel_id}"}, "messages": refs,
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "威海市人民监督员履职管理 — integration events",
            "version": "1",
            "description": "Topics `<domain>.<stream>`, Kafka key = envelope subject (aggregate id). "
                           "Generated from shared/events/contracts.py; do not edit by hand.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "docs/asyncapi.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(build_document(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Broker ACLs derived from the event contract (shared/events/acl.py) and deploy/kafka/acls.sh."""

import re
import shlex
from pathlib import Path

import pytest

from shared.events import acl, topics
from shared.events.asyncapi import SERVICES, SUBSCRIBERS, publishers

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "kafka" / "acls.sh"
ALL = acl.all_acls()


def allowed(service: str, operation: str, resource_type: str = acl.TOPIC) -> set[str]:
    return {e.resource for e in ALL[service] if e.operation == operation and e.resource_type == resource_type}


def writers(topic: str) -> set[str]:
    return {s for s in SERVICES if topic in allowed(s, "Write")}


def readers(topic: str) -> set[str]:
    return {s for s in SERVICES if topic in allowed(s, "Read")}


def test_only_casework_may_write_casework_feedback() -> None:
    assert writers(topics.CASEWORK_FEEDBACK) == {"casework"}


@pytest.mark.parametrize("topic", topics.ALL_TOPICS)
def test_every_topics_writers_are_the_contracts_publishers(topic: str) -> None:
    assert writers(topic) == set(publishers(topic))


@pytest.mark.parametrize("service", SERVICES)
def test_every_consumed_topic_is_readable_by_its_consumer(service: str) -> None:
    consumed = set(acl.consumed_topics(service))
    assert consumed <= allowed(service, "Read")
    assert allowed(service, "Read") == consumed, "reads nothing it does not consume"
    assert consumed <= allowed(service, "Describe")
    if consumed:
        assert allowed(service, "Read", acl.GROUP) == {service}  # its group: the inbox consumer's name


@pytest.mark.parametrize("topic", topics.ALL_TOPICS)
def test_dead_letters_are_written_by_the_topics_consumers(topic: str) -> None:
    consumers = {s for s in SERVICES if topic in acl.consumed_topics(s)}
    assert writers(topics.dead_letter(topic)) == consumers
    assert readers(topics.dead_letter(topic)) == set(), "nobody reads dead letters (operators do, as admin)"


@pytest.mark.parametrize("topic", topics.ALL_TOPICS)
def test_consumers_follow_the_asyncapi_subscribers(topic: str) -> None:
    """What the handlers consume is what the contract documents (a drift in either shows here)."""
    assert readers(topic) == set(SUBSCRIBERS.get(topic, []))


def test_the_platform_handlers_are_found_in_shared_app() -> None:
    from shared.events.contracts import CalendarYearPublished

    assert CalendarYearPublished in acl.platform_events()


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_may_describe_every_topic_and_use_the_idempotent_producer(service: str) -> None:
    assert set(acl.every_topic()) <= allowed(service, "Describe")  # ensure_topics lists them at start-up
    assert allowed(service, "IdempotentWrite", acl.CLUSTER) == {"kafka-cluster"}
    operations = {e.operation for e in ALL[service]}
    assert operations <= {"Read", "Write", "Describe", "IdempotentWrite"}, "no Create, Alter, Delete, All"


def test_the_script_is_the_modules_output() -> None:
    assert SCRIPT.read_text(encoding="utf-8") == acl.script(), (
        "deploy/kafka/acls.sh drifted from the contract: .venv/bin/python -m shared.events.acl > deploy/kafka/acls.sh")


def test_the_script_adds_every_acl_and_a_scram_user_per_service() -> None:
    text = acl.script()
    commands = [shlex.split(line) for line in text.splitlines() if line and not line.startswith(("#", ":"))]
    found = set()
    for argv in commands:
        if argv[0].endswith("kafka-acls.sh"):
            assert "--add" in argv and "--command-config" in argv
            principal = argv[argv.index("--allow-principal") + 1].removeprefix("User:")
            operations = [argv[i + 1] for i, a in enumerate(argv) if a == "--operation"]
            if "--cluster" in argv:
                resource = (acl.CLUSTER, "kafka-cluster")
            else:
                kind = next(k for k in (acl.TOPIC, acl.GROUP) if f"--{k}" in argv)
                resource = (kind, argv[argv.index(f"--{kind}") + 1])
            found |= {acl.Acl(principal, *resource, op) for op in operations}
    assert found == {e for entries in ALL.values() for e in entries}
    for service in SERVICES:
        (line,) = [line for line in text.splitlines()
                   if "kafka-configs.sh" in line and f"--entity-name {service}" in line]
        assert f"SCRAM-SHA-512=[password=${{{service.upper()}_KAFKA_SASL_PASSWORD:?}}]" in line
        assert "--entity-type users" in line and "--alter" in line
    assert not re.search(r"password=(?!\$\{)", text), "no literal password in the script"


def test_the_script_creates_every_topic() -> None:
    created = re.findall(r"kafka-topics\.sh\" .* --create --if-not-exists --topic (\S+)", acl.script())
    assert sorted(created) == sorted(acl.every_topic())

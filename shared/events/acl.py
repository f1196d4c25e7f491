"""Broker ACLs from the event contract: what each service's SCRAM user may do on the broker.

`python -m shared.events.acl` prints the shell script (deploy/kafka/acls.sh is its output, checked
by tests/unit/test_acl.py) that an administrator runs once and after every contract change: it
creates the topics, one SCRAM-SHA-512 user per service and these ACLs (Apache Kafka with
`StandardAuthorizer` and `allow.everyone.if.no.acl.found=false`: anything not allowed is denied).

Per service (principal `User:<service>`):

- WRITE, DESCRIBE on the topics it publishes (the AsyncAPI publishers, `asyncapi.publishers`) and
  on the dead-letter topics of the topics it consumes (its consumer writes poison to `<topic>.dlq`);
- READ, DESCRIBE on the topics it consumes: the topics of its consumer's handlers' event types,
  plus those of the handlers shared/app.py adds to every consumer (`platform.calendar`);
- READ on its consumer group, which is the service name (shared/app.py: `consumer_group or name`);
- DESCRIBE on every other contract topic and dead-letter topic: at start-up `ensure_topics` lists
  them all and creates the missing ones, and a topic the principal may not describe looks missing.
  No CREATE: this script creates the topics, so a missing topic fails start-up (TopicsNotCreated)
  instead of being created with whatever partitions a service happens to be configured with;
- IDEMPOTENT_WRITE on the cluster (the idempotent producer, KAFKA_IDEMPOTENT_PRODUCER).
"""

import importlib
import inspect
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shared.events import contracts, topics
from shared.events.asyncapi import SERVICES, publishers

MECHANISM = "SCRAM-SHA-512"

# resource types as kafka-acls.sh names them
TOPIC, GROUP, CLUSTER = "topic", "group", "cluster"


@dataclass(frozen=True, order=True)
class Acl:
    """One ALLOW entry: `principal` may `operation` on the resource."""

    principal: str  # the service (SCRAM user); the Kafka principal is User:<service>
    resource_type: str  # topic | group | cluster
    resource: str  # topic or group name; "kafka-cluster" for the cluster
    operation: str  # Read | Write | Describe | IdempotentWrite (kafka-acls.sh spelling)


class _Anything:
    """Stands in for the app, settings, calendar and outbox a `build_handlers` closes over."""

    def __getattr__(self, name: str) -> "_Anything":
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> "_Anything":
        return self


def platform_events() -> set[type]:
    """The handlers shared/app.py adds to every consuming service (`handlers[CalendarYearPublished] = ...`),
    read from its source so that a platform handler added there shows up here."""
    source = inspect.getsource(importlib.import_module("shared.app"))
    names = set(re.findall(r"\bhandlers\[(\w+)\]\s*=", source))
    return {getattr(contracts, name) for name in names if isinstance(getattr(contracts, name, None), type)}


def handled_events(service: str) -> set[type]:
    """The event types the service's consumer handles, as shared/app.py assembles them."""
    module = importlib.import_module(f"services.{service}.consumers")
    handlers: dict = dict(getattr(module, "HANDLERS", {}))
    build = getattr(module, "build_handlers", None)
    if build is not None:  # handlers that close over the running app: only the keys matter here
        handlers |= build(*(_Anything() for _ in inspect.signature(build).parameters))
    if handlers:  # shared/app.py: a service that consumes events also applies the calendar notices
        handlers |= dict.fromkeys(platform_events())
    return set(handlers)


def consumed_topics(service: str) -> list[str]:
    return sorted({event.TOPIC for event in handled_events(service)})


def published_topics(service: str) -> list[str]:
    return sorted(t for t in topics.ALL_TOPICS if service in publishers(t))


def consumer_group(service: str) -> str:
    """The service's consumer group (and inbox consumer name): shared/app.py's default."""
    return service


def every_topic() -> list[str]:
    return [t for topic in topics.ALL_TOPICS for t in (topic, topics.dead_letter(topic))]


def service_acls(service: str) -> list[Acl]:
    consumed = consumed_topics(service)
    writes = {*published_topics(service), *map(topics.dead_letter, consumed)}
    entries = {Acl(service, TOPIC, t, op) for t in writes for op in ("Write", "Describe")}
    entries |= {Acl(service, TOPIC, t, op) for t in consumed for op in ("Read", "Describe")}
    entries |= {Acl(service, TOPIC, t, "Describe") for t in every_topic()}  # ensure_topics lists them
    if consumed:
        entries.add(Acl(service, GROUP, consumer_group(service), "Read"))
    entries.add(Acl(service, CLUSTER, "kafka-cluster", "IdempotentWrite"))
    return sorted(entries)


def all_acls(services: Iterable[str] = SERVICES) -> dict[str, list[Acl]]:
    return {service: service_acls(service) for service in services}


def password_variable(service: str) -> str:
    """The environment variable the script reads a service's SCRAM password from."""
    return f"{service.upper()}_KAFKA_SASL_PASSWORD"


def _resource_flag(entry: Acl) -> str:
    return "--cluster" if entry.resource_type == CLUSTER else f"--{entry.resource_type} {entry.resource}"


def script(services: Iterable[str] = SERVICES) -> str:
    """The shell script that creates the topics, the SCRAM users and the ACLs (idempotent)."""
    admin = '--bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_ADMIN_CONFIG"'
    lines = [
        "#!/bin/sh",
        "# GENERATED by `python -m shared.events.acl > deploy/kafka/acls.sh` from the event contract",
        "# (shared/events/asyncapi.py, the services' consumers): do not edit; tests/unit/test_acl.py",
        "# fails when it drifts. Run as the broker's admin (a super user), idempotent:",
        "#   KAFKA_BOOTSTRAP=kafka:9092 KAFKA_ADMIN_CONFIG=admin.properties \\",
        '#   REGISTRY_KAFKA_SASL_PASSWORD=... (one per service) sh deploy/kafka/acls.sh',
        "set -eu",
        ': "${KAFKA_BOOTSTRAP:?the broker, host:port}"',
        ': "${KAFKA_ADMIN_CONFIG:?client properties of the admin user (SASL_SSL, SCRAM-SHA-512, CA)}"',
        'BIN="${KAFKA_BIN:-/opt/kafka/bin}"',
        "",
        "# --- topics (the services may not create them) ---",
    ]
    for name in every_topic():
        lines.append(f'"$BIN/kafka-topics.sh" {admin} --create --if-not-exists --topic {name} '
                     '--partitions "${KAFKA_TOPIC_PARTITIONS:-6}" --replication-factor "${KAFKA_TOPIC_REPLICATION:-1}"')
    for service, entries in all_acls(services).items():
        lines += ["", f"# --- {service} ---"]
        lines.append(f'"$BIN/kafka-configs.sh" {admin} --alter --add-config '
                     f'"{MECHANISM}=[password=${{{password_variable(service)}:?}}]" '
                     f"--entity-type users --entity-name {service}")
        by_resource: dict[tuple[str, str], list[str]] = {}
        for entry in entries:
            by_resource.setdefault((entry.resource_type, entry.resource), []).append(entry.operation)
        for (resource_type, resource), operations in sorted(by_resource.items()):
            flags = " ".join(f"--operation {op}" for op in sorted(operations))
            target = _resource_flag(Acl(service, resource_type, resource, ""))
            lines.append(f'"$BIN/kafka-acls.sh" {admin} --add --allow-principal User:{service} {flags} {target}')
    return "\n".join(lines) + "\n"


def table(services: Iterable[str] = SERVICES) -> str:
    """A Markdown table of what each service may write and read (deploy/README.md)."""
    rows = ["| service | writes | reads | group |", "| --- | --- | --- | --- |"]
    for service in services:
        consumed = consumed_topics(service)
        writes = [*published_topics(service), *map(topics.dead_letter, consumed)]
        rows.append(f"| {service} | {', '.join(f'`{t}`' for t in writes)} | "
                    f"{', '.join(f'`{t}`' for t in consumed) or '—'} | "
                    f"{f'`{consumer_group(service)}`' if consumed else '—'} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str]) -> int:
    sys.stdout.write(table() if argv[:1] == ["--table"] else script())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

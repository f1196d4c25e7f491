"""Kafka clients configured one way for every service (acks=all; idempotence where the broker has it)."""

import logging

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.events import topics as topic_names
from shared.settings import CommonSettings

log = logging.getLogger(__name__)


def make_producer(settings: CommonSettings, *, client_id: str) -> AIOKafkaProducer:
    """A producer that waits for all in-sync replicas; idempotent on Apache Kafka (setting)."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=settings.kafka_idempotent_producer,
        request_timeout_ms=10_000,
        retry_backoff_ms=200,
        linger_ms=0,
    )


def all_topics_with_dead_letters() -> list[str]:
    """Every topic of the contract and its dead-letter topic."""
    return [t for topic in topic_names.ALL_TOPICS for t in (topic, topic_names.dead_letter(topic))]


async def ensure_topics(settings: CommonSettings, names: list[str] | None = None) -> None:
    """Create the topics that are missing (start-up; and again after a dev broker restart)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=10_000
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in (names or all_topics_with_dead_letters()) if n not in existing]
        if not missing:
            return
        new = [
            NewTopic(n, num_partitions=settings.kafka_topic_partitions,
                     replication_factor=settings.kafka_topic_replication)
            for n in missing
        ]
        try:
            await admin.create_topics(new)
        except TopicAlreadyExistsError:
            pass  # another service created them first
        log.info("created topics %s", missing)
    finally:
        await admin.close()

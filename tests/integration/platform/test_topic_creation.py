"""A broker that refuses to create the topics fails start-up: `ensure_topics` raises TopicsNotCreated
(a configuration error) instead of logging the topics as created; shared/app.py re-raises it.

The dev broker (tansu) accepts any topic: replication 3 on its single node, 0 or -5 partitions,
even names Apache Kafka rejects. So the real-broker refusals below skip on tansu (they run against
Apache Kafka via TEST_KAFKA_BOOTSTRAP_SERVERS), and the refusal itself is also checked with an
admin client that answers as Apache Kafka does (CreateTopics error codes per topic).
"""

import uuid
from types import SimpleNamespace

import pytest
from aiokafka.errors import InvalidReplicationFactorError, InvalidTopicError, KafkaConnectionError

from shared.events import kafka
from shared.events.kafka import BrokerUnavailable, TopicsNotCreated, ensure_topics, make_admin
from tests.support.apps import service_settings


async def topic_names(settings) -> set[str]:
    admin = make_admin(settings, client_id="test-topic-creation")
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


@pytest.fixture
def own_broker():
    """A throwaway broker (the session's is shared by every test); TEST_KAFKA_BOOTSTRAP_SERVERS
    (Apache Kafka, which refuses these topics) is used as it is."""
    import os

    from shared.devstack import infra

    if servers := os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS"):
        yield servers
        return
    broker = infra.start_broker(infra.free_port())
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.mark.parametrize("overrides", [{"kafka_topic_replication": 3}, {"kafka_topic_partitions": 0}],
                         ids=["replication-3-on-one-broker", "zero-partitions"])
async def test_the_real_broker_refuses_an_impossible_topic(settings_env: dict[str, str], overrides: dict,
                                                           own_broker: str) -> None:
    # a broker of its own: tansu accepts these topics, and a 0-partition topic upsets its answers
    # about the other topics (group offsets beyond the end of a partition) for everyone after it
    settings = service_settings(settings_env, kafka_bootstrap_servers=own_broker, **overrides)
    name = f"test.refused-{uuid.uuid4().hex[:8]}"
    try:
        created = await ensure_topics(settings, [name])
    except TopicsNotCreated:
        assert name not in await topic_names(settings)
        return
    except BrokerUnavailable as exc:
        pytest.fail(f"a refusal must not look like an outage (it would be retried forever): {exc}")
    assert created == [name]
    pytest.skip(f"this broker (tansu) accepts {overrides}")


async def test_existing_topics_are_not_an_error(settings_env: dict[str, str]) -> None:
    settings = service_settings(settings_env)
    name = f"test.exists-{uuid.uuid4().hex[:8]}"
    assert await ensure_topics(settings, [name]) == [name]
    assert await ensure_topics(settings, [name]) == []


class RefusingAdmin:
    """An admin client answering CreateTopics like Apache Kafka that refuses some topics."""

    def __init__(self, errors: dict[str, int], *, raises: Exception | None = None) -> None:
        self.errors, self.raises, self.closed = errors, raises, False

    async def start(self) -> None:
        pass

    async def list_topics(self) -> list[str]:
        return ["existing"]

    async def create_topics(self, new_topics) -> SimpleNamespace:
        if self.raises is not None:
            raise self.raises
        return SimpleNamespace(topic_errors=[(t.name, self.errors.get(t.name, 0), None) for t in new_topics])

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def refusing(monkeypatch: pytest.MonkeyPatch):
    def install(errors: dict[str, int], **kw) -> RefusingAdmin:
        admin = RefusingAdmin(errors, **kw)
        monkeypatch.setattr(kafka, "make_admin", lambda settings, client_id="admin": admin)
        return admin
    return install


async def test_a_refused_topic_raises_topics_not_created(settings_env: dict[str, str], refusing) -> None:
    admin = refusing({"b": InvalidReplicationFactorError.errno})
    with pytest.raises(TopicsNotCreated, match=r"b: InvalidReplicationFactorError"):
        await ensure_topics(service_settings(settings_env, kafka_topic_replication=3), ["existing", "a", "b"])
    assert admin.closed


async def test_a_refusal_raised_by_the_client_raises_topics_not_created(settings_env: dict[str, str],
                                                                        refusing) -> None:
    refusing({}, raises=InvalidTopicError())
    with pytest.raises(TopicsNotCreated):
        await ensure_topics(service_settings(settings_env), ["a"])


async def test_an_unreachable_broker_is_not_a_refusal(settings_env: dict[str, str], refusing) -> None:
    refusing({}, raises=KafkaConnectionError())
    with pytest.raises(BrokerUnavailable):
        await ensure_topics(service_settings(settings_env), ["a"])

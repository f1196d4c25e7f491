"""Notify integration fixtures: migrated schema, one running notify app (consumer, jobs) for the session, a
producer that publishes signed events as their services' relays would, and the SMS gateway stand-in."""

import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from services.notify.app import create_app
from services.notify.config import NotifySettings
from shared.db.migrations import service_migrations, upgrade
from tests.integration.notify.sms_standin import SmsStandIn
from tests.support.apps import bearer, running, service_settings


@pytest.fixture(scope="session")
def notify_migrated(database_url: str) -> None:
    upgrade(service_migrations("notify"), database_url)


def notify_settings(settings_env, **overrides) -> NotifySettings:
    """Test settings: no SMS credentials (development: the SMS goes to the log), jobs that look often."""
    overrides = {"outbox_poll_seconds": 0.2, "sms_dispatch_seconds": 0.3, "reminder_job_seconds": 3600,
                 "service_token": bearer("service", subject="notify")["Authorization"].removeprefix("Bearer "),
                 **overrides}
    return service_settings(settings_env, NotifySettings, **overrides)


@pytest.fixture(scope="session")
async def notify(notify_migrated, settings_env):
    """(app, client) of the one notify app (with its consumer in the `notify` group) of the test session."""
    async with running(create_app(notify_settings(settings_env))) as pair:
        yield pair


@pytest.fixture
def app(notify):
    return notify[0]


@pytest.fixture
def client(notify):
    return notify[1]


@pytest.fixture(scope="session")
async def producer(kafka_bootstrap) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
    await producer.start()
    yield producer
    await producer.stop()


@pytest.fixture
async def sms_gateway() -> AsyncIterator[SmsStandIn]:
    async with SmsStandIn() as gateway:
        yield gateway


def supervisor_token(supervisor_id: uuid.UUID) -> dict[str, str]:
    return bearer("supervisor", subject=f"sup-{supervisor_id}", supervisor_id=str(supervisor_id))


async def deliveries(app, message_id: str) -> list:
    async with app.state.db.transaction() as session:
        return list((await session.execute(text(
            "SELECT channel, status, attempts, last_error, provider, provider_ref, next_attempt_at "
            "FROM notify.delivery WHERE message_id = :m ORDER BY channel"), {"m": message_id})).all())

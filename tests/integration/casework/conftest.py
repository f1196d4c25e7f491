"""Casework integration fixtures: migrated schema, one running app per session, a producer for selection's events."""

import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer

from services.casework.app import create_app
from services.casework.config import CaseworkSettings
from shared.db.migrations import service_migrations, upgrade
from tests.support.apps import running, service_settings


@pytest.fixture(scope="session")
def casework_migrated(database_url: str) -> None:
    upgrade(service_migrations("casework"), database_url)


@pytest.fixture(scope="session")
async def cw(casework_migrated, settings_env):
    """(app, client) of the one casework app (with its consumer, own group) of the whole test session.

    The receipt-check job runs once at start-up and then only when a test calls `check_receipts` itself, with
    a fake selection (no selection app runs here).
    """
    settings = service_settings(settings_env, CaseworkSettings,
                                consumer_group=f"casework-it-{uuid.uuid4().hex[:8]}",
                                receipt_check_seconds=3600, receipt_check_batch=500)
    async with running(create_app(settings)) as pair:
        yield pair


@pytest.fixture(scope="session")
async def producer(kafka_bootstrap) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=False)
    await p.start()
    yield p
    await p.stop()

"""Finance integration fixtures: migrate once, one running app (relay + consumer) for the session."""

import pytest

from services.finance.app import create_app
from services.finance.config import FinanceSettings
from shared.db.migrations import service_migrations, upgrade
from tests.support.apps import running, service_settings


@pytest.fixture(scope="session")
def finance_migrated(database_url: str) -> None:
    upgrade(service_migrations("finance"), database_url)


@pytest.fixture(scope="session")
def finance_settings(settings_env, finance_migrated) -> FinanceSettings:
    return service_settings(settings_env, FinanceSettings, outbox_poll_seconds=0.2)


@pytest.fixture(scope="session")
async def finance(finance_settings):
    """(app, client) of the finance service with its lifespan (outbox relay, consumer) running."""
    async with running(create_app(finance_settings)) as (app, client):
        yield app, client


@pytest.fixture
def client(finance):
    return finance[1]


@pytest.fixture
def app(finance):
    return finance[0]

"""Registry integration fixtures: migrate once, one running app (relay + consumer) for the session."""

import pytest

from services.registry.app import create_app
from services.registry.config import RegistrySettings
from shared.db.migrations import service_migrations, upgrade
from tests.support.apps import running, service_settings


@pytest.fixture(scope="session")
def registry_migrated(database_url: str) -> None:
    upgrade(service_migrations("registry"), database_url)


@pytest.fixture(scope="session")
def registry_settings(settings_env, registry_migrated) -> RegistrySettings:
    # the term-end job (R4.1) runs at start-up and then hourly: tests call it themselves with a frozen clock
    return service_settings(settings_env, RegistrySettings, outbox_poll_seconds=0.2, term_end_job_seconds=3600)


@pytest.fixture(scope="session")
async def registry(registry_settings):
    """(app, client) of the registry with its lifespan (outbox relay, AppraisalFinalized consumer) running."""
    async with running(create_app(registry_settings)) as (app, client):
        yield app, client


@pytest.fixture
def client(registry):
    return registry[1]


@pytest.fixture
def app(registry):
    return registry[0]

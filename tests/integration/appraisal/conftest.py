"""Appraisal integration fixtures: migrate once, one running app (relay + consumer) for the session."""

import pytest

from services.appraisal.app import create_app
from services.appraisal.config import AppraisalSettings
from shared.db.migrations import service_migrations, upgrade
from tests.support.apps import running, service_settings


@pytest.fixture(scope="session")
def appraisal_migrated(database_url: str) -> None:
    upgrade(service_migrations("appraisal"), database_url)


@pytest.fixture(scope="session")
def appraisal_settings(settings_env, appraisal_migrated) -> AppraisalSettings:
    return service_settings(settings_env, AppraisalSettings, outbox_poll_seconds=0.2)


@pytest.fixture(scope="session")
async def appraisal(appraisal_settings):
    """(app, client) of the appraisal service with its lifespan (outbox relay, consumer) running."""
    async with running(create_app(appraisal_settings)) as (app, client):
        yield app, client


@pytest.fixture
def client(appraisal):
    return appraisal[1]


@pytest.fixture
def app(appraisal):
    return appraisal[0]

"""Appraisal integration fixtures: migrate once, one running app (relay + consumer) for the session, and a
fresh app on a database of its own for the round tests (an annual round is unique per year, and the tests
use real years: 2025, 2026)."""

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

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


@pytest.fixture
async def fresh(database_url: str, settings_env, unique_name: str):
    """(app, client) of an appraisal service on an empty database of its own (own consumer group too)."""
    admin = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{unique_name}"'))
    url = make_url(database_url).set(database=unique_name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(upgrade, service_migrations("appraisal"), url)
        settings = service_settings(settings_env, AppraisalSettings, database_url=url, outbox_poll_seconds=0.2,
                                    consumer_group=f"appraisal-{unique_name}")
        async with running(create_app(settings)) as pair:
            yield pair
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{unique_name}" WITH (FORCE)'))
        await admin.dispose()

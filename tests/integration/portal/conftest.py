"""The portal's real ASGI app for in-process tests (every service down unless a test says otherwise); an
unexpected error reaches the test as the 500 page a browser gets, not as the exception."""

import json

import httpx
import pytest

from services.appraisal.app import create_app as create_appraisal
from services.appraisal.config import AppraisalSettings
from services.finance.app import create_app as create_finance
from services.finance.config import FinanceSettings
from services.portal.app import create_app
from services.portal.backend import Backend
from services.registry.app import create_app as create_registry
from services.registry.config import RegistrySettings
from shared.db.migrations import service_migrations, upgrade
from tests.integration.portal.helpers import DOWN, Services, settings
from tests.support.apps import PRIVATE_KEY, PUBLIC_KEY, running, service_settings


@pytest.fixture
async def client(tmp_path):
    app = create_app(settings(tmp_path))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://portal",
                                     headers={"accept": "text/html"}) as c:
            yield c


# --- the portal in front of the real registry and finance (real PostgreSQL and broker, in-process) -------------
@pytest.fixture(scope="session")
def migrated(database_url) -> None:
    for service in ("registry", "finance", "appraisal"):
        upgrade(service_migrations(service), database_url)


@pytest.fixture(scope="session")
async def registry_app(settings_env, migrated):
    settings = service_settings(settings_env, RegistrySettings, outbox_poll_seconds=0.2, term_end_job_seconds=3600)
    async with running(create_registry(settings)) as (app, _):
        yield app


@pytest.fixture(scope="session")
async def finance_app(settings_env, migrated):
    async with running(create_finance(service_settings(settings_env, FinanceSettings, outbox_poll_seconds=0.2))) as (
            app, _):
        yield app


@pytest.fixture(scope="session")
async def appraisal_app(settings_env, migrated):
    settings = service_settings(settings_env, AppraisalSettings, outbox_poll_seconds=0.2)
    async with running(create_appraisal(settings)) as (app, _):
        yield app


@pytest.fixture
async def live(tmp_path, registry_app, finance_app, appraisal_app):
    """A client of the portal whose calls reach the real registry, finance and appraisal apps (the tests' signing
    key: the portal's demo sign-in mints tokens those services verify); the other services are down."""
    key_file = tmp_path / "keys.json"
    key_file.write_text(json.dumps({"private_key": PRIVATE_KEY, "public_key": PUBLIC_KEY}))
    urls = {**DOWN, "registry": "http://registry", "finance": "http://finance", "appraisal": "http://appraisal"}
    app = create_app(settings(tmp_path, dev_key_file=str(key_file), service_urls=urls))
    async with app.router.lifespan_context(app):
        await app.state.backend.close()
        app.state.backend = Backend(urls, timeout=30, transport=Services({
            "registry": httpx.ASGITransport(app=registry_app), "finance": httpx.ASGITransport(app=finance_app),
            "appraisal": httpx.ASGITransport(app=appraisal_app)}))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                     base_url="http://portal", headers={"accept": "text/html"}) as c:
            c.appraisal = appraisal_app  # for tests that hand appraisal its registry events
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=appraisal_app),
                                         base_url="http://appraisal") as api:
                c.appraisal_api = api  # and that set a round up through appraisal's own API
                yield c

"""The portal's real ASGI app for in-process tests (every service down unless a test says otherwise); an
unexpected error reaches the test as the 500 page a browser gets, not as the exception."""

import httpx
import pytest

from services.portal.app import create_app
from tests.integration.portal.helpers import settings


@pytest.fixture
async def client(tmp_path):
    app = create_app(settings(tmp_path))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://portal",
                                     headers={"accept": "text/html"}) as c:
            yield c

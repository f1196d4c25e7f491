"""What the portal's in-process tests share: settings with every service down, the CSRF token, a sign-in."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from services.portal.config import PortalSettings
from shared.tokens import init_key_file

KEY = Fernet.generate_key().decode()
DOWN = {name: "http://127.0.0.1:9" for name in ("registry", "selection", "casework", "appraisal", "finance")}


def settings(tmp_path: Path, **overrides) -> PortalSettings:
    fields = {"environment": "development", "dev_key_file": init_key_file(tmp_path / "dev-keys.json"),
              "cookie_secure": False, "portal_session_key": KEY, "service_urls": DOWN}
    return PortalSettings(**{**fields, **overrides})


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


async def signed_in(client: httpx.AsyncClient, persona: str = "dev-bureau-admin", next_path: str = "/") -> str:
    token = csrf_of((await client.get("/sign-in")).text)
    r = await client.post("/sign-in", data={"persona": persona, "next": next_path, "csrf_token": token})
    assert r.status_code == 303, r.text
    return r.headers["location"]




class Services(httpx.AsyncBaseTransport):
    """The portal's calls to each service's in-process app by host name (http://registry/…); any other host is
    down, as a service that is not running."""

    def __init__(self, apps: dict[str, httpx.AsyncBaseTransport]) -> None:
        self.apps = apps

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        app = self.apps.get(request.url.host)
        if app is None:
            raise httpx.ConnectError(f"{request.url.host} is down", request=request)
        return await app.handle_async_request(request)

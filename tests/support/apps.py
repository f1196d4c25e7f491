"""Run a service app in-process for tests: migrated schema, lifespan started, HTTP client, tokens."""

import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from shared.settings import CommonSettings
from shared.tokens import generate_dev_keypair, mint
from tests.support.signing import signing_settings

PRIVATE_KEY, PUBLIC_KEY = generate_dev_keypair()


def service_name(settings_cls: type[CommonSettings]) -> str:
    """`registry` for services.registry.config.RegistrySettings; `sample` (the sample service) otherwise."""
    parts = settings_cls.__module__.split(".")
    return parts[1] if parts[0] == "services" and len(parts) > 2 else "sample"


def service_settings(settings_env: dict[str, str], settings_cls: type[CommonSettings] = CommonSettings,
                     *, signer: str | None = None, **overrides) -> CommonSettings:
    """Settings for a service under test: the session's database and broker, the test JWT key, and
    the service's event signing key (`signer`, default: the service of `settings_cls`) with every
    test source's verify key."""
    values = {k.lower(): v for k, v in settings_env.items()}
    values.update(jwt_verify_key=PUBLIC_KEY, **signing_settings(signer or service_name(settings_cls)))
    values.update(overrides)
    return settings_cls(**values)


def bearer(*roles: str, subject: str = "test-user", **claims) -> dict[str, str]:
    """Authorization header for a token with these roles and claims (district=…, supervisor_id=…)."""
    return {"Authorization": "Bearer " + mint(PRIVATE_KEY, subject=subject, roles=list(roles), **claims)}


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its lifespan (engine, outbox relay, consumer) started, behind an in-process client."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://service", timeout=30) as client:
            yield app, client

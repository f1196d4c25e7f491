"""The selection service app: requests, the verifiable balanced draw, contact, recusal, re-draw."""

import uuid

import httpx
from fastapi import FastAPI

from services.selection import deadlines
from services.selection.config import SelectionSettings
from services.selection.consumers import build_handlers
from services.selection.contact.router import router as contact_router
from services.selection.models import metadata, platform
from services.selection.pool.router import router as pool_router
from services.selection.requests import service as requests
from services.selection.requests.router import router as requests_router
from services.selection.statistics.router import router as statistics_router
from shared.app import PeriodicJob, ServiceSpec, create_service_app
from shared.deadlines import deadlines_router
from shared.http import ServiceClient

DESCRIPTION = (
    "人民监督员抽选：受理申请（第十条）、可验证的均衡随机抽选（第十一条）、"
    "依次联络（第十二条）、回避（第十三条）、重新抽选（第十四条）。"
)


async def draw_overdue(app: FastAPI) -> int:
    """DRAW.md protocol step 4: draw what waited past DRAW_REVEAL_TIMEOUT (FOR UPDATE SKIP LOCKED)."""
    async with app.state.db.transaction() as session:
        return await requests.draw_overdue(session, outbox=app.state.outbox, settings=app.state.settings)


MASKED_CONTACTS_AT_ONCE = 200  # the registry's POST /supervisors/contacts takes at most 200 ids


def registry_lookups(settings: SelectionSettings, *, transport: httpx.AsyncBaseTransport | None = None):
    """(contact, masked) lookups of a supervisor in the registry over one client with the service token:
    `contact` the name and full phone of a confirmed supervisor (R12.1), `masked` the registry's own
    masked phone for the call list (the full one stays there). 503 when the registry is down."""
    token = settings.service_token.get_secret_value() if settings.service_token else ""
    client: ServiceClient | None = None

    def registry() -> ServiceClient:
        nonlocal client
        if client is None:
            client = ServiceClient("registry", settings.registry_url, token,
                                   timeout=settings.registry_timeout_seconds, transport=transport)
        return client

    async def contact(supervisor_id: uuid.UUID) -> dict | None:
        return await registry().get_json(f"/supervisors/{supervisor_id}/contact")

    async def masked(ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
        """R12.1's call list: the masked phones of many people in one registry request per 200 ids."""
        phones: dict[uuid.UUID, str] = {}
        for at in range(0, len(ids), MASKED_CONTACTS_AT_ONCE):
            found = await registry().post_json("/supervisors/contacts",
                                               {"ids": [str(i) for i in ids[at:at + MASKED_CONTACTS_AT_ONCE]]})
            phones |= {uuid.UUID(item["id"]): item["phone_masked"] for item in found["items"]}
        return phones

    return contact, masked


def build(settings: SelectionSettings, *, consume: bool = True) -> FastAPI:
    """The app for these settings; tests replace `app.state.contact_lookup` (and `masked_contact_lookup`)
    with a fake registry.

    `consume=False` builds an HTTP-only replica (no event consumer joins the group).
    """
    # the consumer's handlers use the running app's calendar and outbox
    spec = ServiceSpec(
        name="selection", title="人民监督员抽选服务", description=DESCRIPTION, metadata=metadata,
        platform=platform, routers=[requests_router, contact_router, pool_router, statistics_router,
                                     deadlines_router(deadlines.compute)],
        build_handlers=(lambda app: build_handlers(settings, app.state.calendar, app.state.outbox))
        if consume else None,
        jobs=[PeriodicJob("reveal-timeout", settings.draw_job_seconds, draw_overdue)],
        event_lock=requests.take_chain_lock,  # selection's lock order: the chain lock before any row
    )
    app = create_service_app(spec, settings)
    app.state.contact_lookup, app.state.masked_contact_lookup = registry_lookups(settings)
    return app


def create_app() -> FastAPI:
    return build(SelectionSettings())

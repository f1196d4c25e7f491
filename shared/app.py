"""create_service_app(): the one way every service is assembled (lifespan, errors, health, metrics)."""

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import urlparse

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared import calendar_api
from shared.auth import TokenVerifier
from shared.calendar import WorkingCalendar, load_saved_years
from shared.crypto import FieldCipher
from shared.db import Database
from shared.db.platform import PlatformTables
from shared.errors import install_problem_handlers
from shared.events.contracts import CalendarYearPublished, Event
from shared.events.inbox import Handler, InboxConsumer
from shared.events.kafka import ensure_topics
from shared.events.outbox import Outbox, OutboxRelay
from shared.observability import CorrelationMiddleware, Metrics, configure_logging
from shared.settings import CommonSettings

log = logging.getLogger(__name__)


@dataclass
class ServiceSpec:
    """What makes one service: its name, tables, routers and event handlers."""

    name: str
    title: str
    metadata: MetaData
    platform: PlatformTables
    routers: list[APIRouter] = field(default_factory=list)
    handlers: dict[type[Event], Handler] = field(default_factory=dict)
    # for handlers that need the running app (its calendar, outbox, settings): called once at start-up
    build_handlers: Callable[[FastAPI], dict[type[Event], Handler]] | None = None
    description: str = ""
    # periodic jobs of the service (e.g. selection's reveal timeout): job(app) runs every `seconds`;
    # a job must be safe with several replicas (claim its rows with FOR UPDATE SKIP LOCKED)
    jobs: list["PeriodicJob"] = field(default_factory=list)
    # called last at shutdown (e.g. casework stops its verifier process)
    on_shutdown: list[Callable[[FastAPI], None]] = field(default_factory=list)


@dataclass
class PeriodicJob:
    """A job the service runs by itself every `seconds`; a failure is logged and retried next time."""

    name: str
    seconds: float
    run: Callable[[FastAPI], Awaitable[object]]


async def _run_periodically(app: FastAPI, job: PeriodicJob) -> None:
    while True:
        try:
            await job.run(app)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.error("periodic job %s failed; retrying in %.0f s", job.name, job.seconds, exc_info=True)
        await asyncio.sleep(job.seconds)


async def _broker_reachable(bootstrap: str, timeout: float = 1.0) -> bool:
    """True if a TCP connection to any bootstrap server opens."""
    for server in bootstrap.split(","):
        parsed = urlparse(f"//{server.strip()}")
        try:
            async with asyncio.timeout(timeout):
                _, writer = await asyncio.open_connection(parsed.hostname, parsed.port)
        except (OSError, TimeoutError):
            continue
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
        return True
    return False


CALENDAR_REFRESH_SECONDS = 300


async def _refresh_calendar(db: Database, platform: PlatformTables, calendar: WorkingCalendar) -> None:
    """Load bureau-published years now and every few minutes (a year may be loaded via another replica)."""
    while True:
        try:
            async with db.transaction() as session:
                await load_saved_years(session, platform.calendar, calendar)
        except Exception:
            log.warning("could not load calendar years; retrying", exc_info=True)
            await asyncio.sleep(5)
            continue
        await asyncio.sleep(CALENDAR_REFRESH_SECONDS)


def create_service_app(spec: ServiceSpec, settings: CommonSettings) -> FastAPI:
    """Build the FastAPI app of a service; the lifespan starts the engine, outbox relay and consumer."""
    configure_logging(spec.name, level=settings.log_level, json_logs=settings.log_json)
    metrics = Metrics(spec.name)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.database_url, pool_size=settings.database_pool_size)
        relay = OutboxRelay(db, spec.platform.outbox, settings, name=spec.name)
        handlers = {**spec.handlers, **(spec.build_handlers(app) if spec.build_handlers else {})}
        if handlers:  # a service that consumes events also applies the bureau's calendar notices
            handlers[CalendarYearPublished] = calendar_api.year_published_handler(app)
        consumer = (
            InboxConsumer(name=settings.consumer_group or spec.name, db=db, inbox=spec.platform.inbox,
                          settings=settings, handlers=handlers)
            if handlers else None
        )
        app.state.db = db
        app.state.relay = relay
        app.state.consumer = consumer
        with contextlib.suppress(Exception):  # the broker may be down; relay and consumer retry
            await ensure_topics(settings)
        tasks = [
            asyncio.create_task(relay.run(), name=f"{spec.name}-outbox-relay"),
            asyncio.create_task(_refresh_calendar(db, spec.platform, app.state.calendar),
                                name=f"{spec.name}-calendar"),
        ]
        if consumer:
            tasks.append(asyncio.create_task(consumer.run(), name=f"{spec.name}-consumer"))
        tasks += [asyncio.create_task(_run_periodically(app, job), name=f"{spec.name}-{job.name}")
                  for job in spec.jobs]
        # Frozen heap: once started, a service holds a few hundred thousand long-lived objects
        # (modules, pydantic and SQLAlchemy models, routes, pools). A full (generation 2) garbage
        # collection walks all of them: a pause of 75-120 ms on the 2-core bench machine (registry
        # lists under load, selection draws), which every request in flight waits out. gc.freeze()
        # moves them to a permanent generation the collector skips (full collections then take a
        # few ms); reference counting still frees them as usual.
        gc.collect()  # start-up garbage first, so only live objects are frozen
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await relay.close()
            if consumer:
                await consumer.close()
            await db.dispose()
            for hook in spec.on_shutdown:
                hook(app)

    app = FastAPI(title=spec.title, description=spec.description, lifespan=lifespan, version="1.0")
    app.state.settings = settings
    app.state.service = spec.name
    app.state.platform = spec.platform
    app.state.outbox = Outbox(spec.platform.outbox, source=spec.name)
    app.state.token_verifier = TokenVerifier.from_settings(settings)
    app.state.cipher = FieldCipher.from_settings(
        settings.field_encryption_key.get_secret_value(), settings.field_hash_key.get_secret_value()
    )
    app.state.calendar = WorkingCalendar()
    app.state.metrics = metrics
    install_problem_handlers(app)
    app.add_middleware(CorrelationMiddleware, metrics=metrics)

    @app.get("/healthz", tags=["ops"], summary="进程存活")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": spec.name}

    @app.get("/readyz", tags=["ops"], summary="数据库与消息代理可达")
    async def readyz(request: Request) -> JSONResponse:
        checks = {"database": False, "broker": await _broker_reachable(settings.kafka_bootstrap_servers)}
        with contextlib.suppress(Exception):
            async with request.app.state.db.transaction() as session:
                checks["database"] = (await session.scalar(text("SELECT 1"))) == 1
        ready = all(checks.values())
        return JSONResponse({"status": "ready" if ready else "not_ready", "checks": checks},
                            status_code=200 if ready else 503)

    @app.get("/metrics", tags=["ops"], summary="Prometheus 指标", include_in_schema=False)
    async def prometheus(request: Request) -> Response:
        relay: OutboxRelay = request.app.state.relay
        with contextlib.suppress(Exception):
            metrics.outbox_backlog.labels(spec.name).set(await relay.backlog())
        metrics.events_published.labels(spec.name).set(relay.published_total)
        consumer: InboxConsumer | None = request.app.state.consumer
        if consumer:
            metrics.events_applied.labels(spec.name, consumer.name).set(consumer.applied_total)
            metrics.events_dead_lettered.labels(spec.name, consumer.name).set(consumer.dead_lettered_total)
            metrics.consumer_lag.labels(spec.name, consumer.name).set(consumer.lag)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(calendar_api.router)
    for router in spec.routers:
        app.include_router(router)
    return app


# --- dependencies every router uses ------------------------------------------------------------

async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed before the response is sent, rolled back on any error."""
    async with request.app.state.db.transaction() as session:
        yield session


def get_outbox(request: Request) -> Outbox:
    return request.app.state.outbox


def get_calendar(request: Request) -> WorkingCalendar:
    return request.app.state.calendar


def get_cipher(request: Request) -> FieldCipher:
    return request.app.state.cipher


# scope="function": the commit happens when the endpoint returns, before the response goes out,
# so a client never sees success for a transaction that then failed to commit.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
OutboxDep = Annotated[Outbox, Depends(get_outbox)]
CalendarDep = Annotated[WorkingCalendar, Depends(get_calendar)]
CipherDep = Annotated[FieldCipher, Depends(get_cipher)]

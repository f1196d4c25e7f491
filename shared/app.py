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

from shared import audit_watch, calendar_api
from shared.auth import TokenVerifier
from shared.calendar import WorkingCalendar, load_saved_years
from shared.crypto import FieldCipher
from shared.db import Database
from shared.db.platform import PlatformTables
from shared.errors import install_problem_handlers
from shared.events.contracts import AuditHeadPublished, CalendarYearPublished, Event
from shared.events.feed import GapRepairer, http_feed_fetch
from shared.events.feed import router as feed_router
from shared.events.inbox import Handler, InboxConsumer
from shared.events.kafka import BrokerUnavailable, bounded, ensure_topics
from shared.events.outbox import Outbox, OutboxRelay
from shared.observability import CorrelationMiddleware, Metrics, configure_logging
from shared.scheduler import Scheduler
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
    # periodic jobs of the service (e.g. selection's reveal timeout): job(app) runs every `seconds`, once
    # per period across replicas (shared/scheduler.py); still claim rows with FOR UPDATE SKIP LOCKED
    jobs: list["PeriodicJob"] = field(default_factory=list)
    # called last at shutdown (e.g. casework stops its verifier process)
    on_shutdown: list[Callable[[FastAPI], None]] = field(default_factory=list)
    # the service's first lock, taken at the start of every consumer transaction before any event of it
    # (a batch applies many events in one transaction: without it their locks come in event order, against
    # the service's own lock order; selection: its chain lock, see requests.service.take_chain_lock)
    event_lock: Callable[[AsyncSession], Awaitable[None]] | None = None


@dataclass
class PeriodicJob:
    """A job the service runs by itself every `seconds`: once per period across all replicas
    (shared/scheduler.py, PostgreSQL-backed); a failure is logged and the job runs again next period."""

    name: str
    seconds: float
    run: Callable[[FastAPI], Awaitable[object]]
    first_after: float = 0.0  # first run this long after start-up (default: at once)


def _scheduler(app: FastAPI, spec: ServiceSpec, settings: CommonSettings, jobs: list[PeriodicJob]) -> Scheduler:
    """The service's periodic jobs on the PostgreSQL-backed scheduler: each runs once per period whatever
    the number of replicas (issue 14; replaces the in-process timer loop)."""

    async def run_job(job: PeriodicJob) -> None:
        await job.run(app)

    return Scheduler(spec.name, settings.database_url, jobs, run_job,
                     shutdown_seconds=settings.shutdown_budget_seconds)


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
            # ... and witnesses the other services' audit heads (issue 16)
            handlers[AuditHeadPublished] = audit_watch.head_published_handler(app)
        consumer = (
            InboxConsumer(name=settings.consumer_group or spec.name, db=db, inbox=spec.platform.inbox,
                          settings=settings, handlers=handlers, first_lock=spec.event_lock)
            if handlers else None
        )
        repairer = GapRepairer(app, consumer, settings) if consumer else None
        app.state.db = db
        app.state.relay = relay
        app.state.consumer = consumer
        app.state.repairer = repairer
        try:
            await ensure_topics(settings)
        except BrokerUnavailable as exc:  # down at start-up: the relay and the consumer retry
            log.warning("broker unreachable at start-up (%s); the relay and the consumer keep trying", exc)
        except Exception:  # the broker refused (TopicsNotCreated, authorization, ...): fail loudly
            await db.dispose()
            raise
        tasks = [
            asyncio.create_task(relay.run(), name=f"{spec.name}-outbox-relay"),
            asyncio.create_task(_refresh_calendar(db, spec.platform, app.state.calendar),
                                name=f"{spec.name}-calendar"),
        ]
        if consumer:
            tasks.append(asyncio.create_task(consumer.run(), name=f"{spec.name}-consumer"))
            tasks.append(asyncio.create_task(repairer.run(), name=f"{spec.name}-event-repair"))
        # every service verifies its own audit chain and publishes its head (shared/audit_watch.py)
        audit_job = PeriodicJob("audit-verify", settings.audit_verify_seconds, audit_watch.run_job,
                                first_after=settings.audit_verify_seconds)
        app.state.scheduler = _scheduler(app, spec, settings, [*spec.jobs, audit_job])
        tasks.append(asyncio.create_task(app.state.scheduler.run(), name=f"{spec.name}-scheduler"))
        tasks += [asyncio.create_task(app.state.scheduler.defer_forever(job), name=f"{spec.name}-{job.name}")
                  for job in [*spec.jobs, audit_job]]
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
            # shutdown within its budget: tasks get shutdown_budget_seconds to stop, each client
            # as long to close; whatever hangs is named in the log and left behind
            budget = settings.shutdown_budget_seconds
            for task in tasks:
                task.cancel()
            done, pending = await asyncio.wait(tasks, timeout=budget)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.error("task %s had failed: %r", task.get_name(), task.exception())
            if pending:
                log.error("shutdown: %s did not stop within %.0f s", sorted(t.get_name() for t in pending), budget)
            for name, close in (("outbox relay", relay.close), ("consumer", consumer.close if consumer else None),
                                ("event feed client", getattr(app.state, "event_feed_close", None))):
                if close is not None:
                    try:
                        await bounded(close(), budget, f"closing the {name}")
                    except Exception:
                        log.error("shutdown: closing the %s failed", name, exc_info=True)
            await db.dispose()
            for hook in spec.on_shutdown:
                hook(app)

    app = FastAPI(title=spec.title, description=spec.description, lifespan=lifespan, version="1.0")
    app.state.settings = settings
    app.state.service = spec.name
    app.state.platform = spec.platform
    app.state.token_verifier = TokenVerifier.from_settings(settings)
    app.state.cipher = FieldCipher.from_settings(
        settings.field_encryption_key.get_secret_value(), settings.field_hash_key.get_secret_value()
    )
    # events with personal data are stored sealed with the app's cipher (shared.events.outbox)
    app.state.outbox = Outbox(spec.platform.outbox, source=spec.name, cipher=app.state.cipher)
    app.state.calendar = WorkingCalendar()
    app.state.metrics = metrics
    app.state.audit_status = None  # the last verification of the own audit chain (shared/audit_watch.py)
    # how the consumer's gap repair reads a producer's event feed; tests wire in-process apps here
    app.state.event_feed_fetch, app.state.event_feed_close = http_feed_fetch(settings)
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
        body: dict = {"checks": checks}
        consumer: InboxConsumer | None = request.app.state.consumer
        if consumer is not None:  # a consumer that is stuck makes the service not ready
            health = consumer.health()
            checks["consumer"] = health["ok"]
            body["consumer"] = {"name": consumer.name, **health}
        ready = all(checks.values())
        if not ready:
            reasons = [name for name, ok in checks.items() if not ok and name != "consumer"]
            if consumer is not None and not checks["consumer"]:
                reasons.append(f"consumer {consumer.name} stuck since {body['consumer']['stuck_since']}: "
                               f"{body['consumer']['reason']}")
            body["reason"] = "; ".join(f"{r} unreachable" if r in ("database", "broker") else r for r in reasons)
        return JSONResponse({"status": "ready" if ready else "not_ready", **body},
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
            health = consumer.health()
            metrics.consumer_stuck_seconds.labels(spec.name, consumer.name).set(health["stuck_seconds"])
            metrics.consumer_rebuilds.labels(spec.name, consumer.name).set(consumer.rebuilds_total)
            metrics.consumer_broker_restarts.labels(spec.name, consumer.name).set(consumer.broker_restarts_total)
            metrics.consumer_commit_failures.labels(spec.name, consumer.name).set(consumer.commit_failures_total)
        repairer: GapRepairer | None = getattr(request.app.state, "repairer", None)
        if repairer:
            metrics.events_repaired.labels(spec.name, repairer.consumer.name).set(repairer.repaired_total)
            metrics.event_repair_failures.labels(spec.name, repairer.consumer.name).set(repairer.failures_total)
            if repairer.last_success:
                metrics.event_repair_last_success.labels(spec.name, repairer.consumer.name).set(
                    repairer.last_success.timestamp())
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(calendar_api.router)
    app.include_router(feed_router)  # GET /events/feed: gap repair for this service's consumers
    app.include_router(audit_watch.router)  # GET /audit/verify, /audit/witnessed
    for router in spec.routers:
        app.include_router(router)
    return app


# --- dependencies every router uses ------------------------------------------------------------

async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed before the response is sent, rolled back on any error."""
    async with request.app.state.db.transaction() as session:
        yield session


# async, though they only read app.state: FastAPI runs a plain function dependency in a worker thread, one thread
# hop per request each (the work lists' hot path showed it)
async def get_outbox(request: Request) -> Outbox:
    return request.app.state.outbox


async def get_calendar(request: Request) -> WorkingCalendar:
    return request.app.state.calendar


async def get_cipher(request: Request) -> FieldCipher:
    return request.app.state.cipher


# scope="function": the commit happens when the endpoint returns, before the response goes out,
# so a client never sees success for a transaction that then failed to commit.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
OutboxDep = Annotated[Outbox, Depends(get_outbox)]
CalendarDep = Annotated[WorkingCalendar, Depends(get_calendar)]
CipherDep = Annotated[FieldCipher, Depends(get_cipher)]

"""The PostgreSQL-backed scheduler (shared/scheduler.py, issue 14): two replicas of a service against one
database run each periodic job once per period; a failing job runs again next period; a job slower than
its period never overlaps itself."""

import asyncio
import uuid
from collections import Counter

import pytest
from fastapi import FastAPI
from sqlalchemy import text

from shared.app import PeriodicJob, ServiceSpec, create_service_app
from shared.db.migrations import upgrade
from shared.scheduler import SCHEMA
from tests.support.apps import running, service_settings
from tests.support.eventing import wait_until
from tests.support.sample_service import migrations_dir
from tests.support.sample_service.models import metadata, platform


@pytest.fixture(scope="module")
def migrated(database_url: str) -> None:
    upgrade(migrations_dir, database_url)  # also installs the scheduler's schema (as the owner)


def eventually(predicate):
    """wait_until for a plain (synchronous) predicate."""
    async def check() -> bool:
        return predicate()
    return check


def replica(settings_env, service: str, jobs: list[PeriodicJob]) -> FastAPI:
    """One replica of a pretend service `service` with these jobs (its own app, pool and worker)."""
    spec = ServiceSpec(name=service, title="调度测试", metadata=metadata, platform=platform, jobs=jobs)
    return create_service_app(spec, service_settings(settings_env, outbox_poll_seconds=0.5))


async def test_the_migrations_install_the_scheduler_schema_once(migrated, database_url) -> None:
    await asyncio.to_thread(upgrade, migrations_dir, database_url)  # a second time: nothing to do
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            tables = set((await conn.execute(text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = :s"), {"s": SCHEMA})).scalars())
    finally:
        await engine.dispose()
    assert {"procrastinate_jobs", "procrastinate_periodic_defers", "procrastinate_workers"} <= tables


async def test_two_replicas_run_a_periodic_job_once_per_period(migrated, settings_env) -> None:
    service = "sched" + uuid.uuid4().hex[:8]
    runs: list[tuple[str, float]] = []  # (replica, when)

    def job_of(replica_name: str) -> PeriodicJob:
        async def tick(app: FastAPI) -> None:
            runs.append((replica_name, asyncio.get_running_loop().time()))
        return PeriodicJob("tick", 0.5, tick)

    first, second = replica(settings_env, service, [job_of("a")]), replica(settings_env, service, [job_of("b")])
    async with running(first) as (a, _), running(second) as (b, _):
        both = lambda: len(a.state.scheduler.runs) + len(b.state.scheduler.runs)  # noqa: E731
        await wait_until(eventually(lambda: both() >= 8), timeout=30)
        periods = [r.period_start_ms for r in [*a.state.scheduler.runs, *b.state.scheduler.runs]]
        deferred = a.state.scheduler.deferred_total + b.state.scheduler.deferred_total
    twice = [p for p, n in Counter(periods).items() if n > 1]
    assert not twice, f"periods run more than once: {twice}"
    assert len(runs) == len(periods)
    # both replicas tried every period; the database let only one of them defer it
    assert deferred == len(set(periods)) or deferred == len(set(periods)) + 1  # + one deferred, not yet run
    assert all(p % 500 == 0 for p in periods)  # aligned periods: the same in every replica


async def test_a_failing_job_is_counted_and_runs_again_next_period(migrated, settings_env) -> None:
    attempts: list[int] = []

    async def failing(app: FastAPI) -> None:
        attempts.append(1)
        raise RuntimeError("boom")

    app = replica(settings_env, "sched" + uuid.uuid4().hex[:8], [PeriodicJob("failing", 0.3, failing)])
    async with running(app) as (app, _):
        await wait_until(eventually(lambda: len(attempts) >= 3), timeout=30)
        assert app.state.scheduler.failures_total >= 3
        assert not any(r.ok for r in app.state.scheduler.runs)


async def test_a_job_slower_than_its_period_never_overlaps_itself(migrated, settings_env) -> None:
    service = "sched" + uuid.uuid4().hex[:8]
    running_now = 0
    overlaps = 0
    done: list[int] = []

    async def slow(app: FastAPI) -> None:
        nonlocal running_now, overlaps
        running_now += 1
        overlaps += running_now > 1
        await asyncio.sleep(0.7)
        running_now -= 1
        done.append(1)

    apps = [replica(settings_env, service, [PeriodicJob("slow", 0.2, slow)]) for _ in range(2)]
    async with running(apps[0]), running(apps[1]):
        await wait_until(eventually(lambda: len(done) >= 3), timeout=30)
    assert overlaps == 0


async def scheduler_rows(database_url: str, sql: str, **params) -> list:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql.replace("{schema}", SCHEMA)), params)).all())
    finally:
        await engine.dispose()


async def test_a_stopped_app_stops_its_worker(migrated, settings_env, database_url) -> None:
    service = "sched" + uuid.uuid4().hex[:8]
    ticks: list[int] = []

    async def tick(app: FastAPI) -> None:
        ticks.append(1)

    workers_before = {r.id for r in await scheduler_rows(database_url, "SELECT id FROM {schema}.procrastinate_workers")}
    app = replica(settings_env, service, [PeriodicJob("tick", 0.3, tick)])
    async with running(app) as (app, _):
        await wait_until(eventually(lambda: len(ticks) >= 2), timeout=30)
        workers_while = {r.id for r in await scheduler_rows(
            database_url, "SELECT id FROM {schema}.procrastinate_workers")}
    ours = workers_while - workers_before
    assert ours, "the running app registered its worker"
    workers_after = {r.id for r in await scheduler_rows(database_url, "SELECT id FROM {schema}.procrastinate_workers")}
    assert not ours & workers_after, "the stopped app unregistered its worker"
    assert not app.state.scheduler.ready.is_set()
    # nothing of the stopped app runs any more: a job deferred for its queue now waits for a worker
    from shared.scheduler import Scheduler

    other = Scheduler(service, settings_env["DATABASE_URL"], [PeriodicJob("tick", 0.3, tick)], lambda job: tick(None))
    async with other.procrastinate.open_async():
        deferral = await other.defer(f"{service}.tick")
        while deferral.job_id is None:  # the stopped app had deferred this period already: the next one
            await asyncio.sleep(0.1)
            deferral = await other.defer(f"{service}.tick")
    seen = len(ticks)
    await asyncio.sleep(1.0)  # three periods: a live worker would have run it at once (LISTEN/NOTIFY)
    assert len(ticks) == seen
    waiting = await scheduler_rows(database_url, "SELECT status FROM {schema}.procrastinate_jobs WHERE queue_name = :q",
                                   q=service)
    assert [r.status for r in waiting] == ["todo"]


async def test_an_app_stops_within_its_shutdown_budget_while_a_job_runs(
        migrated, settings_env, database_url, caplog) -> None:
    import logging

    service = "sched" + uuid.uuid4().hex[:8]
    started = asyncio.Event()

    async def endless(app: FastAPI) -> None:
        started.set()
        await asyncio.sleep(3600)

    spec = ServiceSpec(name=service, title="调度测试", metadata=metadata, platform=platform,
                       jobs=[PeriodicJob("endless", 0.5, endless)])
    app = create_service_app(spec, service_settings(settings_env, outbox_poll_seconds=0.5,
                                                    shutdown_budget_seconds=2))
    logging.getLogger().addHandler(caplog.handler)  # configure_logging replaced the root's handlers
    try:
        with caplog.at_level(logging.INFO):
            async with running(app):
                await asyncio.wait_for(started.wait(), 30)
    finally:
        logging.getLogger().removeHandler(caplog.handler)
    late = [r.getMessage() for r in caplog.records if "did not stop within" in r.getMessage()]
    assert not late, late
    # the job that was cut short is not left running (its lock would block the next period): aborted, deleted
    left = await scheduler_rows(database_url, "SELECT status FROM {schema}.procrastinate_jobs WHERE queue_name = :q",
                                q=service)
    assert [r.status for r in left if r.status == "doing"] == []
    assert [r.ok for r in app.state.scheduler.runs] == [False]

"""Periodic jobs that run once per period however many replicas a service has (issue 14).

A service declares its jobs as before: `ServiceSpec(jobs=[PeriodicJob(name, seconds, run)])`. They are
run by procrastinate, a job queue kept in PostgreSQL (schema `scheduler`), instead of a timer in each
process:

- Periods are aligned to the epoch of the database's clock: period k of a job covers [k·seconds,
  (k+1)·seconds). Every replica's deferrer wakes at each period start and, in one statement that reads the
  database's clock, defers "job J for period k" through procrastinate's periodic defer
  (`procrastinate_defer_periodic_job_v2`): a unique row per (task, periodic id, period start) in
  `procrastinate_periodic_defers`, so only the first replica creates the job, the others get nothing. The
  replicas' own clocks never name a period (a replica whose clock is behind cannot re-create a period
  whose row a later period has already deleted).
- Every replica runs a procrastinate worker on its service's queue (= the service name); a job is
  fetched by one worker only (`FOR UPDATE SKIP LOCKED` inside procrastinate) and runs `job.run(app)`.
- A job never overlaps itself: its `lock` (the task name) makes a second one wait until the running one
  is done, and its `queueing_lock` keeps at most one waiting, so a job slower than its period skips
  periods instead of piling them up.
- A replica that dies mid-job stops its heartbeat; after `stalled_seconds` the others mark its job
  failed (its lock is freed) and the next period runs as usual.
- A failure is logged at ERROR and the job runs again next period (as the timer loop did). Finished jobs
  are deleted (`delete_jobs="always"`); the periodic-defer rows of older periods are deleted by the
  defer itself.

The tables, types and functions are procrastinate's own `schema.sql`, installed into the schema
`scheduler` by the migrations (`install_schema`, called from every service's alembic env, as the owner:
services have no DDL). deploy/postgres/10-schemas.sql creates the schema and grants each service role
DML on its tables. procrastinate's SQL names its objects without a schema, so its connections set
`search_path` to `scheduler`.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import metadata as package_metadata
from typing import Any

import procrastinate
from procrastinate import exceptions as procrastinate_errors
from procrastinate.jobs import Status
from procrastinate.schema import SchemaManager
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.util import await_only

log = logging.getLogger(__name__)

SCHEMA = "scheduler"
# serializes installs of the schema by migrations of several services running at once
_INSTALL_LOCK = 0x5C4ED01E


# the current period of a job by the database's clock: [start, start + period_ms) in epoch milliseconds
PERIOD_NOW = """
SELECT (floor(now_ms / %(period_ms)s) * %(period_ms)s)::bigint AS period_start_ms, now_ms::bigint AS database_now_ms
FROM (SELECT floor(extract(epoch FROM clock_timestamp()) * 1000) AS now_ms) AS clock
"""
# one statement: read the database's clock and defer the job for that period (procrastinate's own function,
# a unique row per task and period start in procrastinate_periodic_defers; NULL when another replica did)
DEFER_FOR_THE_CURRENT_PERIOD = f"""
SELECT period.period_start_ms, period.database_now_ms,
       procrastinate_defer_periodic_job_v2(%(queue)s, %(lock)s, %(queueing_lock)s, %(task_name)s, 0, 'period',
                                           period.period_start_ms,
                                           jsonb_build_object('timestamp', period.period_start_ms)) AS job_id
FROM ({PERIOD_NOW}) AS period
"""
QUEUEING_LOCK_INDEX = "procrastinate_jobs_queueing_lock_idx_v1"


@dataclass
class Deferral:
    """What one replica's defer of one period found: the period (by the database's clock) and the job it
    created, None when another replica had deferred it already or the previous run was still waiting."""

    period_start_ms: int
    database_now_ms: int
    job_id: int | None


@dataclass
class Run:
    """One run of a periodic job in this replica (what the two-replica test and /metrics look at)."""

    job: str
    period_start_ms: int
    ok: bool


def install_schema(connection: Connection) -> bool:
    """Inside a migration (as the schema owner): create schema `scheduler` with procrastinate's tables,
    types and functions unless they exist. Idempotent, safe when several services migrate at once.
    Returns True if it installed them now."""
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _INSTALL_LOCK})
    connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"'))
    if connection.scalar(text("SELECT to_regclass(:t)"), {"t": f"{SCHEMA}.procrastinate_jobs"}) is not None:
        return False
    previous = connection.scalar(text("SELECT current_setting('search_path')"))
    connection.execute(text("SELECT set_config('search_path', :path, true)"), {"path": SCHEMA})
    # procrastinate's schema.sql: several statements, so one simple-protocol script on the driver itself
    # (asyncpg's execute without arguments; a prepared statement holds one command only)
    driver = connection.connection.driver_connection
    if hasattr(driver, "fetchval"):  # asyncpg, under SQLAlchemy's greenlet bridge
        await_only(driver.execute(SchemaManager.get_schema()))
    else:
        connection.exec_driver_sql(SchemaManager.get_schema())
    connection.execute(text("SELECT set_config('search_path', :path, true)"), {"path": previous})
    version = package_metadata.version("procrastinate")
    connection.execute(text(f"COMMENT ON SCHEMA \"{SCHEMA}\" IS 'procrastinate {version} (shared/scheduler.py)'"))
    log.info("installed the scheduler's job tables (procrastinate %s) in schema %s", version, SCHEMA)
    return True


def conninfo(database_url: str) -> dict[str, Any]:
    """psycopg connection arguments for the service's DATABASE_URL (postgresql+asyncpg://…), with the
    scheduler schema as search path."""
    url = make_url(database_url)
    args: dict[str, Any] = {"dbname": url.database, "user": url.username, "password": url.password,
                            "host": url.host, "port": url.port}
    host = url.query.get("host")  # a unix-socket directory given as ?host=/path
    if host and not args["host"]:
        args["host"] = host if isinstance(host, str) else host[0]
    # TLS as the service's own engine has it (asyncpg's ?ssl= / ?sslmode=, and the CA file of ?sslrootcert=)
    for asyncpg_name, libpq_name in (("ssl", "sslmode"), ("sslmode", "sslmode"), ("sslrootcert", "sslrootcert")):
        value = url.query.get(asyncpg_name)
        if value:
            value = value if isinstance(value, str) else value[0]
            args[libpq_name] = {"true": "require", "false": "disable"}.get(value.lower(), value)
    args = {k: v for k, v in args.items() if v is not None}
    args["options"] = f"-c search_path={SCHEMA}"
    args["application_name"] = "scheduler"
    return args


class Scheduler:
    """The periodic jobs of one service replica: a deferrer and a procrastinate worker."""

    def __init__(self, service: str, database_url: str, jobs: Sequence[Any],
                 run_job: Callable[[Any], Awaitable[object]], *, stalled_seconds: float = 30.0,
                 shutdown_seconds: float = 10.0) -> None:
        """`jobs`: PeriodicJob-like objects (name, seconds, run, first_after); `run_job(job)` runs one."""
        self.service = service
        self.jobs = {self.task_name(job): job for job in jobs}
        self.run_job = run_job
        self.stalled_seconds = stalled_seconds
        self.shutdown_seconds = shutdown_seconds
        self.runs: list[Run] = []  # this replica's runs, newest last (bounded)
        self.deferred_total = 0  # periods this replica deferred (won the period)
        self.failures_total = 0
        self.ready = asyncio.Event()  # set while the connection pool is open
        self.procrastinate = procrastinate.App(
            connector=procrastinate.PsycopgConnector(kwargs=conninfo(database_url), min_size=1, max_size=4,
                                                     name=f"{service}-scheduler"))
        for name in self.jobs:
            self.procrastinate.task(name=name, queue=service, lock=name, queueing_lock=name)(self._task(name))

    def task_name(self, job: Any) -> str:
        return f"{self.service}.{job.name}"

    @staticmethod
    def period_ms(job: Any) -> int:
        return max(1, round(job.seconds * 1000))

    def _task(self, name: str) -> Callable[..., Awaitable[None]]:
        job = self.jobs[name]

        async def run(timestamp: int) -> None:
            ok = False
            try:
                await self.run_job(job)
                ok = True
            except asyncio.CancelledError:
                raise
            except Exception:
                self.failures_total += 1
                log.error("periodic job %s failed; it runs again next period (%.1f s)", job.name, job.seconds,
                          exc_info=True)
            finally:
                self.runs.append(Run(job.name, timestamp, ok))
                del self.runs[:-1000]

        run.__name__ = name.replace(".", "_").replace("-", "_")
        return run

    async def run(self) -> None:
        """Until cancelled: the worker and the check for stalled jobs, restarted after a database outage (the
        deferrers, `defer_forever`, run as tasks of their own)."""
        while True:
            try:
                async with self.procrastinate.open_async():
                    self.ready.set()
                    tasks = [asyncio.create_task(self.procrastinate.run_worker_async(
                        queues=[self.service], name=f"{self.service}-scheduler",
                        concurrency=max(1, len(self.jobs)), install_signal_handlers=False,
                        delete_jobs="always", listen_notify=True, wait=True,
                        fetch_job_polling_interval=self._polling_interval(),
                        update_heartbeat_interval=max(1.0, self.stalled_seconds / 3),
                        stalled_worker_timeout=self.stalled_seconds,
                        shutdown_graceful_timeout=self.shutdown_seconds / 2,
                    ), name=f"{self.service}-scheduler-worker")]
                    tasks.append(asyncio.create_task(self._check_stalled_forever(),
                                                     name=f"{self.service}-scheduler-stalled"))
                    try:
                        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                        for task in done:  # one stopped (its connection failed): start over
                            task.result()
                        raise RuntimeError("a scheduler task stopped")
                    finally:
                        self.ready.clear()
                        for task in tasks:
                            task.cancel()
                        await asyncio.gather(*tasks, return_exceptions=True)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.error("scheduler of %s lost its database; restarting in 5 s", self.service, exc_info=True)
                await asyncio.sleep(5)

    def _polling_interval(self) -> float:
        # new jobs wake the worker at once (LISTEN/NOTIFY); polling only picks up a job whose lock was busy
        return max(0.2, min([5.0, *(job.seconds for job in self.jobs.values())]))

    async def defer_forever(self, job: Any) -> None:
        """At each period start of `job` (after its first_after), defer it for that period (a task of its own,
        named `<service>-<job>` by shared/app.py); a failure (database away) is logged and tried next period.
        It sleeps until the next period start by the database's clock (the one clock of every replica)."""
        name = self.task_name(job)
        if job.first_after:
            await asyncio.sleep(job.first_after)
        period = self.period_ms(job)
        while True:
            await self.ready.wait()
            wait_ms = period
            try:
                outcome = await self.defer(name)
                wait_ms = outcome.period_start_ms + period - outcome.database_now_ms
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("could not defer periodic job %s; next period", name, exc_info=True)
            await asyncio.sleep(max(10, wait_ms + 5) / 1000)

    async def defer(self, name: str) -> "Deferral":
        """Defer job `name` for the current period unless some replica already did. The period is that of the
        database's clock, read in the statement that defers (replicas whose clocks disagree cannot run one
        period twice); procrastinate's periodic defer keeps one row per (task, period start), so only the
        first replica creates the job. A previous run still waiting (its queueing lock) skips this period."""
        period = self.period_ms(self.jobs[name])
        try:
            row = await self.procrastinate.connector.execute_query_one_async(
                DEFER_FOR_THE_CURRENT_PERIOD, period_ms=period, queue=self.service, lock=name,
                queueing_lock=name, task_name=name)
        except procrastinate_errors.UniqueViolation as exc:
            if exc.constraint_name != QUEUEING_LOCK_INDEX:
                raise
            log.info("periodic job %s: a period is skipped, the previous one has not run yet", name)
            row = await self.procrastinate.connector.execute_query_one_async(
                PERIOD_NOW, period_ms=period)
            return Deferral(row["period_start_ms"], row["database_now_ms"], None)
        if row["job_id"] is not None:
            self.deferred_total += 1
        return Deferral(row["period_start_ms"], row["database_now_ms"], row["job_id"])

    async def _check_stalled_forever(self) -> None:
        while True:
            await self.fail_stalled_jobs()
            await asyncio.sleep(self.stalled_seconds / 2)

    async def fail_stalled_jobs(self) -> int:
        """Jobs of a replica whose heartbeat stopped: marked failed, so their lock frees."""
        manager = self.procrastinate.job_manager
        stalled = list(await manager.get_stalled_jobs(queue=self.service,
                                                      seconds_since_heartbeat=self.stalled_seconds))
        for job in stalled:
            with contextlib.suppress(Exception):
                await manager.finish_job(job, status=Status.FAILED, delete_job=True)
                log.warning("periodic job %s (id %s) of a replica that stopped was marked failed", job.task_name,
                            job.id)
        return len(stalled)

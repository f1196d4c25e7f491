"""Test session: real PostgreSQL and a real Kafka-protocol broker, started from wheels on free ports.

Set TEST_DATABASE_URL / TEST_KAFKA_BOOTSTRAP_SERVERS to use servers of your own instead.
"""

import base64
import os
import secrets
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.devstack import infra
from tests.support.signing import signing_env


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """URL (postgresql+asyncpg) of a real PostgreSQL server for this test session."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield url
        return
    data_dir = Path(tempfile.mkdtemp(prefix="supervision-test-")) / "pg"
    postgres = infra.start_postgres(data_dir, cleanup="delete")
    yield postgres.url
    postgres.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """bootstrap servers of a real Kafka-protocol broker for this test session."""
    if servers := os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS"):
        yield servers
        return
    broker = infra.start_broker(infra.free_port())
    yield broker.bootstrap
    broker.stop()


@pytest.fixture(scope="session")
def settings_env(database_url: str, kafka_bootstrap: str) -> dict[str, str]:
    """Environment a service needs in tests (dev broker: idempotent producer off)."""
    key = lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()  # noqa: E731
    return {
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_IDEMPOTENT_PRODUCER": "false",
        "KAFKA_FETCH_MAX_WAIT_MS": "10",  # tansu holds every fetch for the full wait
        "FIELD_ENCRYPTION_KEY": key(),
        "FIELD_HASH_KEY": key(),
        "LOG_JSON": "false",
        # event signing: registry's test key (the platform tests' pretend producer publishes registry
        # events); every test source's public key. service_settings() gives each service its own key.
        **signing_env("registry"),
    }


@pytest.fixture
def unique_name() -> str:
    """A short unique identifier for schemas, topics and consumer groups of one test."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
async def fresh_schema(database_url: str, unique_name: str) -> str:
    """An empty PostgreSQL schema of its own for one test."""
    engine = create_async_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{unique_name}"'))
    await engine.dispose()
    return unique_name


@pytest.fixture(scope="session", autouse=True)
def _detach_log_handlers_at_exit() -> Iterator[None]:
    """Service apps route logs to the (captured) stderr; drop that handler before pytest closes it."""
    yield
    import logging

    logging.getLogger().handlers.clear()


@pytest.fixture(autouse=True)
async def _dump_tasks_if_a_test_hangs() -> AsyncIterator[None]:
    """If a test runs for minutes, print every asyncio task's stack so a hang can be diagnosed."""
    import asyncio
    import sys

    def dump() -> None:
        print("\n=== test still running after 180 s: asyncio tasks ===", file=sys.stderr)
        for task in asyncio.all_tasks():
            task.print_stack(limit=8, file=sys.stderr)

    handle = asyncio.get_running_loop().call_later(180, dump)
    yield
    handle.cancel()

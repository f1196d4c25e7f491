"""The read-only engine for a service's hot work lists (the registry's roster, casework's activities).

Autocommit and no pre-ping, so a list read is one round trip (the platform engine pings at every checkout, then
BEGIN ... COMMIT). A fixed pool (no overflow): under a burst requests queue for a connection instead of opening and
closing extra ones, which costs PostgreSQL a process fork each time. A connection found broken is discarded and the
request answered 503 (the next one gets a new one): `fetch`.

A service opts in with `install(app)` in its app factory and reads through `ReadConnDep`. Only reads go here:
anything that writes (or must see its own writes) uses the platform session (`shared.app.SessionDep`).
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, FastAPI, Request
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from shared.db import raw
from shared.errors import ProblemError, Unprocessable


def install(app: FastAPI) -> None:
    """`app.state.read_engine` for the app's lifetime (created at start-up, disposed at shutdown)."""
    settings = app.state.settings
    platform_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_async_engine(settings.database_url, pool_size=settings.database_pool_size,
                                     max_overflow=0, pool_pre_ping=False, isolation_level="AUTOCOMMIT")
        app.state.read_engine = engine
        try:
            async with platform_lifespan(app):
                yield
        finally:
            await engine.dispose()

    app.router.lifespan_context = lifespan


async def read_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """A connection of the read-only engine for one request."""
    async with request.app.state.read_engine.connect() as conn:
        yield conn


ReadConnDep = Annotated[AsyncConnection, Depends(read_connection, scope="function")]


async def fetch(conn: AsyncConnection, sql: str, *args: Any) -> list[asyncpg.Record]:
    """One statement on the read connection's asyncpg driver: a value PostgreSQL cannot use (e.g. a NUL byte in a
    filter) is a 422 `invalid_data`; a broken connection is dropped and the request answered 503."""
    try:
        return await raw.fetch(conn, sql, *args)
    except DataError as exc:
        raise Unprocessable("invalid_data", "数据无法处理", "请检查查询条件中的特殊字符。") from exc
    except OperationalError as exc:
        await conn.invalidate()  # a broken pooled connection: drop it, the next request gets a new one
        raise ProblemError(503, "unavailable", "服务暂不可用", "数据库暂不可用，请稍后重试。",
                           headers={"Retry-After": "5"}) from exc

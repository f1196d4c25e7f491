"""Hot-path statements on the asyncpg connection under a SQLAlchemy session or connection.

Going past SQLAlchemy saves its per-statement work where a service needs it (the roster list, the
draw), but asyncpg's own exceptions would then bypass what the platform knows about database
errors: the problem+json mapping (`shared.errors`: 409 / 422 / 503) and the inbox's rule that an
unavailable database is waited out, never dead-lettered (`shared.events.inbox.is_transient`).
So every error is raised again as the SQLAlchemy exception the normal path would have raised.
"""

from typing import Any

import asyncpg
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

# the connection itself is gone or refuses work (lost, terminated, shutting down)
CONNECTION_ERRORS = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                     asyncpg.exceptions.OperatorInterventionError, OSError, ConnectionError, TimeoutError)


def as_dbapi_error(exc: Exception, sql: str, args: tuple) -> DBAPIError:
    """The SQLAlchemy exception for an asyncpg error (SQLSTATE 23 integrity, 22 data, lost connection)."""
    state = str(getattr(exc, "sqlstate", "") or "")
    if isinstance(exc, CONNECTION_ERRORS) or state.startswith(("08", "57")):
        return OperationalError(sql, args, exc, connection_invalidated=True)
    if state.startswith("23"):
        return IntegrityError(sql, args, exc)
    if state.startswith("22"):
        return DataError(sql, args, exc)
    return DBAPIError(sql, args, exc)


async def _driver(conn: AsyncSession | AsyncConnection) -> asyncpg.Connection:
    connection = await conn.connection() if isinstance(conn, AsyncSession) else conn
    return (await connection.get_raw_connection()).driver_connection


async def fetch(conn: AsyncSession | AsyncConnection, sql: str, *args: Any) -> list[asyncpg.Record]:
    """asyncpg `fetch` in the caller's transaction; errors as SQLAlchemy's."""
    try:
        return await (await _driver(conn)).fetch(sql, *args)
    except (asyncpg.PostgresError, *CONNECTION_ERRORS) as exc:
        raise as_dbapi_error(exc, sql, args) from exc


async def execute(conn: AsyncSession | AsyncConnection, sql: str, *args: Any) -> str:
    """asyncpg `execute` in the caller's transaction; errors as SQLAlchemy's."""
    try:
        return await (await _driver(conn)).execute(sql, *args)
    except (asyncpg.PostgresError, *CONNECTION_ERRORS) as exc:
        raise as_dbapi_error(exc, sql, args) from exc

"""The read-only engine for a service's hot work lists (the registry's roster, casework's activities).

Autocommit and no pre-ping, so a list read is one round trip (the platform engine pings at every checkout, then
BEGIN ... COMMIT). A fixed pool (no overflow): under a burst requests queue for a connection instead of opening and
closing extra ones, which costs PostgreSQL a process fork each time. A connection found broken is discarded and the
request answered 503 (the next one gets a new one): `fetch`.

A service opts in with `install(app)` in its app factory and reads through `ReadConnDep`. Only reads go here:
anything that writes (or must see its own writes) uses the platform session (`shared.app.SessionDep`).
"""

from collections.abc import AsyncIterator, Sequence
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


# --- work list pages rendered as JSON by PostgreSQL ------------------------------------------------

def json_page_sql(*, head: str, page: str, fields: dict[str, str], descending: bool = False) -> str:
    """One work list page in one statement: the `head` row (a SELECT of `total_` and any other always-present
    column) LEFT JOINed with the page (`page`: a SELECT of the columns `fields` use plus `k1_`, `k2_` — the keyset
    sort key — with its ORDER BY and LIMIT), each item rendered by PostgreSQL as JSON text (`item`: row_to_json of
    `fields`, field -> SQL expression over the page's columns, evaluated after LIMIT, on the page's rows only). The
    statement always answers at least one row (the head's, with a null item when the page is empty). The service
    joins the texts instead of decoding every column into Python objects and encoding them again."""
    item = ", ".join(f"{expr} AS {field}" for field, expr in fields.items())
    direction = "DESC" if descending else "ASC"
    return (f"SELECT t.*, p.item, p.k1_, p.k2_ FROM ({head}) AS t LEFT JOIN LATERAL (SELECT row_to_json(item)::text "
            f"AS item, page.k1_, page.k2_ FROM ({page}) AS page CROSS JOIN LATERAL (SELECT {item}) AS item) AS p ON "
            f"TRUE ORDER BY p.k1_ {direction}, p.k2_ {direction}")


def json_page_of(records: Sequence[asyncpg.Record], *, limit: int) -> tuple[list[str], int, list[Any] | None]:
    """The answer of `json_page_sql` (`limit + 1` items read): (the items' JSON texts, the total, the sort key of
    the last item shown when more follow)."""
    shown = [r for r in records if r["item"] is not None]
    more = len(shown) > limit
    shown = shown[:limit]
    next_key = [shown[-1]["k1_"], shown[-1]["k2_"]] if more else None
    return [r["item"] for r in shown], int(records[0]["total_"]), next_key


def iso_utc(column: str) -> str:
    """SQL rendering a timestamptz as the JSON of the response models does (pydantic, an aware UTC datetime):
    `2026-01-02T03:04:05Z`, with `.ffffff` only when the moment is not a whole second; NULL stays NULL."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (f"(to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN extract(microseconds FROM {column})::bigint "
            f"% 1000000 = 0 THEN '' ELSE to_char({utc}, '.US') END || 'Z')")


def sql_text(value: str) -> str:
    """A constant of the code (a label) as an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def label_case(column: str, labels: dict[str, str], *, unknown: str | None = None) -> str:
    """SQL: the label of `column`'s code from a constant table of the code; `unknown` (SQL) for other codes."""
    whens = " ".join(f"WHEN {sql_text(code)} THEN {sql_text(label)}" for code, label in labels.items())
    return f"CASE {column} {whens} ELSE {unknown or 'NULL'} END"

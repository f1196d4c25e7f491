"""Hot-path settings of the registry: a read-only engine for the roster lists, and a frozen start-up heap.

Read-only engine: autocommit and no pre-ping, so a list read is one round trip (the platform engine pings at
every checkout, then BEGIN ... COMMIT). A connection found broken is discarded and the request answered 503
(the next one gets a new one). Token verification is cached by the platform (shared.auth).

Frozen heap: once started, the process holds a few hundred thousand long-lived objects (modules, pydantic and
SQLAlchemy models, routes, pools). Python's full (generation 2) garbage collection walks all of them, and under
concurrent requests it runs every thousand or so requests (objects of requests in flight survive the young
collections): a pause of 75-90 ms on the 2-core bench machine, which every request in flight waits out.
`gc.freeze()` after start-up moves them to a permanent generation the collector skips (full collections then
took ~4 ms); reference counting still frees them as usual. Shutdown unfreezes them.
"""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import create_async_engine


def install(app: FastAPI) -> None:
    settings = app.state.settings
    platform_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # a fixed pool (no overflow): under a burst requests queue for a connection instead of opening
        # and closing extra ones, which costs PostgreSQL a process fork each time
        engine = create_async_engine(settings.database_url, pool_size=settings.database_pool_size,
                                     max_overflow=0, pool_pre_ping=False, isolation_level="AUTOCOMMIT")
        app.state.read_engine = engine
        try:
            async with platform_lifespan(app):
                gc.collect()  # start-up garbage first, so only live objects are frozen
                gc.freeze()
                try:
                    yield
                finally:
                    gc.unfreeze()
        finally:
            await engine.dispose()

    app.router.lifespan_context = lifespan

"""Hot-path settings of the registry: a read-only engine for the roster lists.

Read-only engine: autocommit and no pre-ping, so a list read is one round trip (the platform engine pings at
every checkout, then BEGIN ... COMMIT). A connection found broken is discarded and the request answered 503
(the next one gets a new one). Token verification is cached by the platform (shared.auth).

(The frozen start-up heap that stops long full garbage collections is the platform's, shared.app.)
"""

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
                yield
        finally:
            await engine.dispose()

    app.router.lifespan_context = lifespan

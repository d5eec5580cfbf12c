"""asyncpg connections for the pipeline's hot paths, where one hand-written statement beats an ORM round-trip."""

from __future__ import annotations

import asyncpg

from service.settings import Settings

CONNECT_TIMEOUT_S = 5.0


def plain_dsn(settings: Settings) -> str:
    """The database URL as libpq/asyncpg spell it (no SQLAlchemy driver suffix)."""
    return settings.async_database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Nothing to reset: the pipeline's pooled connections leave no session state behind (the relay's lock and its
    LISTEN have connections of their own). asyncpg's default reset on release
    (`pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`) would cost every relay and aggregator round one
    more round trip; a transaction left open is still rolled back by asyncpg before this is called."""


async def create_pool(settings: Settings, size: int = 2) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        plain_dsn(settings), min_size=1, max_size=size, timeout=CONNECT_TIMEOUT_S, reset=_keep_session
    )


async def connect(settings: Settings) -> asyncpg.Connection:
    return await asyncpg.connect(plain_dsn(settings), timeout=CONNECT_TIMEOUT_S)

"""The database layer's shared pieces: the declarative base and the Litestar SQLAlchemy plugin configuration.

Every request gets one session from the plugin; it commits when the handler answers 2xx and rolls back
otherwise, so a handler that fails halfway leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
from advanced_alchemy.extensions.litestar import AsyncSessionConfig, SQLAlchemyAsyncConfig, SQLAlchemyPlugin
from sqlalchemy import DateTime, MetaData, func
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from service.settings import Settings

API_POOL_SIZE = 20  # connections per API process

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every table; constraint names follow one convention so migrations can refer to them."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Timestamps:
    """Aware UTC creation and update times, set by the database."""

    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


def create_engine(settings: Settings, pool_size: int = 10, max_overflow: int | None = None) -> AsyncEngine:
    """The one way to get an engine: an unreachable server fails in seconds. Up to `pool_size` connections are
    kept; `max_overflow` more (by default as many) are opened under load and closed again when returned.

    No `pool_pre_ping`: with asyncpg it costs three round trips (BEGIN, a ping, ROLLBACK) on every checkout, more
    than a booking's own statements. A connection that died in the pool (Postgres restarted) fails its first
    statement instead; SQLAlchemy sees the disconnect, answers 503 for that request and discards every connection
    opened before it, so the next requests get fresh ones (tests/test_health.py).
    """
    return create_async_engine(
        settings.async_database_url,
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
        pool_timeout=5,
        connect_args={"timeout": 5},
    )


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under the session, for a statement of `Pooled.driver`'s kind run in the session's
    transaction; only once an earlier statement of the session has begun that transaction on the server."""
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    if driver is None or not driver.is_in_transaction():
        raise RuntimeError("driver_connection needs a transaction the session has begun on the server")
    return driver


# A connection that broke under a statement: the server went away (or restarted), or the socket did.
LOST_CONNECTION = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
)


@dataclass(frozen=True)
class Pooled:
    """One of the pool's connections, as SQLAlchemy's connection and as the asyncpg connection under it."""

    connection: AsyncConnection
    driver: asyncpg.Connection


@contextlib.asynccontextmanager
async def pooled(engine: AsyncEngine) -> AsyncIterator[Pooled]:
    """A connection of the engine's pool for the hot paths (bookings, quotes): their statements run on the asyncpg
    connection, prepared once per connection, without a session and its per-statement work (which cost more than
    the statements). None is in a transaction: each statement commits by itself, unless the caller opens
    `driver.transaction()`.

    A connection lost under it is handled as SQLAlchemy handles it on its own statements: this one is dropped and
    so is every pooled connection opened before it (they died with the server), so once Postgres is back the next
    requests get fresh ones (tests/test_health.py); the error answers 503 (`service.errors`).
    """
    async with engine.connect() as connection:
        pooled_connection = await connection.get_raw_connection()
        driver = pooled_connection.driver_connection
        if driver is None:
            raise RuntimeError("the pool handed out a closed connection")
        try:
            yield Pooled(connection, driver)
        except LOST_CONNECTION as exc:
            # As `Connection._handle_dbapi_exception` does on a disconnect.
            engine.sync_engine.pool._invalidate(pooled_connection, exc, _checkin=False)
            await connection.invalidate(exc)
            raise


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for code outside a request (worker jobs); use `async with factory.begin() as session`."""
    return async_sessionmaker(engine, expire_on_commit=False)


def api_engine(settings: Settings) -> AsyncEngine:
    """The API process's engine: 20 connections at most, kept; an overflow connection would be closed when
    returned and reopened under the next burst, and a connect costs more than a booking."""
    return create_engine(settings, pool_size=API_POOL_SIZE, max_overflow=0)


def sqlalchemy_plugin(engine: AsyncEngine) -> SQLAlchemyPlugin:
    """The engine with a session per request, committed on success."""
    config = SQLAlchemyAsyncConfig(
        engine_instance=engine,
        # Handlers may commit early (bookings commit before releasing their lock) and still read the rows.
        # `info` switches off advanced-alchemy's cache-invalidation listener, and `enable_file_object_listener`
        # its file-object one: we use neither feature, and asking whether they are on cost every commit.
        session_config=AsyncSessionConfig(expire_on_commit=False, info={"enable_cache_listener": False}),
        enable_file_object_listener=False,
        before_send_handler="autocommit",
        session_dependency_key="db_session",
        set_default_exception_handler=False,
        create_all=False,
    )
    return SQLAlchemyPlugin(config=config)

"""The database layer's shared pieces: the declarative base and the Litestar SQLAlchemy plugin configuration.

Every request gets one session from the plugin; it commits when the handler answers 2xx and rolls back
otherwise, so a handler that fails halfway leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt

from advanced_alchemy.extensions.litestar import AsyncSessionConfig, SQLAlchemyAsyncConfig, SQLAlchemyPlugin
from sqlalchemy import DateTime, MetaData, func
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from service.settings import Settings

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


def create_engine(settings: Settings, pool_size: int = 10, *, pre_ping: bool = True) -> AsyncEngine:
    """The one way to get an engine: stale connections are replaced, and an unreachable server fails in seconds.
    `pre_ping=False` saves the three round trips of a ping per checkout, for a hot path that retries instead
    when a statement finds its connection dead."""
    return create_async_engine(
        settings.async_database_url,
        pool_pre_ping=pre_ping,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=5,
        connect_args={"timeout": 5},
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for code outside a request (worker jobs); use `async with factory.begin() as session`."""
    return async_sessionmaker(engine, expire_on_commit=False)


def sqlalchemy_plugin(settings: Settings) -> SQLAlchemyPlugin:
    """One async engine per process with a session per request, committed on success."""
    config = SQLAlchemyAsyncConfig(
        engine_instance=create_engine(settings),
        # Handlers may commit early (bookings commit before releasing their lock) and still read the rows.
        session_config=AsyncSessionConfig(expire_on_commit=False),
        before_send_handler="autocommit",
        session_dependency_key="db_session",
        set_default_exception_handler=False,
        create_all=False,
    )
    return SQLAlchemyPlugin(config=config)

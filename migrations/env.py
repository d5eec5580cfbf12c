"""Alembic environment: runs migrations over the async engine, online only."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from service.models import Base
from service.settings import Settings, to_asyncpg_url

config = context.config
database_url = config.attributes.get("database_url") or Settings.from_env().database_url
if database_url is None:
    raise SystemExit("DATABASE_URL is not set; `staypulse migrate` starts the embedded server when it is unset")


def run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_async_engine(to_asyncpg_url(database_url))
    async with engine.connect() as connection:
        await connection.run_sync(run_migrations)
    await engine.dispose()


asyncio.run(run_async_migrations())

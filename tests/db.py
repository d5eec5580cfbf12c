"""Direct database access for tests: arranging what no API offers yet (time passing) and checking rows."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.bookings import lifecycle
from service.bookings.jobs import advance_bookings_once
from service.bookings.models import Booking
from service.db import create_engine, session_factory
from service.settings import Settings


@asynccontextmanager
async def session_for(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A session in a transaction that commits when the block ends."""
    engine = create_engine(settings, pool_size=1)
    try:
        async with session_factory(engine).begin() as session:
            yield session
    finally:
        await engine.dispose()


async def execute(settings: Settings, sql: str, **params: Any) -> list[Any]:
    async with session_for(settings) as session:
        result = await session.execute(text(sql), params)
        return list(result.all()) if result.returns_rows else []  # type: ignore[attr-defined]  # CursorResult


async def run(settings: Settings, step: Callable[[AsyncSession], Coroutine[Any, Any, Any]]) -> Any:
    async with session_for(settings) as session:
        return await step(session)


async def event_types(settings: Settings, booking_id: str) -> list[str]:
    rows = await execute(
        settings, "SELECT type FROM outbox_events WHERE payload->>'booking_id' = :id ORDER BY id", id=booking_id
    )
    return [row[0] for row in rows]


@asynccontextmanager
async def worker_sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A session factory like a worker job's, for calling one round of a job."""
    engine = create_engine(settings, pool_size=2)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def payloads(settings: Settings, booking_id: str, event_type: str) -> list[dict[str, Any]]:
    rows = await execute(
        settings,
        "SELECT payload FROM outbox_events WHERE payload->>'booking_id' = :id AND type = :type ORDER BY id",
        id=booking_id,
        type=event_type,
    )
    return [row[0] for row in rows]


async def confirm(settings: Settings, booking_id: str) -> None:
    """What a successful payment does (payments call the same function)."""

    async def step(session: AsyncSession) -> None:
        await lifecycle.confirm(session, await session.get_one(Booking, uuid.UUID(booking_id)))

    await run(settings, step)


async def expire_hold(settings: Settings, booking_id: str) -> None:
    """Time passing: the hold runs out, and the worker's booking job expires it."""
    await execute(
        settings, "UPDATE bookings SET hold_expires_at = now() - interval '1 minute' WHERE id = :id", id=booking_id
    )
    engine = create_engine(settings, pool_size=1)
    try:
        await advance_bookings_once(session_factory(engine))
    finally:
        await engine.dispose()

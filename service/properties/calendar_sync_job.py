"""The worker job that keeps imported calendars fresh.

Each round claims due feeds with `FOR UPDATE SKIP LOCKED` and, in that same short transaction, moves their
`next_sync_at` one interval ahead: the claim is a lease, so several workers split the work, and a worker that dies
mid-sync leaves the feed to be retried at its next time rather than stuck. Every feed then syncs in a transaction
of its own, so one bad feed never holds back or rolls back the others.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.properties.calendar_import import sync_feed
from service.properties.models import CalendarFeed, Property
from service.rounds import run_rounds
from service.settings import Settings

log = logging.getLogger(__name__)

FEEDS_PER_ROUND = 20
MIN_IDLE_S = 1.0
MAX_IDLE_S = 30.0


async def sync_calendar_feeds(settings: Settings) -> None:
    """Sync due feeds, round after round, until cancelled; a round that fails is logged and retried."""

    async def one_round(sessions: async_sessionmaker[AsyncSession]) -> float:
        if await sync_due_feeds(sessions, settings) == FEEDS_PER_ROUND:
            return 0  # more may be due right now
        return await seconds_until_next_due(sessions)

    await run_rounds(settings, "calendar sync", one_round, after_failure=MAX_IDLE_S)


async def sync_due_feeds(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, limit: int = FEEDS_PER_ROUND
) -> int:
    """One round: claim up to `limit` due feeds of live properties, sync each; answers how many were claimed."""
    lease = dt.timedelta(seconds=settings.calendar_sync_interval_seconds)
    async with sessions.begin() as session:
        claimed = list(
            await session.scalars(
                select(CalendarFeed.id)
                .join(Property, Property.id == CalendarFeed.property_id)
                .where(CalendarFeed.next_sync_at <= func.now(), Property.deleted_at.is_(None))
                .order_by(CalendarFeed.next_sync_at)
                .limit(limit)
                .with_for_update(of=CalendarFeed, skip_locked=True)
            )
        )
        if claimed:
            await session.execute(
                update(CalendarFeed).where(CalendarFeed.id.in_(claimed)).values(next_sync_at=func.now() + lease)
            )
    for feed_id in claimed:
        try:
            await _sync_one(sessions, feed_id, settings)
        except Exception:
            log.exception("calendar feed sync failed", extra={"feed_id": str(feed_id)})
    return len(claimed)


async def _sync_one(sessions: async_sessionmaker[AsyncSession], feed_id: uuid.UUID, settings: Settings) -> None:
    async with sessions.begin() as session:
        # Locked, so a host's "sync now" of the same feed waits instead of applying the same diff twice.
        row = (
            await session.execute(
                select(CalendarFeed, Property)
                .join(Property, Property.id == CalendarFeed.property_id)
                .where(CalendarFeed.id == feed_id)
                .with_for_update(of=CalendarFeed)
            )
        ).one_or_none()
        if row is None:
            return  # removed since it was claimed
        feed, prop = row
        result = await sync_feed(session, prop, feed, settings)
    log.info(
        "calendar feed synced",
        extra={
            "feed_id": str(feed_id),
            "added": result.added,
            "removed": result.removed,
            "unchanged": result.unchanged,
            "error": result.error,
        },
    )


async def seconds_until_next_due(sessions: async_sessionmaker[AsyncSession]) -> float:
    """How long to idle: until the earliest feed is due, but at most MAX_IDLE_S so that new feeds start soon."""
    async with sessions() as session:
        wait = await session.scalar(
            select(func.extract("epoch", func.min(CalendarFeed.next_sync_at) - func.now()))
            .join(Property, Property.id == CalendarFeed.property_id)
            .where(Property.deleted_at.is_(None))
        )
    # The floor keeps a feed that another worker holds right now from turning this loop into a busy wait.
    return MAX_IDLE_S if wait is None else min(max(float(wait), MIN_IDLE_S), MAX_IDLE_S)

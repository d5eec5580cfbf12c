"""The worker's booking job: holds that ran out become EXPIRED, finished stays COMPLETED."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.bookings.lifecycle import complete_finished_stays, expire_stale_holds
from service.rounds import run_rounds
from service.settings import Settings

log = logging.getLogger(__name__)

ROUND_INTERVAL_S = 5.0


async def advance_bookings_once(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    """One round; answers (expired, completed). Each batch commits on its own, with its events."""
    async with sessions.begin() as session:
        expired = await expire_stale_holds(session)
    async with sessions.begin() as session:
        completed = await complete_finished_stays(session)
    return expired, completed


async def advance_bookings(settings: Settings) -> None:
    """Runs until cancelled; a failed round (database away) is logged and retried on the next one."""

    async def one_round(sessions: async_sessionmaker[AsyncSession]) -> float:
        expired, completed = await advance_bookings_once(sessions)
        if expired or completed:
            log.info("bookings advanced", extra={"expired": expired, "completed": completed})
        return ROUND_INTERVAL_S

    await run_rounds(settings, "booking", one_round, after_failure=ROUND_INTERVAL_S)

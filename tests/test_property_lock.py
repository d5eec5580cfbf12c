"""The property lock: contenders in one process wait their turn without polling Redis."""

from __future__ import annotations

import asyncio
import uuid

from redis.asyncio import Redis

from service.app import redis_client
from service.bookings.locks import POLL_INTERVAL_S, PropertyLocks
from service.settings import Settings

CONTENDERS = 20
HOLD_S = 20 * POLL_INTERVAL_S  # how long each holder keeps the lock: 20 polls' worth


async def set_commands(redis: Redis) -> int:
    """How many SET commands the Redis server has run (a lock is taken with SET NX)."""
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_set", {}).get("calls", 0))


async def test_contenders_in_one_process_take_turns_with_one_redis_acquisition_each(settings: Settings) -> None:
    redis = redis_client(settings)
    locks = PropertyLocks(redis, settings.redis_prefix)
    property_id = uuid.uuid4()
    holders: list[int] = []
    overlaps: list[int] = []

    async def contender(index: int) -> bool:
        async with locks.hold(property_id) as acquired:
            if holders:
                overlaps.append(index)
            holders.append(index)
            await asyncio.sleep(HOLD_S)  # the holder's work on the booking
            holders.remove(index)
            return acquired

    try:
        before = await set_commands(redis)
        results = await asyncio.gather(*(contender(i) for i in range(CONTENDERS)))
        after = await set_commands(redis)
    finally:
        await redis.aclose()
    assert results == [True] * CONTENDERS
    assert overlaps == []
    # One SET per acquisition (the count is the server's, so leave room for another client's): waiters polling
    # every 5 ms while each holder works made over a hundred times as many.
    assert after - before <= 2 * CONTENDERS

"""The property lock: contenders in one process wait their turn without polling Redis, and a Redis that stops
answering holds up one booking, not every one."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from redis.asyncio import Redis

from service.app import redis_client
from service.bookings.locks import POLL_INTERVAL_S, REDIS_RETRY_AFTER_S, PropertyLocks
from service.embedded import EmbeddedRedis
from service.settings import Settings
from tests.waiting import eventually

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


@contextmanager
def frozen(server: EmbeddedRedis) -> Iterator[None]:
    """The Redis process stopped (SIGSTOP): connections stay open and nothing answers, as on a lost network."""
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.process.pid, signal.SIGCONT)


async def locked(locks: PropertyLocks) -> bool:
    async with locks.hold(uuid.uuid4()) as acquired:
        return acquired


async def test_a_frozen_redis_holds_up_one_booking_and_the_lock_comes_back_after_it(
    settings: Settings, tmp_path: Path
) -> None:
    server = EmbeddedRedis.start(tmp_path / "redis")
    redis = redis_client(dataclasses.replace(settings, redis_url=server.url))
    locks = PropertyLocks(redis, settings.redis_prefix)
    try:
        assert await locked(locks)
        with frozen(server):
            assert not await locked(locks)  # after the client's socket timeout
            # The next ones go without asking Redis: well within the socket timeout they would otherwise wait.
            async with asyncio.timeout(1):
                assert not await locked(locks)
                assert not await locked(locks)
        await eventually(lambda: locked(locks), "the lock taken again", timeout_s=REDIS_RETRY_AFTER_S + 10)
    finally:
        await redis.aclose()
        server.stop()

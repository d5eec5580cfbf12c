"""The lock per property in front of the exclusion constraint.

It serialises contenders for one property, so the losers see the dates taken and fail fast with 409 instead of
queueing on Postgres row locks. It is only a fast path: when Redis is down, or the wait runs out, booking goes
on without it and the exclusion constraint alone decides. The lock has a timeout, so a crashed holder frees it.
Once Redis has failed a lock command, bookings go without asking it for REDIS_RETRY_AFTER_S: a Redis that stops
answering (a frozen process, a lost network) costs one booking the client's socket timeout, not every booking.

Contenders in one process first queue on an asyncio lock of their own, so only the first of them polls the Redis
lock (held by another process, or free). Without that queue every waiter polled Redis: 200 requests for one stay
made 40,000 Redis commands a second, which took the process's whole CPU and starved the holder.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import uuid
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError

log = logging.getLogger(__name__)

LOCK_TIMEOUT_S = 10.0
WAIT_TIMEOUT_S = 3.0
POLL_INTERVAL_S = 0.005
REDIS_RETRY_AFTER_S = 5.0

# A token only has to tell one holder apart from every other: this process's random id and a counter. redis-py's
# default, a fresh uuid1 per acquisition, cost a twentieth of a booking's CPU.
_PROCESS_TOKEN = secrets.token_hex(8)
_acquisitions = itertools.count()


class _Queue:
    """This process's contenders for one property: the lock they take turns on, and how many hold or wait."""

    __slots__ = ("contenders", "turn")

    def __init__(self) -> None:
        self.turn = asyncio.Lock()
        self.contenders = 0


async def _wait_turn(turn: asyncio.Lock) -> bool:
    """Take `turn`; False if it did not come within WAIT_TIMEOUT_S. A free one is taken without a timer."""
    if not turn.locked():
        await turn.acquire()
        return True
    try:
        async with asyncio.timeout(WAIT_TIMEOUT_S):
            await turn.acquire()
    except TimeoutError:
        return False
    return True


class PropertyLocks:
    """The property locks of one app: its Redis client, its key prefix, and the queues of its contenders. One
    per app (`service.app`, in the app state), so the queues belong to the app's event loop."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._queues: dict[str, _Queue] = {}
        self._ask_redis_from = 0.0  # the event loop's time before which Redis is not asked (it failed)

    @contextlib.asynccontextmanager
    async def hold(self, property_id: uuid.UUID) -> AsyncIterator[bool]:
        """Hold the property's lock for the block; yields whether it was really acquired."""
        name = f"{self._prefix}:lock:property:{property_id}"
        loop = asyncio.get_running_loop()
        started = loop.time()
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = _Queue()
        queue.contenders += 1
        try:
            if not await _wait_turn(queue.turn):
                log.warning("booking without the property lock: its wait ran out")
                yield False
                return
            try:
                lock = await self._acquire(name, WAIT_TIMEOUT_S - (loop.time() - started))
                try:
                    yield lock is not None
                finally:
                    if lock is not None:
                        await self._release(lock)
            finally:
                queue.turn.release()
        finally:
            queue.contenders -= 1
            if queue.contenders == 0:
                del self._queues[name]

    async def _acquire(self, name: str, wait_s: float) -> Lock | None:
        """The Redis lock `name`, waited for up to `wait_s`; None if it did not come, if Redis failed, or if Redis
        failed less than REDIS_RETRY_AFTER_S ago (then it is not asked)."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._ask_redis_from:
            return None
        lock = self._redis.lock(
            name, timeout=LOCK_TIMEOUT_S, sleep=POLL_INTERVAL_S, blocking_timeout=max(wait_s, POLL_INTERVAL_S)
        )
        try:
            acquired = await lock.acquire(token=f"{_PROCESS_TOKEN}:{next(_acquisitions)}")
        except RedisError as exc:
            self._redis_failed(exc)
            return None
        return lock if acquired else None

    async def _release(self, lock: Lock) -> None:
        try:
            await lock.release()
        except LockError:
            pass  # it ran out and may be another's now; the constraint has had the last word anyway
        except RedisError as exc:
            self._redis_failed(exc)

    def _redis_failed(self, exc: RedisError) -> None:
        log.warning(
            "bookings go without the property lock for %s s: Redis unavailable (%s)",
            REDIS_RETRY_AFTER_S,
            type(exc).__name__,
        )
        self._ask_redis_from = asyncio.get_running_loop().time() + REDIS_RETRY_AFTER_S

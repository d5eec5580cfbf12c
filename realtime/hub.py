"""Fan-out inside one API process: one Redis reader for every host with sockets here, however many sockets.

Updates come from Redis, not from this process's memory, so any API process can serve any host. The aggregators
write each host update twice in one script: to the host's own stream (history, for resume) and to the feed of all
hosts' updates (`ingest.streams.host_updates_feed`). The process follows that feed with one blocking XREAD and
hands each entry to the subscribers of its host, so a process holds one Redis connection for live updates
whether it serves ten hosts or ten thousand. Each entry first updates the figures the process holds of its host
(`realtime.figures`), then reaches the host's sockets. Readers never wait on sockets: `Subscriber.offer` only
records the newest update (see `realtime.connection`).

The reader starts with the process's first socket and stops with its last. It is stopped by a flag it checks
after each blocking read, not by cancelling the task: redis-py (8.1 on Python 3.11) can swallow a cancellation
that lands inside a blocked `XREAD` and then wait forever.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, Protocol

from redis.asyncio import Redis

from ingest.streams import host_updates_feed
from realtime.clock import SocketClock
from realtime.figures import DatabaseFigures, SharedFigures
from realtime.updates import START, HostUpdate
from service.settings import Settings

log = logging.getLogger(__name__)

# Below the Redis client's socket timeout, so a blocked XREAD never looks like a dead connection.
READ_BLOCK_MS = 2_000
READ_COUNT = 500
RETRY_AFTER_S = 1.0
CLOSE_WAIT_S = READ_BLOCK_MS / 1000 + RETRY_AFTER_S


class Subscriber(Protocol):
    def offer(self, update: HostUpdate) -> None: ...

    def tick(self, now: float) -> None: ...


class FeedReader:
    """XREAD BLOCK on the feed of all hosts' updates from the last id seen; each entry is folded into the figures
    held of its host, then offered to its subscribers (entries of hosts with no socket here are skipped)."""

    def __init__(
        self,
        redis: Redis,
        settings: Settings,
        subscribers: dict[uuid.UUID, set[Subscriber]],
        figures: SharedFigures,
    ) -> None:
        self.redis = redis
        self.feed = host_updates_feed(settings)
        self.subscribers = subscribers
        self.figures = figures
        self.positioned = asyncio.Event()
        self.running = True
        self.task = asyncio.create_task(self._run(), name="host-updates-reader")

    async def _run(self) -> None:
        last_id = START
        while self.running and not self.positioned.is_set():
            try:
                newest: Any = await self.redis.xrevrange(self.feed, count=1)
                last_id = newest[0][0] if newest else START
                self.positioned.set()
            except Exception:
                log.exception("host updates reader cannot reach Redis")
                await asyncio.sleep(RETRY_AFTER_S)
        while self.running:
            try:
                answer: Any = await self.redis.xread({self.feed: last_id}, count=READ_COUNT, block=READ_BLOCK_MS)
            except Exception:
                log.exception("host updates reader cannot reach Redis")
                await asyncio.sleep(RETRY_AFTER_S)
                continue
            for _, entries in answer or []:
                for stream_id, fields in entries:
                    last_id = stream_id
                    host_id = uuid.UUID(fields[b"host_id"].decode())
                    subscribers = self.subscribers.get(host_id)
                    if subscribers:
                        update = HostUpdate.from_entry(stream_id, fields)
                        self.figures.fold(host_id, update)
                        for subscriber in list(subscribers):
                            subscriber.offer(update)


class Hub:
    """The process's registry of sockets by host, its one feed reader, the figures its sockets share (read with
    `DatabaseFigures`, whose engine `close` disposes) and the clock of their heartbeats and stall deadlines."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self.subscribers: dict[uuid.UUID, set[Subscriber]] = {}
        self.reader: FeedReader | None = None
        self.database = DatabaseFigures(settings)
        self.figures = SharedFigures(self.database)
        self.clock = SocketClock(self._all_subscribers)

    async def join(self, host_id: uuid.UUID, subscriber: Subscriber) -> None:
        """Register the subscriber; on return the reader's position is at or before the feed's end now, so
        every update of the host added from here on reaches the subscriber."""
        self.subscribers.setdefault(host_id, set()).add(subscriber)
        self.clock.start()
        if self.reader is None:
            self.reader = FeedReader(self.redis, self.settings, self.subscribers, self.figures)
        await self.reader.positioned.wait()

    def leave(self, host_id: uuid.UUID, subscriber: Subscriber) -> None:
        subscribers = self.subscribers.get(host_id)
        if subscribers is None:
            return
        subscribers.discard(subscriber)
        if not subscribers:
            del self.subscribers[host_id]
            self.figures.forget(host_id)
        if not self.subscribers:
            self.clock.stop()
        if not self.subscribers and self.reader is not None:
            self.reader.running = False  # it ends within READ_BLOCK_MS
            self.reader = None

    def _all_subscribers(self) -> list[Subscriber]:
        return [subscriber for subscribers in self.subscribers.values() for subscriber in subscribers]

    async def close(self) -> None:
        """Stop the reader (one stuck past its blocking read is cancelled) and close the figures' connections."""
        reader, self.reader = self.reader, None
        self.subscribers.clear()
        if reader is not None:
            reader.running = False
            _, late = await asyncio.wait([reader.task], timeout=CLOSE_WAIT_S)
            for task in late:
                task.cancel()
        await self.clock.close()
        await self.database.close()

"""Fan-out inside one API process: one Redis reader per host with sockets here, however many sockets.

Updates come from the host's Redis stream, not from this process's memory, so any API process can serve any
host. A reader starts with the host's first socket and stops with its last. Readers never wait on sockets:
`Subscriber.offer` only records the newest update (see `realtime.connection`).

A reader is stopped by a flag it checks after each blocking read, not by cancelling the task: redis-py
(8.1 on Python 3.11) can swallow a cancellation that lands inside a blocked `XREAD` and then wait forever.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, Protocol

from redis.asyncio import Redis

from ingest.streams import host_updates_stream
from realtime.updates import START, HostUpdate, latest
from service.settings import Settings

log = logging.getLogger(__name__)

# Below the Redis client's socket timeout, so a blocked XREAD never looks like a dead connection.
READ_BLOCK_MS = 2_000
READ_COUNT = 100
RETRY_AFTER_S = 1.0
CLOSE_WAIT_S = READ_BLOCK_MS / 1000 + RETRY_AFTER_S


class Subscriber(Protocol):
    def offer(self, update: HostUpdate) -> None: ...


class HostReader:
    """XREAD BLOCK on one host's stream from the last id seen, handing each entry to the host's subscribers."""

    def __init__(self, redis: Redis, settings: Settings, host_id: uuid.UUID) -> None:
        self.redis = redis
        self.stream = host_updates_stream(settings, host_id)
        self.settings = settings
        self.host_id = host_id
        self.subscribers: set[Subscriber] = set()
        self.positioned = asyncio.Event()
        self.running = True
        self.task = asyncio.create_task(self._run(), name=f"host-reader-{host_id}")

    async def _run(self) -> None:
        last_id = START
        while self.running and not self.positioned.is_set():
            try:
                newest = await latest(self.redis, self.settings, self.host_id)
                last_id = newest.stream_id if newest else START
                self.positioned.set()
            except Exception:
                log.exception("host reader cannot reach Redis", extra={"host_id": str(self.host_id)})
                await asyncio.sleep(RETRY_AFTER_S)
        while self.running:
            try:
                answer: Any = await self.redis.xread({self.stream: last_id}, count=READ_COUNT, block=READ_BLOCK_MS)
            except Exception:
                log.exception("host reader cannot reach Redis", extra={"host_id": str(self.host_id)})
                await asyncio.sleep(RETRY_AFTER_S)
                continue
            for _, entries in answer or []:
                for stream_id, fields in entries:
                    last_id = stream_id
                    update = HostUpdate.from_entry(stream_id, fields)
                    for subscriber in list(self.subscribers):
                        subscriber.offer(update)


class Hub:
    """The process's registry of host readers and their subscribers."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self.readers: dict[uuid.UUID, HostReader] = {}

    async def join(self, host_id: uuid.UUID, subscriber: Subscriber) -> None:
        """Register the subscriber; on return the reader's position is at or before the stream's end now, so
        every update added from here on reaches the subscriber."""
        reader = self.readers.get(host_id)
        if reader is None:
            reader = self.readers[host_id] = HostReader(self.redis, self.settings, host_id)
        reader.subscribers.add(subscriber)
        await reader.positioned.wait()

    def leave(self, host_id: uuid.UUID, subscriber: Subscriber) -> None:
        reader = self.readers.get(host_id)
        if reader is None:
            return
        reader.subscribers.discard(subscriber)
        if not reader.subscribers:
            del self.readers[host_id]
            reader.running = False  # it ends within READ_BLOCK_MS

    async def close(self) -> None:
        """Stop every reader; one stuck past its blocking read is cancelled."""
        readers = list(self.readers.values())
        self.readers.clear()
        for reader in readers:
            reader.running = False
        if readers:
            _, late = await asyncio.wait([reader.task for reader in readers], timeout=CLOSE_WAIT_S)
            for task in late:
                task.cancel()

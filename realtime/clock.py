"""One clock per API process for every socket's heartbeat and stall deadlines, instead of two timers per frame.

Each update frame used to run under two `asyncio.timeout`s (the push loop's wait for the heartbeat, the send's
stall timeout): with 1,000 dashboards and 500 bookings/s that was 10,000 timers armed and cancelled a second
(each a libuv timer under uvloop), a tenth of the API's CPU in `bench/realtime.py`'s profile, and every update
fans out to a host's sockets in one burst, so the burst was that much longer. A socket now only notes when its
frames start and end; the clock ticks every `TICK_S` and tells each socket the time, so a heartbeat or a stall is
noticed at most `TICK_S` after its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import Protocol

TICK_S = 0.5


class Timed(Protocol):
    def tick(self, now: float) -> None: ...


class SocketClock:
    """Ticks between `start` and `stop`, telling each of `sockets()` (the hub's subscribers) the time; `tick` must
    not block (it runs on the clock's task)."""

    def __init__(self, sockets: Callable[[], Iterable[Timed]]) -> None:
        self.sockets = sockets
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.create_task(self._run(), name="socket-clock")

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None

    async def close(self) -> None:
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(TICK_S)
            now = loop.time()
            for socket in list(self.sockets()):
                socket.tick(now)

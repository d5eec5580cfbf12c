"""A window's figures computed once for every socket of this process that watches it, not once per socket.

When a host's update arrives, each of its sockets needs the figures of its window including that update. Sockets
on the same window ask for the same thing at the same moment, so they share one computation (and the encoded
JSON of its result) per (host, window): N dashboards of a host cost one `host_metrics` per update, not N.

Correctness rests on one number per computation, its `basis`: the highest seq any socket had asked for when it
started. Every seq a socket asks for has already been announced, and the aggregator announces an update only
after committing its rows, so a computation started after that includes every update up to its basis (perhaps
more, never less, as a snapshot's figures in docs/realtime.md). A socket asking for seq S takes the current
computation if its basis is at least S; otherwise it waits for the running one to end and starts (or joins) the
next, whose basis is the highest seq asked for by then. So at most one computation per window runs at a time,
and under load the updates that pile up meanwhile are folded into the next one (coalescing, not queueing).

Computations of all hosts together are limited to `MAX_CONCURRENT` at a time, on an engine of their own with that
many connections, so a burst of updates waits here in order instead of timing out at a pool and never takes
connections from HTTP requests. Like every engine of the app it does not ping a connection at each checkout; a
computation that finds its connection dead is retried once on another. Its statements run in autocommit (no
BEGIN and ROLLBACK): each one still starts after the computation did, so each includes every update up to the
basis. A failed computation (a property not the host's, the database away) is not kept: each socket gets its error.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import msgspec
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from realtime.messages import Window
from service.db import create_engine, session_factory
from service.hosts.metrics import host_metrics
from service.hosts.schemas import HostMetricsOut
from service.settings import Settings

MAX_CONCURRENT = 6
MAX_WINDOWS_PER_HOST = 32  # windows kept per host, least recently used dropped first

WindowKey = tuple[dt.date, dt.date, tuple[uuid.UUID, ...]]
Compute = Callable[[uuid.UUID, Window], Awaitable[HostMetricsOut]]

_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class Figures:
    """A window's metrics, and their JSON encoded once for every frame that carries them."""

    metrics: HostMetricsOut
    encoded: msgspec.Raw


@dataclass
class _WindowState:
    wanted: int = 0  # the highest seq asked for
    basis: int = -1  # what the latest computation includes at least
    task: asyncio.Task[Figures] | None = None


class DatabaseFigures:
    """`host_metrics` on the figures' own engine (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.engine: AsyncEngine = create_engine(settings, pool_size=MAX_CONCURRENT)
        # Read-only statements in autocommit: no BEGIN and ROLLBACK around them (two of five round trips).
        self.sessions = session_factory(self.engine.execution_options(isolation_level="AUTOCOMMIT"))

    async def __call__(self, host_id: uuid.UUID, window: Window) -> HostMetricsOut:
        try:
            return await self._once(host_id, window)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            return await self._once(host_id, window)  # the dead connection was dropped; the next is fresh

    async def _once(self, host_id: uuid.UUID, window: Window) -> HostMetricsOut:
        async with self.sessions() as session:
            return await host_metrics(session, host_id, window.start, window.end, window.property_ids)

    async def close(self) -> None:
        await self.engine.dispose()


@dataclass
class SharedFigures:
    """Per process: the latest computation of each (host, window) that sockets here watch."""

    compute: Compute
    hosts: dict[uuid.UUID, OrderedDict[WindowKey, _WindowState]] = field(default_factory=dict)
    gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MAX_CONCURRENT))

    async def including(self, host_id: uuid.UUID, window: Window, seq: int) -> Figures:
        """The window's figures including at least the host's update `seq`."""
        windows = self.hosts.setdefault(host_id, OrderedDict())
        key = (window.start, window.end, tuple(sorted(window.property_ids)))
        state = windows.get(key)
        if state is None:
            state = windows[key] = _WindowState()
            while len(windows) > MAX_WINDOWS_PER_HOST:
                windows.popitem(last=False)
        windows.move_to_end(key)
        state.wanted = max(state.wanted, seq)
        while True:
            task = state.task
            if task is not None and state.basis >= seq and not _failed(task):
                return await asyncio.shield(task)
            if task is not None and not task.done():
                await asyncio.wait([task])  # an older computation: the next one starts when it ends
                continue
            state.basis = state.wanted
            state.task = asyncio.create_task(self._compute(host_id, window))

    def forget(self, host_id: uuid.UUID) -> None:
        """The host's last socket here has gone."""
        self.hosts.pop(host_id, None)

    async def _compute(self, host_id: uuid.UUID, window: Window) -> Figures:
        async with self.gate:
            metrics = await self.compute(host_id, window)
        return Figures(metrics, msgspec.Raw(_encoder.encode(metrics)))


def _failed(task: asyncio.Task[Figures]) -> bool:
    return task.done() and (task.cancelled() or task.exception() is not None)

"""A window's figures held in memory for every socket of this process that watches it, kept current by adding
each update's differences instead of reading the database again.

Per (host, window) the process holds the window's sums (`WindowSums`) and the host's metrics version they are
at. Both are read in one snapshot (REPEATABLE READ), and a host's versions commit in order (`metric_hosts`), so
sums read at version V include exactly the aggregator transactions up to V. The feed's entry of a transaction
carries its version and its `metric_days` differences (`ingest.aggregator.ANNOUNCE_LUA`); the process's feed
reader hands every entry of the host to `fold` before any socket hears of it. Folding version V + 1 adds the
differences; a version already included is skipped; a version further on means one in between has not been seen
(two aggregators announcing out of order, or an announcement lost in a crash): the sums are read again, as for an
entry marked `reload` (availability or a property changed, which the differences do not express). Entries that
arrive while the sums are being read wait and are folded after.

So N dashboards of a host on one window cost one addition per update and one encoding of the result, not N, and
no query at all. Correctness of "figures including update seq S": each window tracks its `basis`, the highest
seq it includes at least: every entry folded raises it, and a read includes every update announced before it
started (aggregators announce after committing), so a read started for seq S has basis S. A socket asking for a
seq beyond the basis (a snapshot racing the feed reader) gets a fresh read; sockets asking together share it.

Reads of all hosts together are limited to `MAX_CONCURRENT` at a time, on an engine of their own with that many
connections, so a burst of reads waits here instead of timing out at a pool and never takes connections from HTTP
requests; a read that finds its connection dead is retried once on another. A failed read (a property not the
host's, the database away) is not kept: each socket waiting on it gets its error.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import msgspec
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from realtime.messages import Window
from realtime.updates import HostUpdate
from service.db import create_engine, session_factory
from service.hosts.metrics import WindowSums, window_sums
from service.settings import Settings

MAX_CONCURRENT = 6
MAX_WINDOWS_PER_HOST = 32  # windows kept per host, least recently used dropped first

WindowKey = tuple[dt.date, dt.date, tuple[uuid.UUID, ...]]

_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class Figures:
    """A window's metrics encoded once for every frame that carries them."""

    encoded: msgspec.Raw


@dataclass(frozen=True)
class Read:
    """A window's sums and the host's metrics version they are at."""

    sums: WindowSums
    version: int


ReadWindow = Callable[[uuid.UUID, Window], Awaitable[Read]]


class DatabaseFigures:
    """Reads a window's sums with the host's version, in one REPEATABLE READ snapshot, on an engine of its own."""

    def __init__(self, settings: Settings) -> None:
        self.engine: AsyncEngine = create_engine(settings, pool_size=MAX_CONCURRENT)
        self.sessions = session_factory(self.engine.execution_options(isolation_level="REPEATABLE READ"))

    async def __call__(self, host_id: uuid.UUID, window: Window) -> Read:
        try:
            return await self._once(host_id, window)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            return await self._once(host_id, window)  # the dead connection was dropped; the next is fresh

    async def _once(self, host_id: uuid.UUID, window: Window) -> Read:
        async with self.sessions() as session, session.begin():
            version = await session.scalar(
                text("SELECT coalesce((SELECT version FROM metric_hosts WHERE host_id = :host), 0)"),
                {"host": host_id},
            )
            sums = await window_sums(session, host_id, window.start, window.end, window.property_ids)
        return Read(sums, int(version))

    async def close(self) -> None:
        await self.engine.dispose()


@dataclass
class _HeldWindow:
    sums: WindowSums | None = None  # None: not read yet, or to be read again
    version: int = 0
    basis: int = -1  # the highest seq the sums include at least
    wanted: int = 0  # the highest seq asked for
    reading: asyncio.Task[None] | None = None
    arrived: list[HostUpdate] = field(default_factory=list)  # entries seen while reading, folded after
    figures: Figures | None = None  # the sums encoded, until they change

    def fold(self, update: HostUpdate) -> None:
        if self.reading is not None:
            self.arrived.append(update)
            return
        if self.sums is None:
            return
        if update.reload or update.version > self.version + 1:
            self.sums = self.figures = None
            return
        if update.version == self.version + 1:
            self.sums.add(update.days)
            self.version = update.version
            self.figures = None
        self.basis = max(self.basis, update.seq)


@dataclass
class SharedFigures:
    """Per process: the windows that sockets here watch, per host."""

    read: ReadWindow
    hosts: dict[uuid.UUID, OrderedDict[WindowKey, _HeldWindow]] = field(default_factory=dict)
    gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MAX_CONCURRENT))

    def fold(self, host_id: uuid.UUID, update: HostUpdate) -> None:
        """The feed reader's entry of the host: every window held of the host takes it, before any socket asks."""
        for window in self.hosts.get(host_id, {}).values():
            window.fold(update)

    async def including(self, host_id: uuid.UUID, window: Window, seq: int) -> Figures:
        """The window's figures including at least the host's update `seq`."""
        windows = self.hosts.setdefault(host_id, OrderedDict())
        key = (window.start, window.end, tuple(sorted(window.property_ids)))
        held = windows.get(key)
        if held is None:
            held = windows[key] = _HeldWindow()
            while len(windows) > MAX_WINDOWS_PER_HOST:
                windows.popitem(last=False)
        windows.move_to_end(key)
        held.wanted = max(held.wanted, seq)
        while True:
            if held.reading is not None:
                await asyncio.shield(held.reading)  # a failed read raises here, for every socket waiting on it
                continue
            if held.sums is not None and held.basis >= seq:
                if held.figures is None:
                    held.figures = Figures(msgspec.Raw(_encoder.encode(held.sums.metrics())))
                return held.figures
            held.reading = asyncio.create_task(self._read(host_id, window, held, held.wanted))

    def forget(self, host_id: uuid.UUID) -> None:
        """The host's last socket here has gone."""
        self.hosts.pop(host_id, None)

    async def _read(self, host_id: uuid.UUID, window: Window, held: _HeldWindow, basis: int) -> None:
        try:
            async with self.gate:
                read = await self.read(host_id, window)
        except BaseException:
            held.sums = held.figures = None
            held.arrived.clear()
            raise
        finally:
            held.reading = None
        held.sums, held.version, held.basis, held.figures = read.sums, read.version, basis, None
        arrived, held.arrived = held.arrived, []
        for update in arrived:
            held.fold(update)

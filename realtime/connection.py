"""One host's metrics WebSocket after the handshake: snapshot or resume, then ordered updates and heartbeats.

Ordering rests on one watermark, `sent_seq`: the host's last update the client's figures already include. A
snapshot reads the host's current seq *before* computing its figures, so the figures include at least that
update; every update frame has a greater seq than the frame before it, and none is sent twice.

Backpressure: the outbox is a single slot holding the newest pending update (seqs are consecutive, so the
number folded into it is `seq - sent_seq - 1`, reported as `coalesced`). A send that the client does not read
within the stall timeout closes the socket with 4408; nothing is ever buffered without bound. The deadlines
(heartbeat, stall) are kept by the process's `realtime.clock.SocketClock`, not by a timer per frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

import msgspec
from litestar import WebSocket
from litestar.exceptions import WebSocketDisconnect
from redis.asyncio import Redis

from realtime.figures import Figures
from realtime.hub import Hub
from realtime.messages import Error, Heartbeat, ServerMessage, Snapshot, Update, Window, client_decoder, encoder
from realtime.telemetry import close_socket
from realtime.updates import HostUpdate, current_seq, missed_since
from service.errors import Problem
from service.settings import Settings
from service.stays import check_date_window

log = logging.getLogger(__name__)

CLOSE_STALLED = 4408
CLOSE_INTERNAL_ERROR = 1011
CLOSE_GRACE_S = 1.0


class Stalled(Exception):
    """The client did not take a frame within the stall timeout."""


class MetricsConnection:
    """The state of one accepted socket; `offer` is what the host's reader calls (never blocks)."""

    def __init__(
        self,
        socket: WebSocket[Any, Any, Any],
        hub: Hub,
        redis: Redis,
        settings: Settings,
        host_id: uuid.UUID,
        window: Window,
    ) -> None:
        self.socket = socket
        self.hub = hub
        self.redis = redis
        self.settings = settings
        self.host_id = host_id
        self.window = window
        self.sent_seq = 0
        self.pending: HostUpdate | None = None
        self.wake = asyncio.Event()
        self.sending = asyncio.Lock()
        # Checked by the push loop as well as cancelled: redis-py can swallow a cancellation (see realtime.hub).
        self.open = True
        self.loop = asyncio.get_running_loop()
        self.last_frame_at = self.loop.time()
        self.heartbeat_due = False
        # While a send waits for the client: since when, and the task waiting (cancelled by `tick` at the timeout).
        self.send_started_at: float | None = None
        self.sender: asyncio.Task[Any] | None = None
        self.stalled = False

    def offer(self, update: HostUpdate) -> None:
        if update.seq > self.sent_seq and (self.pending is None or update.seq > self.pending.seq):
            self.pending = update
            self.wake.set()

    def tick(self, now: float) -> None:
        """The clock's call: give up a send waiting past the stall timeout, or ask for a heartbeat."""
        if self.send_started_at is not None:
            stalled = now - self.send_started_at >= self.settings.ws_stall_timeout_seconds
            if stalled and self.sender is not None and not self.stalled:
                self.stalled = True
                self.sender.cancel()
        elif now - self.last_frame_at >= self.settings.ws_heartbeat_seconds:
            self.heartbeat_due = True
            self.wake.set()

    async def start(self, since: int | None) -> None:
        """Register with the hub (its clock ticks for every subscriber), then send the snapshot or the missed
        updates. Raises `NotFound` when a property of the window is not the host's (the caller closes with 4403)."""
        await self.hub.join(self.host_id, self)
        async with self.sending:
            if since is not None and (missed := await missed_since(self.redis, self.settings, self.host_id, since)):
                # The figures are read once, after the last missed update, so every missed frame carries them.
                figures = await self._figures(self.window, missed[-1].seq)
                self.sent_seq = since
                for update in missed:
                    self.sent_seq = update.seq
                    await self._send(Update(update.seq, figures.encoded, update.cause))
            elif since is None or missed is None:
                await self._snapshot(self.window)
            else:
                await self._figures(self.window, since)  # nothing missed: only check the window is the host's
                self.sent_seq = since

    async def serve(self) -> None:
        """Push updates and read client messages until the client leaves; close with 4408 if it stalls."""
        tasks = [asyncio.create_task(self._receive()), asyncio.create_task(self._push())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.open = False
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            error = task.exception()
            if isinstance(error, Stalled):
                # A stalled transport may never take the close frame either; returning drops the connection.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(CLOSE_GRACE_S):
                        await close_socket(self.socket, CLOSE_STALLED, "client too slow to read its updates")
            elif error is not None and not isinstance(error, (WebSocketDisconnect, OSError)):
                log.error("metrics socket failed", exc_info=error, extra={"host_id": str(self.host_id)})
                await close_socket(self.socket, CLOSE_INTERNAL_ERROR, "server error")

    def stop(self) -> None:
        self.hub.leave(self.host_id, self)

    async def _receive(self) -> None:
        while True:
            try:
                raw = await self.socket.receive_data("text")
            except WebSocketDisconnect:
                return
            try:
                window = client_decoder.decode(raw).window()
                check_date_window(window.start, window.end)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                await self._send_locked(Error(f"Not a subscribe message: {exc}"))
                continue
            except Problem as exc:
                await self._send_locked(Error(str(exc.detail)))
                continue
            async with self.sending:
                try:
                    await self._snapshot(window)
                except Problem as exc:
                    await self._send(Error(str(exc.detail)))

    async def _push(self) -> None:
        while self.open:
            await self.wake.wait()
            async with self.sending:
                self.wake.clear()
                update, self.pending = self.pending, None
                if update is None or update.seq <= self.sent_seq:
                    if self.heartbeat_due:
                        await self._send(Heartbeat())
                    continue
                try:
                    figures = await self._figures(self.window, update.seq)
                except Problem as exc:
                    await self._send(Error(str(exc.detail)))
                    continue
                coalesced = update.seq - self.sent_seq - 1
                self.sent_seq = update.seq
                await self._send(Update(update.seq, figures.encoded, update.cause, coalesced))

    async def _snapshot(self, window: Window) -> None:
        seq = await current_seq(self.redis, self.settings, self.host_id)
        figures = await self._figures(window, seq)
        self.window, self.sent_seq = window, seq
        await self._send(Snapshot(seq, window, figures.encoded))

    async def _figures(self, window: Window, seq: int) -> Figures:
        """The window's figures including at least update `seq`, shared with this process's other sockets on it."""
        return await self.hub.figures.including(self.host_id, window, seq)

    async def _send_locked(self, message: ServerMessage) -> None:
        async with self.sending:
            await self._send(message)

    async def _send(self, message: ServerMessage) -> None:
        self.send_started_at, self.sender = self.loop.time(), asyncio.current_task(self.loop)
        try:
            await self.socket.send_data(encoder.encode(message).decode(), mode="text")
        except asyncio.CancelledError:
            if not self.stalled or self.sender is None:
                raise
            self.sender.uncancel()
            raise Stalled from None
        finally:
            self.send_started_at = self.sender = None
        self.last_frame_at = self.loop.time()
        self.heartbeat_due = False

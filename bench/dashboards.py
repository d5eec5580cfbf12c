"""Many live host dashboards over real WebSockets, for benches: open them, read every frame, stall some on demand.

Each dashboard is what the page at /dashboard does: trade the host's bearer token for a single-use ticket
(`POST /api/v1/ws/tickets`), open `/ws/metrics?ticket=...&from=...&to=...`, take the snapshot, then read update
frames. Every update frame is recorded with the moment it was read (CLOCK_MONOTONIC, which is one clock for every
process of the machine, so a producer in another process can stamp its commits with `now()` and compare).

Interface (bench/realtime.py and bench/system.py build on it; keep it stable):

    hosts = [HostAccess(host_id, token), ...]          # token: a JWT with the host role
    plan = FleetPlan(base_url, hosts, count=1000, window=Window(start, end), stallable=2)
    async with Fleet(plan) as fleet:                    # returns once every dashboard has its snapshot
        ... commit bookings, recording Commit(booking_id, now()) per host in commit order ...
        fleet.stall()                                   # the stallable dashboards stop reading
        ...
        await fleet.resume(timeout_s)                   # they read again, until closed or timeout_s
    samples, missing = latencies(fleet.records(), commits)   # seconds, one per (dashboard, booking) pair
    percentile_ms(samples, 0.99)

or the same from a child process, so the dashboards' CPU does not share a core with the producer:

    with DashboardsProcess(plan) as dashboards:         # start(): returns once every dashboard has its snapshot
        dashboards.stallable_ports                      # client ports of the stallable ones (find them server-side)
        dashboards.stall(); dashboards.resume(timeout_s)
        records = dashboards.finish()                   # closes them; list[DashboardRecord]

What counts as "a booking's update received" (`latencies`): the aggregator announces one update per host per
batch, naming the last change it applied for that host (`cause`); with coalescing a frame carries only the newest
of the updates it folds in. A host's bookings are committed one after the other (each commit has returned before
the next begins), so the relay publishes and the aggregator applies them in that order, and an update whose cause
is booking k of the host means every booking before k is applied too, and k itself unless the cause is its
`booking.created` (its confirmation may still be in the next batch). So booking j counts as received by a
dashboard at the first update frame whose cause is booking k of the same host with k > j, or k == j and an event
other than `booking.created`. Only bookings committed after the dashboard's snapshot arrived count.

Stallable dashboards get a small receive buffer (SO_RCVBUF), a one-frame client queue and no compression, so that
once they stop reading the buffers between them and the server fill as soon as possible and the server's stall
timeout can run out. Even so it takes about 4 MiB of frames here: the server's kernel send buffer grows to
net.ipv4.tcp_wmem's maximum. Give them a host with many properties (long frames): `stallable_hosts`.
No dashboard sends pings: a stalled one would give up on its own pong, queued behind the unread frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import gc
import math
import multiprocessing
import multiprocessing.connection
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

import httpx
import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from service.cli import run_on_uvloop

STALLED_RCVBUF_BYTES = 4_096
OPEN_CONCURRENCY = 32
OPEN_TIMEOUT_S = 30.0
OPEN_SECONDS_EACH = 0.05  # what opening a fleet may take per dashboard, on a busy machine
FINISH_TIMEOUT_S = 120.0


def now() -> float:
    """Seconds on CLOCK_MONOTONIC: comparable between processes of one machine, unlike a process's own clock."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


@dataclasses.dataclass(frozen=True)
class HostAccess:
    host_id: uuid.UUID
    token: str  # a bearer JWT with the host role


@dataclasses.dataclass(frozen=True)
class Window:
    """The local dates `[start, end)` every dashboard watches (all of its host's properties)."""

    start: dt.date
    end: dt.date


@dataclasses.dataclass(frozen=True)
class FleetPlan:
    """Who opens what: `count` dashboards spread round-robin over `hosts`, the first `stallable` of them able to
    stall (they read normally until told to stop), spread over `stallable_hosts` if given."""

    base_url: str
    hosts: Sequence[HostAccess]
    count: int
    window: Window
    stallable: int = 0
    stallable_hosts: Sequence[HostAccess] = ()


@dataclasses.dataclass(frozen=True)
class Commit:
    """A booking whose confirmation committed at `at` (`now()` right after the commit returned)."""

    booking_id: uuid.UUID
    at: float


@dataclasses.dataclass
class DashboardRecord:
    """What one dashboard saw: its snapshot, every update frame in arrival order, and how it ended."""

    host_id: uuid.UUID
    stallable: bool
    snapshot_seq: int
    snapshot_at: float
    local_port: int = 0  # the client's side of the TCP connection, to find it among the server's
    # (read at, seq, cause event type, cause booking id or "", coalesced)
    updates: list[tuple[float, int, str, str, int]] = dataclasses.field(default_factory=list)
    close_code: int | None = None  # the server's close code, once closed
    close_reason: str = ""
    closed_at: float | None = None
    stalled_at: float | None = None


class _Cause(msgspec.Struct):
    event_type: str
    booking_id: str | None = None


class _Frame(msgspec.Struct):
    """The fields of a server frame the bench needs; the metrics are skipped, not decoded into objects."""

    type: str
    seq: int = 0
    cause: _Cause | None = None
    coalesced: int = 0


_decoder = msgspec.json.Decoder(_Frame)


class Dashboard:
    """One open socket and the task reading it."""

    def __init__(self, socket_: ClientConnection, record: DashboardRecord) -> None:
        self.socket = socket_
        self.record = record
        self.reading = asyncio.Event()
        self.reading.set()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        record = self.record
        try:
            while True:
                if not self.reading.is_set():
                    await self.reading.wait()
                raw = await self.socket.recv(decode=False)
                at = now()
                frame = _decoder.decode(raw)
                if frame.type == "update" and frame.cause is not None:
                    cause = frame.cause
                    record.updates.append((at, frame.seq, cause.event_type, cause.booking_id or "", frame.coalesced))
        except ConnectionClosed as closed:
            record.closed_at = now()
            if closed.rcvd is not None:
                record.close_code, record.close_reason = closed.rcvd.code, closed.rcvd.reason
            else:
                record.close_code = 1006  # no close frame: the connection was dropped


async def _ticket(http: httpx.AsyncClient, host: HostAccess) -> str:
    response = await http.post("/api/v1/ws/tickets", headers={"Authorization": f"Bearer {host.token}"})
    response.raise_for_status()
    ticket: str = response.json()["ticket"]
    return ticket


async def _open_one(http: httpx.AsyncClient, plan: FleetPlan, host: HostAccess, stallable: bool) -> Dashboard:
    ticket = await _ticket(http, host)
    params = {"ticket": ticket, "from": plan.window.start.isoformat(), "to": plan.window.end.isoformat()}
    base = urlsplit(plan.base_url)
    url = f"ws://{base.netloc}/ws/metrics?{urlencode(params)}"
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if stallable:
        # Before connect, so the small window is what the server sees from the handshake on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, STALLED_RCVBUF_BYTES)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (base.hostname or "127.0.0.1", base.port or 80))
        compression = None if stallable else "deflate"  # what browsers offer; see STALLED_RCVBUF_BYTES
        websocket = await connect(
            url, sock=sock, max_queue=1 if stallable else 64, ping_interval=None, compression=compression
        )
    except BaseException:
        sock.close()
        raise
    snapshot = _decoder.decode(await websocket.recv(decode=False))
    if snapshot.type != "snapshot":
        raise RuntimeError(f"expected a snapshot, got {snapshot.type}")
    record = DashboardRecord(host.host_id, stallable, snapshot.seq, now(), local_port=sock.getsockname()[1])
    return Dashboard(websocket, record)


class Fleet:
    """`count` open dashboards; an async context manager that closes them all on the way out."""

    def __init__(self, plan: FleetPlan) -> None:
        self.plan = plan
        self.dashboards: list[Dashboard] = []

    async def __aenter__(self) -> Fleet:
        plan = self.plan
        gate = asyncio.Semaphore(OPEN_CONCURRENCY)
        # Idle keep-alive connections are dropped before the server's own 5 s timeout can close one under a request.
        limits = httpx.Limits(
            max_connections=OPEN_CONCURRENCY, max_keepalive_connections=OPEN_CONCURRENCY, keepalive_expiry=1.0
        )

        async def open_one(http: httpx.AsyncClient, index: int) -> Dashboard:
            stallable = index < plan.stallable
            hosts = plan.stallable_hosts if stallable and plan.stallable_hosts else plan.hosts
            async with gate, asyncio.timeout(OPEN_TIMEOUT_S):
                return await _open_one(http, plan, hosts[index % len(hosts)], stallable)

        async with httpx.AsyncClient(base_url=plan.base_url, limits=limits, timeout=OPEN_TIMEOUT_S) as http:
            opening = [asyncio.create_task(open_one(http, index)) for index in range(plan.count)]
            try:
                self.dashboards = list(await asyncio.gather(*opening))
            except BaseException:
                for task in opening:
                    task.cancel()
                opened = await asyncio.gather(*opening, return_exceptions=True)
                self.dashboards = [one for one in opened if isinstance(one, Dashboard)]
                await self.close()
                raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        for dashboard in self.dashboards:
            dashboard.task.cancel()
        await asyncio.gather(*(dashboard.task for dashboard in self.dashboards), return_exceptions=True)
        await asyncio.gather(
            *(dashboard.socket.close() for dashboard in self.dashboards if dashboard.record.close_code is None),
            return_exceptions=True,
        )

    def stall(self) -> None:
        """The stallable dashboards stop reading (their buffers fill, then the server's sends wait)."""
        at = now()
        for dashboard in self.dashboards:
            if dashboard.record.stallable:
                dashboard.reading.clear()
                dashboard.record.stalled_at = at

    async def resume(self, timeout_s: float = FINISH_TIMEOUT_S) -> None:
        """The stalled dashboards read again until their socket is closed (by the server, which should have
        given up on them); waits at most `timeout_s`."""
        stalled = [dashboard for dashboard in self.dashboards if dashboard.record.stallable]
        for dashboard in stalled:
            dashboard.reading.set()
        if stalled:
            await asyncio.wait([dashboard.task for dashboard in stalled], timeout=timeout_s)

    def records(self) -> list[DashboardRecord]:
        return [dashboard.record for dashboard in self.dashboards]


def latencies(
    records: Sequence[DashboardRecord], commits: Mapping[uuid.UUID, Sequence[Commit]], *, stallable: bool = False
) -> tuple[list[float], int]:
    """Commit -> update-received seconds, one per (dashboard, booking of its host committed after its snapshot),
    by the rule in the module docstring; answers them and how many such pairs never got their update. Only
    the dashboards whose `stallable` flag equals `stallable` are counted."""
    samples: list[float] = []
    missing = 0
    positions = {
        host: {str(commit.booking_id): index for index, commit in enumerate(done)} for host, done in commits.items()
    }
    for record in records:
        if record.stallable != stallable:
            continue
        done = commits.get(record.host_id, ())
        position = positions.get(record.host_id, {})
        first = next((index for index, commit in enumerate(done) if commit.at > record.snapshot_at), len(done))
        covered = first  # bookings [first, covered) have had their update
        for at, _, event_type, booking_id, _ in record.updates:
            index = position.get(booking_id)
            if index is None:
                continue
            upto = index + (0 if event_type == "booking.created" else 1)
            while covered < upto:
                samples.append(at - done[covered].at)
                covered += 1
        missing += max(0, len(done) - covered)
    return samples, missing


def percentile_ms(samples: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile in milliseconds (a latency some sample had), or None without samples."""
    if not samples:
        return None
    ordered = sorted(samples)
    return round(1000 * ordered[max(0, math.ceil(share * len(ordered)) - 1)], 2)


Command = tuple[Literal["stall", "resume", "finish"], float]


def _serve(plan: FleetPlan, pipe: multiprocessing.connection.Connection) -> None:
    """The child's side of `DashboardsProcess`: open the fleet, say so, then obey commands until `finish`."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with Fleet(plan) as fleet:
            # This process's collector would stop every dashboard's reading for as long as a full collection
            # takes (up to 0.4 s seen with 1,000 dashboards recording every frame), time the bench would count as
            # the server's; a bounded run can keep its garbage.
            gc.collect()
            gc.freeze()
            gc.disable()
            pipe.send(("ready", [one.record.local_port for one in fleet.dashboards if one.record.stallable]))
            while True:
                command: Command = await loop.run_in_executor(None, pipe.recv)
                name, timeout_s = command
                if name == "stall":
                    fleet.stall()
                elif name == "resume":
                    await fleet.resume(timeout_s)
                else:
                    break
                pipe.send((name, None))
        pipe.send(("finish", fleet.records()))

    try:
        run_on_uvloop(main())  # the client's loop as light as the server's, so more of the machine is left to it
    except BaseException as exc:
        pipe.send(("failed", repr(exc)))
        raise


class DashboardsProcess:
    """A `Fleet` in a child process (spawned), driven through a pipe; a context manager that ends the child.

    `start` (what entering does) returns once every dashboard has its snapshot; `stop` (what leaving does) ends
    the child whatever state it is in. `stallable_ports` are the client ports of the stallable dashboards."""

    def __init__(self, plan: FleetPlan) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(plan, child), daemon=True)
        self.count = plan.count
        self.stallable_ports: list[int] = []

    def start(self) -> None:
        self.process.start()
        timeout_s = OPEN_TIMEOUT_S + self.count * OPEN_SECONDS_EACH
        self.stallable_ports = self._answer("ready", timeout_s=timeout_s)

    @property
    def pid(self) -> int:
        return self.process.pid or 0

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=10)

    def __enter__(self) -> DashboardsProcess:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def _answer(self, expected: str, timeout_s: float = FINISH_TIMEOUT_S) -> Any:
        if not self.pipe.poll(timeout_s):
            raise TimeoutError(f"the dashboards process did not answer {expected!r} within {timeout_s} s")
        kind, value = self.pipe.recv()
        if kind != expected:
            raise RuntimeError(f"the dashboards process failed: {value}")
        return value

    def stall(self) -> None:
        self.pipe.send(("stall", 0.0))
        self._answer("stall")

    def resume(self, timeout_s: float = FINISH_TIMEOUT_S) -> None:
        """`Fleet.resume` in the child: returns once the stalled dashboards are closed, or after `timeout_s`."""
        self.pipe.send(("resume", timeout_s))
        self._answer("resume", timeout_s + FINISH_TIMEOUT_S)

    def finish(self) -> list[DashboardRecord]:
        """Close the dashboards and answer what each saw."""
        self.pipe.send(("finish", 0.0))
        records: list[DashboardRecord] = self._answer("finish")
        with contextlib.suppress(Exception):
            self.process.join(timeout=10)
        return records

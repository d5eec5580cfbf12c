"""The live metrics WebSocket over real connections: the app served by uvicorn on loopback, the `websockets`
client, Postgres and Redis real, the pipeline driven round by round (tests.pipeline)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import socket
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

from ingest.aggregator import ANNOUNCE_LUA, announce_arguments
from ingest.apply import HostChange
from ingest.streams import host_updates_stream
from realtime.figures import Figures, Read, SharedFigures
from realtime.hub import Hub
from realtime.messages import Window
from realtime.tickets import ticket_key
from realtime.updates import HostUpdate
from service.app import redis_client
from service.errors import NotFound
from service.hosts.metrics import Sums, WindowSums
from service.settings import Settings
from tests.api import Client, assert_problem, book, create_property, days_ahead, signed_up
from tests.db import confirm
from tests.live_server import live_server
from tests.pipeline import pipeline_for

FRAME_TIMEOUT_S = 15
STALL_TEST_TIMEOUT_S = 60
STALL_TEST_PROPERTIES = 100
WINDOW = {"from": days_ahead(10).isoformat(), "to": days_ahead(20).isoformat()}


@pytest.fixture(scope="module")
def live_url(settings: Settings) -> Iterator[str]:
    with live_server(settings) as url:
        yield url


async def new_ticket(client: Client, headers: dict[str, str]) -> str:
    response = await client.post("/api/v1/ws/tickets", headers=headers)
    assert response.status_code == 201, response.text
    ticket: str = response.json()["ticket"]
    return ticket


def socket_url(base: str, **params: Any) -> str:
    return base.replace("http://", "ws://") + "/ws/metrics?" + urlencode(params, doseq=True)


async def next_message(socket: ClientConnection) -> dict[str, Any]:
    """The next frame that is not a heartbeat."""
    async with asyncio.timeout(FRAME_TIMEOUT_S):
        while True:
            message: dict[str, Any] = json.loads(await socket.recv())
            if message["type"] != "heartbeat":
                return message


async def refusal(url: str) -> Close:
    async with connect(url) as socket:
        with pytest.raises(ConnectionClosed) as closed:
            await next_message(socket)
    assert closed.value.rcvd is not None
    return closed.value.rcvd


async def announce(settings: Settings, host_id: uuid.UUID, property_id: uuid.UUID, count: int = 1) -> list[str]:
    """`count` updates of the host written at once by the aggregator's own announce script; answers their causes'
    booking ids."""
    announcements = [
        HostChange(host_id, 0, "booking.confirmed", property_id, str(uuid.uuid4()), 1, False, {}) for _ in range(count)
    ]
    keys, args = announce_arguments(settings, announcements)
    redis = redis_client(settings)
    try:
        await redis.eval(ANNOUNCE_LUA, len(keys), *keys, *args)
    finally:
        await redis.aclose()
    return [str(one.booking_id) for one in announcements]


async def host_with_property(client: Client) -> tuple[uuid.UUID, dict[str, str], dict[str, Any]]:
    user, headers = await signed_up(client, roles=["guest", "host"])
    return uuid.UUID(user["id"]), headers, await create_property(client, headers)


async def confirmed_booking(client: Client, settings: Settings, prop: dict[str, Any], start_in_days: int) -> str:
    """A guest books two nights and pays; the pipeline carries it to the host's update stream."""
    _, guest = await signed_up(client)
    response = await book(client, guest, prop, days_ahead(start_in_days), 2)
    assert response.status_code == 201, response.text
    booking_id: str = response.json()["id"]
    await confirm(settings, booking_id)
    async with pipeline_for(settings) as pipeline:
        await pipeline.drain()
    return booking_id


async def updates_until_confirmed(socket: ClientConnection, after_seq: int, booking_id: str) -> list[dict[str, Any]]:
    """Update frames up to the booking's confirmation; each seq follows the last (counting coalesced ones)."""
    updates: list[dict[str, Any]] = []
    seq = after_seq
    while not updates or updates[-1]["cause"] != {"event_type": "booking.confirmed", "booking_id": booking_id}:
        update = await next_message(socket)
        assert update["type"] == "update"
        assert update["seq"] == seq + 1 + update["coalesced"]
        seq = update["seq"]
        updates.append(update)
    return updates


async def test_tickets_are_for_hosts(client: Client) -> None:
    assert_problem(await client.post("/api/v1/ws/tickets"), 401)
    _, guest = await signed_up(client)
    assert_problem(await client.post("/api/v1/ws/tickets", headers=guest), 403)


async def test_missing_unknown_reused_and_expired_tickets_are_refused_with_4401(
    client: Client, settings: Settings, live_url: str
) -> None:
    _, host, _ = await host_with_property(client)
    assert (await refusal(socket_url(live_url, **WINDOW))).code == 4401
    assert (await refusal(socket_url(live_url, ticket="not-a-ticket", **WINDOW))).code == 4401

    ticket = await new_ticket(client, host)
    async with connect(socket_url(live_url, ticket=ticket, **WINDOW)) as socket:
        assert (await next_message(socket))["type"] == "snapshot"
    reused = await refusal(socket_url(live_url, ticket=ticket, **WINDOW))
    assert (reused.code, reused.reason) == (4401, "missing, expired, used or unknown ticket")

    expired = await new_ticket(client, host)
    redis = redis_client(settings)
    try:
        await redis.delete(ticket_key(settings, expired))  # what the TTL does, without waiting for it
    finally:
        await redis.aclose()
    assert (await refusal(socket_url(live_url, ticket=expired, **WINDOW))).code == 4401


async def test_another_hosts_property_is_refused_with_4403_and_a_bad_window_with_4400(
    client: Client, live_url: str
) -> None:
    _, host, _ = await host_with_property(client)
    _, _, other_prop = await host_with_property(client)
    params = {"ticket": await new_ticket(client, host), "property_id": other_prop["id"], **WINDOW}
    assert (await refusal(socket_url(live_url, **params))).code == 4403
    backwards = {"ticket": await new_ticket(client, host), "from": WINDOW["to"], "to": WINDOW["from"]}
    assert (await refusal(socket_url(live_url, **backwards))).code == 4400


async def test_snapshot_then_ordered_updates_after_a_confirmation(
    client: Client, settings: Settings, live_url: str
) -> None:
    _, host, prop = await host_with_property(client)
    async with connect(socket_url(live_url, ticket=await new_ticket(client, host), **WINDOW)) as socket:
        snapshot = await next_message(socket)
        assert snapshot["type"] == "snapshot"
        assert snapshot["window"] == {**WINDOW, "property_ids": []}
        assert snapshot["metrics"]["total"]["booked_nights"] == 0
        booking_id = await confirmed_booking(client, settings, prop, 12)
        updates = await updates_until_confirmed(socket, snapshot["seq"], booking_id)
    assert updates[-1]["metrics"]["total"]["booked_nights"] == 2
    assert updates[-1]["metrics"]["properties"][0]["property_id"] == prop["id"]
    # The update's figures are the snapshot's plus the confirmation's differences: the same as a fresh read.
    shown = await client.get("/api/v1/hosts/me/metrics", params=WINDOW, headers=host)
    assert updates[-1]["metrics"] == shown.json()


async def test_a_block_after_a_confirmation_updates_available_nights_as_a_fresh_read_would(
    client: Client, settings: Settings, live_url: str
) -> None:
    """A block is not a difference the gateway can add: its update reads the window again."""
    _, host, prop = await host_with_property(client)
    async with connect(socket_url(live_url, ticket=await new_ticket(client, host), **WINDOW)) as socket:
        snapshot = await next_message(socket)
        booking_id = await confirmed_booking(client, settings, prop, 12)
        confirmed = (await updates_until_confirmed(socket, snapshot["seq"], booking_id))[-1]
        start = days_ahead(15)
        block = {"start": start.isoformat(), "end": (start + dt.timedelta(days=3)).isoformat(), "reason": "paint"}
        response = await client.post(f"/api/v1/properties/{prop['id']}/blocks", json=block, headers=host)
        assert response.status_code == 201, response.text
        async with pipeline_for(settings) as pipeline:
            await pipeline.drain()
        update = await next_message(socket)
    assert update["cause"]["event_type"] == "availability.blocked"
    shown = (await client.get("/api/v1/hosts/me/metrics", params=WINDOW, headers=host)).json()
    assert update["metrics"] == shown
    assert shown["total"]["available_nights"] == confirmed["metrics"]["total"]["available_nights"] - 3
    assert shown["total"]["booked_nights"] == 2


async def test_subscribe_changes_the_window_and_bad_messages_get_an_error_frame(
    client: Client, settings: Settings, live_url: str
) -> None:
    _, host, prop = await host_with_property(client)
    await confirmed_booking(client, settings, prop, 12)
    async with connect(socket_url(live_url, ticket=await new_ticket(client, host), **WINDOW)) as socket:
        assert (await next_message(socket))["metrics"]["total"]["booked_nights"] == 2
        await socket.send("not json")
        assert (await next_message(socket))["type"] == "error"
        await socket.send(json.dumps({"type": "subscribe", "from": WINDOW["to"], "to": WINDOW["from"]}))
        assert (await next_message(socket))["type"] == "error"
        later = {"from": days_ahead(30).isoformat(), "to": days_ahead(40).isoformat(), "property_ids": [prop["id"]]}
        await socket.send(json.dumps({"type": "subscribe", **later}))
        snapshot = await next_message(socket)
    assert snapshot["type"] == "snapshot"
    assert snapshot["window"] == later
    assert snapshot["metrics"]["total"]["booked_nights"] == 0


async def test_resume_since_a_kept_seq_sends_exactly_the_missed_updates(
    client: Client, settings: Settings, live_url: str
) -> None:
    host_id, host, prop = await host_with_property(client)
    async with connect(socket_url(live_url, ticket=await new_ticket(client, host), **WINDOW)) as socket:
        seen = (await next_message(socket))["seq"]
    booking_id = await confirmed_booking(client, settings, prop, 12)
    redis = redis_client(settings)
    try:
        kept: Any = await redis.xrange(host_updates_stream(settings, host_id))
    finally:
        await redis.aclose()
    missed = [int(fields[b"seq"]) for _, fields in kept if int(fields[b"seq"]) > seen]
    assert missed
    params = {"ticket": await new_ticket(client, host), "since": seen, **WINDOW}
    async with connect(socket_url(live_url, **params)) as socket:
        updates = await updates_until_confirmed(socket, seen, booking_id)
    assert [update["seq"] for update in updates] == missed
    assert all(update["coalesced"] == 0 for update in updates)
    assert updates[-1]["metrics"]["total"]["booked_nights"] == 2


async def test_resume_since_a_trimmed_seq_gets_a_fresh_snapshot(
    client: Client, settings: Settings, live_url: str
) -> None:
    host_id, host, prop = await host_with_property(client)
    async with connect(socket_url(live_url, ticket=await new_ticket(client, host), **WINDOW)) as socket:
        seen = (await next_message(socket))["seq"]
    await confirmed_booking(client, settings, prop, 12)
    await confirmed_booking(client, settings, prop, 15)
    redis = redis_client(settings)
    try:
        await redis.xtrim(host_updates_stream(settings, host_id), maxlen=1, approximate=False)
        last: Any = await redis.xrevrange(host_updates_stream(settings, host_id), count=1)
    finally:
        await redis.aclose()
    params = {"ticket": await new_ticket(client, host), "since": seen, **WINDOW}
    async with connect(socket_url(live_url, **params)) as socket:
        snapshot = await next_message(socket)
    assert snapshot["type"] == "snapshot"
    assert snapshot["seq"] == int(last[0][1][b"seq"])
    assert snapshot["metrics"]["total"]["booked_nights"] == 4


async def test_an_update_reaches_a_socket_on_another_api_server(
    client: Client, settings: Settings, live_url: str
) -> None:
    _, host, prop = await host_with_property(client)
    async with httpx.AsyncClient(base_url=live_url) as first:
        response = await first.post("/api/v1/ws/tickets", headers=host)
    assert response.status_code == 201, response.text
    with live_server(settings) as second_url:
        async with connect(socket_url(second_url, ticket=response.json()["ticket"], **WINDOW)) as socket:
            snapshot = await next_message(socket)
            booking_id = await confirmed_booking(client, settings, prop, 12)
            updates = await updates_until_confirmed(socket, snapshot["seq"], booking_id)
    assert updates[-1]["metrics"]["total"]["booked_nights"] == 2


async def test_an_idle_socket_gets_heartbeats(client: Client, settings: Settings) -> None:
    _, host, _ = await host_with_property(client)
    with live_server(dataclasses.replace(settings, ws_heartbeat_seconds=1)) as url:
        async with connect(socket_url(url, ticket=await new_ticket(client, host), **WINDOW)) as socket:
            assert (await next_message(socket))["type"] == "snapshot"
            async with asyncio.timeout(FRAME_TIMEOUT_S):
                assert json.loads(await socket.recv()) == {"type": "heartbeat"}


async def test_a_burst_of_updates_reaches_the_client_coalesced_into_one_frame(
    client: Client, settings: Settings, live_url: str
) -> None:
    """The aggregator's own announce script writes 50 updates at once; the socket's one-slot outbox keeps only
    the newest, and the frame says how many it folded in."""
    host_id, host, prop = await host_with_property(client)
    burst = 50
    async with connect(socket_url(live_url, ticket=await new_ticket(client, host), **WINDOW)) as socket:
        snapshot = await next_message(socket)
        causes = await announce(settings, host_id, uuid.UUID(prop["id"]), burst)
        update = await next_message(socket)
    assert update["type"] == "update"
    assert (update["seq"], update["coalesced"]) == (snapshot["seq"] + burst, burst - 1)
    assert update["cause"]["booking_id"] == causes[-1]


async def server_closes(base_url: str, code: int) -> float:
    """How many live metrics sockets the server has closed with `code`, from its Prometheus page."""
    async with httpx.AsyncClient(base_url=base_url) as http:
        page = (await http.get("/metrics")).text
    sample = f'staypulse_ws_metrics_server_closes_total{{code="{code}"}} '
    return next((float(line.removeprefix(sample)) for line in page.splitlines() if line.startswith(sample)), 0.0)


async def frames_until_closed(socket: ClientConnection) -> list[dict[str, Any]]:
    frames = []
    try:
        while True:
            frames.append(await next_message(socket))
    except ConnectionClosed:
        return frames


async def stalling_socket(url: str) -> ClientConnection:
    """A client with a tiny receive buffer that takes one frame into its queue and then stops reading. It sends no
    pings (their answers would wait behind the unread frames and the client would give up first) and takes frames
    uncompressed (compressed, the repetitive JSON would need ten times as many updates to fill the buffers)."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4_096)  # before connect: the window the server sees
    raw.setblocking(False)
    host, port = urlsplit(url).hostname or "", urlsplit(url).port or 80
    await asyncio.get_running_loop().sock_connect(raw, (host, port))
    return await connect(url, sock=raw, max_queue=1, ping_interval=None, compression=None)


async def test_a_stalled_socket_is_closed_with_4408_and_the_hosts_other_socket_keeps_its_order(
    client: Client, settings: Settings
) -> None:
    """One of a host's two sockets stops reading while updates keep coming: once the buffers between server and
    client are full, the server's send waits; after WS_STALL_TIMEOUT_SECONDS it gives the socket up (4408,
    counted at /metrics, since the stalled client never reads the close frame) while the other socket receives
    every update in order and without gap."""
    host_id, host, prop = await host_with_property(client)
    # Long frames (a row per property) fill the buffers in a few dozen updates: the kernel's send buffer alone
    # grows to net.ipv4.tcp_wmem's maximum (4 MiB here).
    for _ in range(STALL_TEST_PROPERTIES - 1):
        await create_property(client, host)
    with live_server(dataclasses.replace(settings, ws_stall_timeout_seconds=1)) as url:
        closed_before = await server_closes(url, 4408)
        stalled = await stalling_socket(socket_url(url, ticket=await new_ticket(client, host), **WINDOW))
        try:
            assert (await next_message(stalled))["type"] == "snapshot"
            async with connect(socket_url(url, ticket=await new_ticket(client, host), **WINDOW)) as reader:
                seq = (await next_message(reader))["seq"]
                async with asyncio.timeout(STALL_TEST_TIMEOUT_S):
                    while await server_closes(url, 4408) == closed_before:
                        for _ in range(20):
                            cause = (await announce(settings, host_id, uuid.UUID(prop["id"])))[-1]
                            update = await next_message(reader)
                            assert (update["seq"], update["coalesced"]) == (seq + 1, 0)
                            assert update["cause"]["booking_id"] == cause
                            seq = update["seq"]
                cause = (await announce(settings, host_id, uuid.UUID(prop["id"])))[-1]
                assert (await next_message(reader))["cause"]["booking_id"] == cause  # still served after the close
            # Reading again, the stalled client gets what was buffered for it, in order, then the connection ends.
            seqs = [frame["seq"] for frame in await frames_until_closed(stalled)]
            assert seqs == sorted(set(seqs))
            assert seqs[-1] < seq
        finally:
            await stalled.close()


class Collected:
    """A hub subscriber that remembers what it was offered and wakes the test on each offer."""

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.arrived = asyncio.Event()

    def offer(self, update: HostUpdate) -> None:
        self.seqs.append(update.seq)
        self.arrived.set()

    def tick(self, now: float) -> None:
        """No deadlines to keep."""


async def test_one_reader_per_process_fans_out_by_host_and_stops_with_the_last_subscriber(settings: Settings) -> None:
    host_id, other_host_id = uuid.uuid4(), uuid.uuid4()
    redis = redis_client(settings)
    hub = Hub(redis, settings)
    first, second, other = Collected(), Collected(), Collected()
    try:
        await hub.join(host_id, first)
        await hub.join(host_id, second)
        await hub.join(other_host_id, other)
        reader = hub.reader
        assert reader is not None
        await announce(settings, host_id, uuid.uuid4())
        async with asyncio.timeout(FRAME_TIMEOUT_S):
            await first.arrived.wait()
            await second.arrived.wait()
        await announce(settings, other_host_id, uuid.uuid4())
        async with asyncio.timeout(FRAME_TIMEOUT_S):
            await other.arrived.wait()
        # The feed is read in order: the other host's update came after, and went to its subscriber only.
        assert first.seqs == second.seqs == other.seqs == [1]
        hub.leave(host_id, first)
        hub.leave(host_id, second)
        assert hub.reader is reader
        assert not reader.task.done()
        hub.leave(other_host_id, other)
        assert hub.reader is None
        async with asyncio.timeout(FRAME_TIMEOUT_S):
            await reader.task
    finally:
        await hub.close()
        await redis.aclose()


DAY = dt.date(2030, 1, 10)
WINDOW_OF_JANUARY = Window(dt.date(2030, 1, 1), dt.date(2030, 1, 31))


def sums_of(property_id: uuid.UUID, nights: int) -> WindowSums:
    """January 2030 of one EUR property with `nights` booked on `DAY`."""
    start, end = WINDOW_OF_JANUARY.start, WINDOW_OF_JANUARY.end
    return WindowSums(
        start, end, {property_id: "EUR"}, {property_id: Sums(booked_nights=nights)}, {DAY: Sums(booked_nights=nights)}
    )


class Reads:
    """A `read` for SharedFigures: counts its calls, finishes each only when the test lets it, and answers the
    sums as the database would at `version` (`nights` booked)."""

    def __init__(self, property_id: uuid.UUID) -> None:
        self.property_id = property_id
        self.calls = 0
        self.called = asyncio.Event()
        self.finish = asyncio.Event()
        self.error: Exception | None = None
        self.nights = 0
        self.version = 0

    async def __call__(self, host_id: uuid.UUID, window: Window) -> Read:
        self.calls += 1
        self.called.set()
        nights, version = self.nights, self.version  # the snapshot is taken when the read starts
        await self.finish.wait()
        if self.error is not None:
            raise self.error
        return Read(sums_of(self.property_id, nights), version)

    async def started(self, calls: int) -> None:
        async with asyncio.timeout(FRAME_TIMEOUT_S):
            while self.calls < calls:
                self.called.clear()
                await self.called.wait()


def booked(property_id: uuid.UUID, seq: int, version: int, nights: int = 1, *, reload: bool = False) -> HostUpdate:
    """The feed's entry of an aggregator transaction that booked `nights` on `DAY`."""
    differences = {str(property_id): {DAY.isoformat(): [nights, 0, 0, 0, 0, 0, 0, 0, 0, 0]}}
    return HostUpdate.from_entry(
        b"0-1",
        {
            b"seq": str(seq).encode(),
            b"event_type": b"booking.confirmed",
            b"version": str(version).encode(),
            b"reload": b"1" if reload else b"0",
            b"days": json.dumps(differences).encode(),
        },
    )


def booked_nights(figures: Figures) -> int:
    nights: int = json.loads(bytes(figures.encoded))["total"]["booked_nights"]
    return nights


async def test_sockets_on_one_window_share_one_read_and_later_updates_are_added_without_reading() -> None:
    host_id, property_id = uuid.uuid4(), uuid.uuid4()
    reads = Reads(property_id)
    shared = SharedFigures(reads)
    reads.nights, reads.version = 3, 7

    # Ten sockets of the host ask for update 5 at once: one read, one encoded result for all.
    first = [asyncio.create_task(shared.including(host_id, WINDOW_OF_JANUARY, 5)) for _ in range(10)]
    await reads.started(1)
    reads.finish.set()
    results = await asyncio.gather(*first)
    assert reads.calls == 1
    assert all(result is results[0] for result in results)
    assert booked_nights(results[0]) == 3
    assert await shared.including(host_id, WINDOW_OF_JANUARY, 5) is results[0]

    # The next version's differences are added; one already included is skipped; neither reads.
    shared.fold(host_id, booked(property_id, seq=6, version=8, nights=2))
    assert booked_nights(await shared.including(host_id, WINDOW_OF_JANUARY, 6)) == 5
    shared.fold(host_id, booked(property_id, seq=7, version=8, nights=2))
    figures = await shared.including(host_id, WINDOW_OF_JANUARY, 7)
    assert booked_nights(figures) == 5
    assert json.loads(bytes(figures.encoded))["days"][DAY.day - 1]["booked_nights"] == 5
    assert reads.calls == 1

    # A socket asking for a seq the feed has not brought yet (a snapshot racing the reader) gets a fresh read.
    reads.nights, reads.version = 6, 9
    assert booked_nights(await shared.including(host_id, WINDOW_OF_JANUARY, 8)) == 6
    assert reads.calls == 2

    # Another window of the same host is read on its own.
    await shared.including(host_id, Window(dt.date(2030, 2, 1), dt.date(2030, 2, 28)), 8)
    assert reads.calls == 3


@pytest.mark.parametrize("entry", ["version_skipped", "reload"])
async def test_a_missing_version_or_a_reload_reads_the_figures_again(entry: str) -> None:
    """Version 10 after 8 means 9 was not seen (announced late, or lost): adding 10 alone would be wrong."""
    host_id, property_id = uuid.uuid4(), uuid.uuid4()
    reads = Reads(property_id)
    reads.finish.set()
    shared = SharedFigures(reads)
    reads.nights, reads.version = 1, 8
    await shared.including(host_id, WINDOW_OF_JANUARY, 1)
    reads.nights, reads.version = 4, 10
    if entry == "version_skipped":
        shared.fold(host_id, booked(property_id, seq=2, version=10, nights=2))
    else:
        shared.fold(host_id, booked(property_id, seq=2, version=9, nights=3, reload=True))
    assert booked_nights(await shared.including(host_id, WINDOW_OF_JANUARY, 2)) == 4
    assert reads.calls == 2
    shared.fold(host_id, booked(property_id, seq=3, version=9, nights=1))  # the late one: already read
    assert booked_nights(await shared.including(host_id, WINDOW_OF_JANUARY, 3)) == 4


async def test_updates_arriving_during_a_read_are_added_after_it_unless_it_included_them() -> None:
    host_id, property_id = uuid.uuid4(), uuid.uuid4()
    reads = Reads(property_id)
    shared = SharedFigures(reads)
    reads.nights, reads.version = 2, 4
    reading = asyncio.create_task(shared.including(host_id, WINDOW_OF_JANUARY, 1))
    await reads.started(1)
    shared.fold(host_id, booked(property_id, seq=2, version=4, nights=2))  # committed before the read's snapshot
    shared.fold(host_id, booked(property_id, seq=3, version=5, nights=1))  # after it
    reads.finish.set()
    assert booked_nights(await reading) == 3
    assert await shared.including(host_id, WINDOW_OF_JANUARY, 3) is await reading
    assert reads.calls == 1


async def test_a_failed_read_is_not_kept() -> None:
    host_id, property_id = uuid.uuid4(), uuid.uuid4()
    reads = Reads(property_id)
    shared = SharedFigures(reads)
    reads.error = NotFound("No property among yours.")
    reads.finish.set()
    with pytest.raises(NotFound):
        await shared.including(host_id, WINDOW_OF_JANUARY, 3)
    reads.error, reads.nights = None, 2
    assert booked_nights(await shared.including(host_id, WINDOW_OF_JANUARY, 3)) == 2
    assert reads.calls == 2

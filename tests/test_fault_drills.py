"""Fault drills (issue 9): a part of the system fails while people book, and afterwards nothing is lost, counted
twice, double-booked or refunded twice.

Each drill runs on a database and Redis prefix of its own (`own_stack`), with real processes where the fault is a
process's (`staypulse worker` killed with SIGKILL) and private servers where the fault is a server's, so the
machine's shared Postgres and Redis are never stopped. Every drill ends with `tests.invariants.assert_end_state`.
docs/drills.md lists them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import random
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode, urlsplit

from aiosmtpd.controller import Controller
from httpx import Response
from litestar.testing import AsyncTestClient
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from ingest.pg import connect
from ingest.streams import EVENTS_GROUP, events_stream, host_seq_key
from migrations import upgrade_to_head
from service.app import create_app, redis_client
from service.demo.card_payment import pay, stripe_client
from service.demo.localstripe import free_port
from service.embedded import EmbeddedPostgres, EmbeddedRedis
from service.settings import Settings
from tests.api import Client, assert_problem, book, create_property, days_ahead, signed_up, signed_up_host
from tests.conftest import Stack
from tests.db import confirm, execute, expire_hold
from tests.inboxes import Mailbox
from tests.invariants import assert_end_state, wait_until_caught_up
from tests.live_server import serving
from tests.payments import checkout, deliver, event, stripe_refunds
from tests.pipeline import pipeline_for, pipeline_jobs
from tests.processes import worker_process
from tests.waiting import eventually


@dataclasses.dataclass
class BookingFlow:
    """Guests booking a host's properties through the API: every booking is answered 201, the same dates asked
    again right after are refused with 409, every second booking is paid (confirmed), every third cancelled."""

    client: Client
    settings: Settings
    host: dict[str, str]
    properties: list[dict[str, Any]]
    guests: list[dict[str, str]]
    made: list[str] = dataclasses.field(default_factory=list)

    @classmethod
    async def start(cls, client: Client, settings: Settings, properties: int = 2) -> BookingFlow:
        host = await signed_up_host(client)
        props = [await create_property(client, host, cancellation_policy="flexible") for _ in range(properties)]
        return cls(client, settings, host, props, [(await signed_up(client))[1] for _ in range(3)])

    async def run(self, bookings: int) -> None:
        for _ in range(bookings):
            index = len(self.made)
            prop, guest = self.properties[index % len(self.properties)], self.guests[index % len(self.guests)]
            start = days_ahead(5 + 3 * (index // len(self.properties)))
            response = await book(self.client, guest, prop, start, 2)
            assert response.status_code == 201, response.text
            booking_id: str = response.json()["id"]
            self.made.append(booking_id)
            assert (await book(self.client, self.guests[-1 - index % 2], prop, start, 1)).status_code == 409
            if index % 2 == 0:
                await confirm(self.settings, booking_id)
            if index % 3 == 0:
                cancelled = await self.client.post(f"/api/v1/bookings/{booking_id}/cancel", headers=guest)
                assert cancelled.status_code == 200, cancelled.text


async def unpublished(settings: Settings) -> int:
    return int((await execute(settings, "SELECT count(*) FROM outbox_events WHERE published_at IS NULL"))[0][0])


async def pending_by_consumer(settings: Settings) -> dict[str, int]:
    redis = redis_client(settings)
    try:
        consumers = await redis.xpending_range(events_stream(settings), EVENTS_GROUP, "-", "+", 10_000)
    finally:
        await redis.aclose()
    counts: dict[str, int] = {}
    for entry in consumers:
        name = cast("bytes", entry["consumer"]).decode()
        counts[name] = counts.get(name, 0) + 1
    return counts


@asynccontextmanager
async def metrics_row_held(settings: Settings, property_id: str) -> AsyncIterator[None]:
    """Hold the lock an aggregator batch takes on a property's metrics row, so a batch with one of its events
    stops half-way: read from the stream, not applied, not acknowledged."""
    connection = await connect(settings)
    try:
        async with connection.transaction():
            await connection.execute(
                "SELECT 1 FROM metric_properties WHERE property_id = $1 FOR UPDATE", uuid.UUID(property_id)
            )
            yield
    finally:
        await connection.close()


async def batch_waiting_on_lock(settings: Settings) -> bool:
    rows = await execute(
        settings,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    return bool(rows[0][0])


async def test_a_worker_process_killed_mid_batch_loses_and_double_counts_nothing(
    own_stack: Stack, tmp_path: Path
) -> None:
    """`staypulse worker` is SIGKILLed while a batch it read is half-way (held up on a row lock the test holds),
    bookings go on with no worker at all, then another worker starts: it takes the dead one's batch over
    (`EVENTS_CLAIM_IDLE_SECONDS`, 1 s here) and the outbox backlog, and every number adds up once."""
    settings = dataclasses.replace(own_stack.settings, events_claim_idle_seconds=1)
    with worker_process(settings, tmp_path / "worker-1.log") as first:
        flow = await BookingFlow.start(own_stack.client, settings)
        await flow.run(4)
        await wait_until_caught_up(settings)
        async with metrics_row_held(settings, flow.properties[0]["id"]):
            await flow.run(4)
            await eventually(lambda: batch_waiting_on_lock(settings), "the worker's batch waiting on the row lock")
            stuck = await eventually(lambda: pending_by_consumer(settings), "events pending with the worker")
            first.kill()
        assert await pending_by_consumer(settings) == stuck  # read, neither applied nor acknowledged
    await flow.run(4)  # no worker at all: the events wait in the outbox
    assert await unpublished(settings) > 0
    with worker_process(settings, tmp_path / "worker-2.log") as second:
        await flow.run(2)
        await wait_until_caught_up(settings)
        second.assert_alive()
    assert not set(stuck) & set(await pending_by_consumer(settings))  # the dead worker's batch was taken over
    await assert_end_state(settings)


async def test_redis_killed_and_restarted_during_bookings(own_stack: Stack, tmp_path: Path) -> None:
    """The one Redis of the API and the worker (a private redis-server with its append-only file) is SIGKILLed
    with events in flight; bookings go on through Postgres alone; it restarts on its data and the worker, never
    restarted, publishes and applies everything that waited."""
    redis_dir = tmp_path / "redis"
    redis_server = EmbeddedRedis.start(redis_dir)
    settings = dataclasses.replace(own_stack.settings, redis_url=redis_server.url)
    try:
        async with AsyncTestClient(create_app(settings), raise_server_exceptions=False) as client:
            with worker_process(settings, tmp_path / "worker.log") as worker:
                flow = await BookingFlow.start(client, settings)
                await flow.run(4)
                await wait_until_caught_up(settings)  # the worker is up and working
                await flow.run(3)  # events in flight while Redis dies
                redis_server.process.kill()
                redis_server.process.wait()
                await flow.run(6)  # through Postgres alone
                assert await unpublished(settings) > 0
                redis_server = EmbeddedRedis.start(redis_dir)
                await flow.run(2)
                await wait_until_caught_up(settings)
                worker.assert_alive()
        await assert_end_state(settings)
    finally:
        redis_server.stop()


async def answers_while_postgres_is_down(client: Client, flow: BookingFlow, settings: Settings) -> list[Response]:
    """What guests, the host, Stripe and a load balancer get while the database is away."""
    prop, guest, host = flow.properties[0], flow.guests[0], flow.host
    booking = flow.made[-1]
    stay = {"check_in": days_ahead(200).isoformat(), "check_out": days_ahead(202).isoformat()}
    window = {"from": days_ahead(0).isoformat(), "to": days_ahead(30).isoformat()}
    webhook = event("payment_intent.succeeded", {"id": "pi_drill", "object": "payment_intent", "status": "succeeded"})
    return [
        await client.get("/health/ready"),
        await client.post("/api/v1/auth/login", json={"email": "ana@example.com", "password": "whatever"}),
        await client.get("/api/v1/users/me", headers=guest),
        await client.get("/api/v1/properties", params={"city": prop["city"], **stay}),
        await client.get(f"/api/v1/properties/{prop['id']}/quote", params=stay),
        await book(client, guest, prop, days_ahead(200), 2),
        await client.get("/api/v1/bookings", headers=guest),
        await client.post(f"/api/v1/bookings/{booking}/cancel", headers=host),
        await client.post(f"/api/v1/bookings/{booking}/checkout", headers=guest),
        await deliver(client, settings, webhook),
        await client.get("/api/v1/hosts/me/metrics", params=window, headers=host),
        await client.post("/api/v1/reports", json={"kind": "earnings", "format": "csv", **window}, headers=host),
    ]


async def test_postgres_restarted_under_the_api_and_the_worker(own_stack: Stack, tmp_path: Path) -> None:
    """The API answers 503 (never 500) while Postgres is down, and both it and the worker carry on, unrestarted,
    once it is back."""
    postgres = EmbeddedPostgres.start(tmp_path / "pgdata")
    try:
        settings = own_stack.settings.with_servers(postgres.url, own_stack.settings.redis_url or "")
        await asyncio.to_thread(upgrade_to_head, postgres.url)
        async with AsyncTestClient(create_app(settings), raise_server_exceptions=False) as client:
            with worker_process(settings, tmp_path / "worker.log") as worker:
                flow = await BookingFlow.start(client, settings)
                await flow.run(4)
                await wait_until_caught_up(settings)  # the worker is up and working
                await flow.run(3)  # events in flight while Postgres stops
                await asyncio.to_thread(postgres.stop)
                ready_check, *answers = await answers_while_postgres_is_down(client, flow, settings)
                assert assert_problem(ready_check, 503)["checks"] == {"postgres": "down", "redis": "ok"}
                for response in answers:
                    assert_problem(response, 503)
                    assert response.headers["retry-after"] == "5", response.request.url
                postgres = await asyncio.to_thread(EmbeddedPostgres.start, tmp_path / "pgdata")
                await eventually(lambda: ready(client), "the API ready again")
                await flow.run(4)
                await wait_until_caught_up(settings)
                worker.assert_alive()
        await assert_end_state(settings)
    finally:
        await asyncio.to_thread(postgres.stop)


async def ready(client: Client) -> bool:
    return (await client.get("/health/ready")).status_code == 200


WS_WINDOW = {"from": days_ahead(0).isoformat(), "to": days_ahead(120).isoformat()}
STALLED_RECEIVE_BUFFER_BYTES = 4096
SERVER_SEND_BUFFER_BYTES = 16384
STALL_TIMEOUT_S = 1
STAYS_STALLED_S = STALL_TIMEOUT_S + 2.0  # the timeout, then the server's one second of grace for the close frame


async def ws_url(client: Client, base_url: str, host: dict[str, str]) -> str:
    response = await client.post("/api/v1/ws/tickets", headers=host)
    assert response.status_code == 201, response.text
    query = urlencode({"ticket": response.json()["ticket"], **WS_WINDOW})
    return base_url.replace("http://", "ws://") + "/ws/metrics?" + query


@dataclasses.dataclass
class Dashboard:
    """A host's dashboard socket and the frames read from it (heartbeats aside)."""

    socket: ClientConnection
    frames: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    async def read_until_closed(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.socket:
                frame = json.loads(raw)
                if frame["type"] != "heartbeat":
                    self.frames.append(frame)

    def seqs_follow_on(self) -> bool:
        """Each update's seq follows the frame before it, counting the updates it says it folded in."""
        return all(
            later["seq"] == earlier["seq"] + 1 + later["coalesced"]
            for earlier, later in itertools.pairwise(self.frames)
        )

    async def shows(self, seq: int) -> bool:
        return bool(self.frames) and self.frames[-1]["seq"] == seq


async def host_seq(settings: Settings, host_id: str) -> int:
    """The host's newest update, as the aggregators counted them."""
    redis = redis_client(settings)
    try:
        return int(await redis.get(host_seq_key(settings, uuid.UUID(host_id))) or 0)
    finally:
        await redis.aclose()


@asynccontextmanager
async def stalled_dashboard(url: str) -> AsyncIterator[ClientConnection]:
    """A dashboard whose reader has stopped: it takes one frame, never asks for another, and its tiny receive
    buffer soon stops the TCP window, so what the server keeps sending for it backs up into the server."""
    parsed = urlsplit(url)
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, STALLED_RECEIVE_BUFFER_BYTES)
    raw.setblocking(False)
    await asyncio.get_running_loop().sock_connect(raw, (parsed.hostname, parsed.port))
    async with ws_connect(url, sock=raw, max_queue=1, compression=None) as stalled:
        yield stalled


async def test_a_stalled_dashboard_holds_up_no_other_and_is_not_buffered_for(own_stack: Stack) -> None:
    """The host has two dashboards open; one stops reading. The other still gets every update in seq order and
    ends on the figures GET /hosts/me/metrics shows; the stalled one is sent less than every update and is cut
    off, rather than the server keeping a backlog for it."""
    settings = dataclasses.replace(own_stack.settings, ws_stall_timeout_seconds=STALL_TIMEOUT_S)
    client = own_stack.client
    app = create_app(settings)
    with serving(app, send_buffer_bytes=SERVER_SEND_BUFFER_BYTES, limit_concurrency=None) as base_url:
        async with pipeline_jobs(settings):
            flow = await BookingFlow.start(client, settings, properties=20)  # 20 rows: frames of several kB
            host_id = (await client.get("/api/v1/users/me", headers=flow.host)).json()["id"]
            await wait_until_caught_up(settings)
            async with (
                stalled_dashboard(await ws_url(client, base_url, flow.host)) as stalled_socket,
                ws_connect(await ws_url(client, base_url, flow.host)) as live_socket,
            ):
                live, stalled = Dashboard(live_socket), Dashboard(stalled_socket)
                reading = asyncio.create_task(live.read_until_closed())
                await flow.run(20)
                await wait_until_caught_up(settings)
                newest = await host_seq(settings, host_id)
                await eventually(lambda: live.shows(newest), f"the live dashboard showing update {newest}")
                shown = await client.get("/api/v1/hosts/me/metrics", params=WS_WINDOW, headers=flow.host)
                # The stalled dashboard stays stalled past the server's stall timeout (nothing outside the server
                # can see it give up), then reads again: what was it sent?
                await asyncio.sleep(STAYS_STALLED_S)
                async with asyncio.timeout(30):
                    await stalled.read_until_closed()
                await live_socket.close()
                await reading
    assert live.frames[0]["type"] == "snapshot"
    assert all(frame["type"] == "update" for frame in live.frames[1:])
    assert live.seqs_follow_on()
    assert live.frames[-1]["metrics"] == shown.json()
    updates_after_snapshot = newest - stalled.frames[0]["seq"]
    assert len(stalled.frames) - 1 < updates_after_snapshot
    assert stalled.seqs_follow_on()
    assert stalled_socket.close_code is not None  # the server ended it; the client never did
    await assert_end_state(settings)


async def deliver_shuffled(client: Client, settings: Settings, payloads: list[bytes], seed: int) -> None:
    """Deliver each event twice, all in one random order, four at a time: Stripe retries and races itself."""
    deliveries = payloads * 2
    random.Random(seed).shuffle(deliveries)
    for start in range(0, len(deliveries), 4):
        batch = deliveries[start : start + 4]
        responses = await asyncio.gather(*(deliver(client, settings, payload) for payload in batch))
        assert [response.status_code for response in responses] == [200] * len(batch), [r.text for r in responses]


async def charge_refunded(settings: Settings, payment_intent_id: str) -> bytes:
    """Stripe's `charge.refunded` event for this payment, listing the refunds Stripe holds for it."""
    refunds = await stripe_client(settings).v1.refunds.list_async(params={"payment_intent": payment_intent_id})
    charge = {
        "id": f"ch_{payment_intent_id}",
        "object": "charge",
        "payment_intent": payment_intent_id,
        "refunds": {"object": "list", "data": [refund.to_dict() for refund in refunds.data]},
    }
    return event("charge.refunded", charge)


async def test_every_stripe_webhook_delivered_twice_and_out_of_order(own_stack: Stack) -> None:
    """Six payment stories, every event of them delivered twice in a random order (and again later), with the
    refunds Stripe reports back: each booking ends where its story says, with one refund at most."""
    settings, client = own_stack.settings, own_stack.client
    host = await signed_up_host(client)
    prop = await create_property(client, host, cancellation_policy="flexible")
    guests = [(await signed_up(client))[1] for _ in range(6)]

    async def hold(guest: dict[str, str], start_in_days: int) -> tuple[str, str]:
        response = await book(client, guest, prop, days_ahead(start_in_days), 2)
        assert response.status_code == 201, response.text
        booking_id: str = response.json()["id"]
        return booking_id, (await checkout(client, guest, booking_id))["payment_intent_id"]

    declined_first, cancelled_later, late_taken, late_free, dropped = [
        await hold(guests[index], 10 + 3 * index) for index in range(5)
    ]
    await expire_hold(settings, late_taken[0])  # the worker's job: the hold ran out before the payment came
    await expire_hold(settings, late_free[0])
    taker = await hold(guests[5], 16)  # late_taken's dates, free again
    dropped_by_guest = await client.post(f"/api/v1/bookings/{dropped[0]}/cancel", headers=guests[4])
    assert dropped_by_guest.status_code == 200, dropped_by_guest.text
    stories = [declined_first, cancelled_later, late_taken, late_free, dropped, taker]
    first_round = [
        event(
            "payment_intent.payment_failed",
            {
                "id": declined_first[1],
                "object": "payment_intent",
                "status": "requires_payment_method",
                "amount": (await checkout(client, guests[0], declined_first[0]))["amount"],
                "currency": "eur",
                "metadata": {"booking_id": declined_first[0]},
                "last_payment_error": {"code": "card_declined", "message": "Your card was declined."},
            },
        )
    ]
    first_round += [event("payment_intent.succeeded", await pay(settings, intent)) for _, intent in stories]
    await deliver_shuffled(client, settings, first_round, seed=9)

    cancelled = await client.post(f"/api/v1/bookings/{cancelled_later[0]}/cancel", headers=guests[1])
    assert cancelled.status_code == 200, cancelled.text
    refunds_reported = [await charge_refunded(settings, intent) for _, intent in (cancelled_later, late_taken, dropped)]
    await deliver_shuffled(client, settings, first_round + refunds_reported, seed=10)

    ids = [booking_id for booking_id, _ in stories]
    statuses = dict(
        await execute(settings, "SELECT id::text, status FROM bookings WHERE id::text = ANY(:ids)", ids=ids)
    )
    assert statuses == {
        declined_first[0]: "CONFIRMED",
        cancelled_later[0]: "CANCELLED",
        late_taken[0]: "CANCELLED",
        late_free[0]: "CONFIRMED",
        dropped[0]: "CANCELLED",
        taker[0]: "CONFIRMED",
    }
    for _, intent in (cancelled_later, late_taken, dropped):
        assert len(await stripe_refunds(settings, intent)) == 1
    async with pipeline_for(settings) as pipeline:
        await pipeline.drain()
    await assert_end_state(settings)


async def email_rows(settings: Settings) -> list[Any]:
    return await execute(
        settings, "SELECT recipient, subject, status, attempts, last_error FROM notifications WHERE channel = 'email'"
    )


async def test_smtp_down_for_a_while(own_stack: Stack, tmp_path: Path) -> None:
    """The mail server is down while bookings are cancelled: the worker keeps the messages and retries; once the
    server is back every message arrives exactly once, and nothing else was held up."""
    port = free_port()
    mailbox = Mailbox(url=f"smtp://127.0.0.1:{port}")  # nothing listens there yet
    settings = dataclasses.replace(own_stack.settings, smtp_url=mailbox.url)
    smtp = Controller(mailbox, hostname="127.0.0.1", port=port)
    try:
        with worker_process(settings, tmp_path / "worker.log") as worker:
            flow = await BookingFlow.start(own_stack.client, settings)
            await flow.run(7)  # three cancellations: six e-mails, to guests and host

            async def all_failed_once() -> bool:
                rows = await email_rows(settings)
                return bool(rows) and all(row[3] >= 1 and row[4] for row in rows)

            await eventually(all_failed_once, "every e-mail tried once and failed")
            smtp.start()
            # Time passing: the retries (30 s after the failure) are due now. Rows a worker round holds (its
            # two-minute lease) are left alone.
            await execute(
                settings,
                "UPDATE notifications SET next_attempt_at = now() WHERE status = 'pending' AND last_error IS NOT NULL "
                "AND next_attempt_at < now() + interval '1 minute'",
            )
            await flow.run(3)  # one more cancellation, with the server up

            async def all_sent() -> bool:
                rows = await email_rows(settings)
                return len(rows) == 8 and all(row[2] == "sent" for row in rows)

            await eventually(all_sent, "every e-mail sent")
            await wait_until_caught_up(settings)
            worker.assert_alive()
    finally:
        if smtp.loop.is_running():
            smtp.stop()
    rows = await email_rows(settings)
    assert Counter((row[0], row[1]) for row in rows) == Counter((m["To"], m["Subject"]) for m in mailbox.messages)
    assert sorted(row[3] for row in rows) == [1, 1] + [2] * 6  # retried once when the server was back
    await assert_end_state(settings)

"""System benchmark: 2 API and 2 worker processes under a mixed workload with live dashboards, then proof that
nothing was lost.

    .venv/bin/python bench/system.py [--seconds 90] [--dashboards 1000] [--hosts 100] [--users 8]
    .venv/bin/python bench/system.py --seconds 20 --dashboards 100          # a quick check that it all works

On the machine's Postgres and Redis (`DATABASE_URL` / `REDIS_URL` override) it creates and migrates a database of
its own, starts localstripe (`--from-scratch`), a real SMTP server (aiosmtpd), two `staypulse api` processes on
loopback ports and two `staypulse worker` processes, all with one Redis key prefix and `STAYPULSE_ENV=production`
(secrets of this run's own; Stripe pointed at localstripe with a webhook secret the bench knows). Hosts and guests
are seeded in SQL and given tokens signed with the run's JWT secret; every property is listed through the API.

Then `--dashboards` host dashboards (bench/dashboards.py, in two child processes, one per API process, spread over
every host) watch while `--users` virtual users, each alternating between both API processes as a load balancer
would, run for `--seconds`: searches, quotes, booking stories (hold, checkout, the card attached and confirmed on
localstripe as Stripe.js does, then the signed `payment_intent.succeeded` webhook), cancellations of confirmed
bookings (refunded on localstripe), report requests and `GET /health/live` (bare HTTP through the same loaded
servers: the baseline). Each virtual user owns a share of the hosts and books only their properties, so one host's
confirmations are committed one after the other, which is what bench/dashboards.py needs to tell which update
carries which booking.

After the load it waits (with `--drain-timeout`) until the outbox is relayed, the aggregators have acknowledged
everything, refunds, notifications and reports are settled; runs `staypulse metrics verify`; checks by SQL and
Redis that every outbox event was relayed, nothing was dead-lettered, every confirmation answered 200 is in the
database and no live stays overlap. It prints per-operation throughput, p50/p99 and statuses, commit-to-dashboard
latency (from the webhook's answer to the first dashboard frame that includes the booking), peak resident memory
(VmHWM) and CPU per process, and finally one JSON line. It exits 1 on any 5xx or transport error, a failed check,
a dashboard update that never arrived, or an ERROR line in a server's log.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import os
import random
import resource
import secrets
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
import httpx
import psutil
from aiosmtpd.controller import Controller
from redis.asyncio import Redis

from bench.dashboards import Commit, DashboardsProcess, FleetPlan, HostAccess, Window, latencies, now, percentile_ms
from bench.pipeline import caught_up
from bench.servers import (
    asyncpg_dsn,
    bench_database,
    child_process,
    free_port,
    remove_redis_keys,
    server_urls,
    staypulse,
)
from ingest.streams import dead_letter_stream, events_stream
from service.auth.tokens import TokenIssuer, jwt_auth
from service.demo.card_payment import pay
from service.settings import Settings
from tests.inboxes import Mailbox
from tests.payments import event, signature

CITIES = tuple(f"Bench-City-{n}" for n in range(10))
ZONES = ("Europe/Lisbon", "Europe/Berlin", "America/New_York", "Asia/Tokyo")
POLICIES = ("flexible", "moderate", "strict")
API_PROCESSES = 2
WORKER_PROCESSES = 2
REQUEST_TIMEOUT_S = 30.0
SETUP_CONCURRENCY = 8
DRAIN_POLL_S = 0.2
CONNECTION_SAMPLE_S = 0.5
VERIFY_TIMEOUT_S = 300.0
# What a virtual user does next, by weight. A story is four steps (hold, checkout, pay, webhook).
WORKLOAD = {"story": 30, "search": 30, "quote": 25, "cancel": 8, "report": 2, "health": 5}
# Operations in the order they are printed; `stripe_pay` is localstripe's time, not StayPulse's.
OPERATIONS = ("search", "quote", "book", "checkout", "stripe_pay", "webhook", "cancel", "report", "health")

USERS_SQL = """
INSERT INTO users (id, email, name, password_hash, roles)
SELECT id, 'bench-' || id || '@bench.example', 'Bench user', 'bench-seeded-no-login', $2::text[]
FROM unnest($1::uuid[]) AS id
"""


@dataclasses.dataclass(frozen=True)
class Options:
    seconds: float
    dashboards: int
    hosts: int
    properties_per_host: int
    users: int
    drain_timeout_s: float
    log_dir: Path | None


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=90.0, help="length of the load (default 90)")
    parser.add_argument("--dashboards", type=int, default=1_000, help="live dashboards during the load (1000)")
    parser.add_argument("--hosts", type=int, default=100, help="hosts, each with their properties (100)")
    parser.add_argument("--properties-per-host", type=int, default=3, help="properties per host (3)")
    parser.add_argument("--users", type=int, default=8, help="virtual users sending requests (8)")
    parser.add_argument("--drain-timeout", type=float, default=180.0, help="seconds to wait for the pipeline (180)")
    parser.add_argument("--logs", type=Path, help="keep every process's log in this folder (default: discarded)")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.dashboards < 0 or args.properties_per_host < 1 or args.drain_timeout <= 0:
        parser.error("need --seconds > 0, --dashboards >= 0, --properties-per-host >= 1, --drain-timeout > 0")
    if not 1 <= args.users <= args.hosts:
        parser.error("need 1 <= --users <= --hosts (each virtual user books the properties of its own hosts)")
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
    return Options(
        args.seconds, args.dashboards, args.hosts, args.properties_per_host, args.users, args.drain_timeout, args.logs
    )


@dataclasses.dataclass(frozen=True)
class Property:
    id: str
    host_id: uuid.UUID


@dataclasses.dataclass(frozen=True)
class World:
    """Who exists when the load starts: hosts with their properties, one guest per virtual user."""

    hosts: list[HostAccess]
    guests: list[str]  # bearer tokens
    properties: list[Property]

    def properties_of(self, host_ids: set[uuid.UUID]) -> list[Property]:
        return [prop for prop in self.properties if prop.host_id in host_ids]


@dataclasses.dataclass
class Operation:
    """Every answer one kind of operation got: latency and status (the exception's name when no HTTP answer came)."""

    latencies_s: list[float] = dataclasses.field(default_factory=list)
    statuses: Counter[str] = dataclasses.field(default_factory=Counter)

    def figures(self, seconds: float) -> dict[str, Any]:
        return {
            "count": len(self.latencies_s),
            "per_s": round(len(self.latencies_s) / seconds, 1),
            "p50_ms": percentile_ms(self.latencies_s, 0.50),
            "p99_ms": percentile_ms(self.latencies_s, 0.99),
            "statuses": dict(sorted(self.statuses.items())),
        }


class Traffic:
    """The load generator's HTTP side: one client per API process, requests spread round-robin over them."""

    def __init__(self, api_urls: Sequence[str], concurrency: int) -> None:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self.clients = [httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S, limits=limits) for url in api_urls]
        self.turn = 0
        self.operations: dict[str, Operation] = {name: Operation() for name in OPERATIONS}
        self.recording = False
        self.transport_errors: list[str] = []  # what they were, for the report

    async def close(self) -> None:
        await asyncio.gather(*(client.aclose() for client in self.clients))

    def record(self, name: str, seconds: float, status: str) -> None:
        if self.recording:
            operation = self.operations[name]
            operation.latencies_s.append(seconds)
            operation.statuses[status] += 1

    async def request(self, name: str, method: str, path: str, **arguments: Any) -> httpx.Response | None:
        """One request to the next API process; None when the connection failed or timed out (recorded)."""
        client = self.clients[self.turn % len(self.clients)]
        self.turn += 1
        started = time.perf_counter()
        try:
            response = await client.request(method, path, **arguments)
        except httpx.TransportError as exc:
            self.record(name, time.perf_counter() - started, type(exc).__name__)
            self.transport_errors.append(f"{method} {client.base_url}{path}: {type(exc).__name__} {exc}")
            return None
        self.record(name, time.perf_counter() - started, str(response.status_code))
        return response


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def seed_people(
    database_url: str, settings: Settings, hosts: int, guests: int
) -> tuple[list[HostAccess], list[str]]:
    """Hosts and guests as rows (registering would spend the setup on password hashing) with tokens signed by the
    run's JWT secret, as a login would issue them."""
    host_ids, guest_ids = [uuid.uuid4() for _ in range(hosts)], [uuid.uuid4() for _ in range(guests)]
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await connection.execute(USERS_SQL, host_ids, ["guest", "host"])
        await connection.execute(USERS_SQL, guest_ids, ["guest"])
    finally:
        await connection.close()
    issuer = TokenIssuer(jwt_auth(settings), settings.jwt_ttl_seconds)
    host_access = [HostAccess(host, issuer.issue(host, ["guest", "host"])) for host in host_ids]
    return host_access, [issuer.issue(guest, ["guest"]) for guest in guest_ids]


async def list_properties(traffic: Traffic, hosts: Sequence[HostAccess], per_host: int) -> list[Property]:
    """Every property through `POST /api/v1/properties`, so each has its `property.created` event."""
    rng = random.Random(1)
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def create(host: HostAccess, number: int) -> Property:
        body = {
            "title": f"Bench flat {number}",
            "city": rng.choice(CITIES),
            "country": "PT",
            "timezone": rng.choice(ZONES),
            "max_guests": rng.randint(2, 6),
            "currency": rng.choice(("EUR", "USD")),
            "nightly_price": rng.randint(60, 300) * 100,
            "cleaning_fee": rng.choice((0, 2_000, 4_000)),
            "max_nights": 14,
            "cancellation_policy": rng.choice(POLICIES),
        }
        async with gate:
            response = await traffic.request(
                "setup", "POST", "/api/v1/properties", json=body, headers=bearer(host.token)
            )
        if response is None or response.status_code != 201:
            failure = response.text if response is not None else traffic.transport_errors[-1]
            raise RuntimeError(f"listing a property failed: {failure}")
        return Property(response.json()["id"], host.host_id)

    return list(await asyncio.gather(*(create(host, n) for host in hosts for n in range(per_host))))


def stay(rng: random.Random) -> tuple[str, str]:
    """A stay of 1-7 nights between one and eleven months ahead: cancellations then get refunds."""
    check_in = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=rng.randint(30, 330))
    return check_in.isoformat(), (check_in + dt.timedelta(days=rng.randint(1, 7))).isoformat()


class VirtualUser:
    """A guest booking the properties of its own hosts (one story at a time), and browsing everything."""

    def __init__(
        self, index: int, traffic: Traffic, world: World, settings: Settings, commits: dict[uuid.UUID, list[Commit]]
    ) -> None:
        self.rng = random.Random(index)
        self.traffic = traffic
        self.world = world
        self.settings = settings
        self.commits = commits
        self.guest = bearer(world.guests[index])
        users = len(world.guests)
        self.own_hosts = world.hosts[index::users]
        self.own_properties = world.properties_of({host.host_id for host in self.own_hosts})
        self.confirmed: list[str] = []

    async def run(self, until: float) -> None:
        kinds, weights = list(WORKLOAD), list(WORKLOAD.values())
        while time.monotonic() < until:
            kind = self.rng.choices(kinds, weights)[0]
            await getattr(self, kind)()

    async def search(self) -> None:
        check_in, check_out = stay(self.rng)
        params = {"city": self.rng.choice(CITIES), "check_in": check_in, "check_out": check_out, "guests": 2}
        await self.traffic.request("search", "GET", "/api/v1/properties", params=params)

    async def quote(self) -> None:
        prop = self.rng.choice(self.world.properties)
        check_in, check_out = stay(self.rng)
        params = {"check_in": check_in, "check_out": check_out, "guests": 2}
        await self.traffic.request("quote", "GET", f"/api/v1/properties/{prop.id}/quote", params=params)

    async def health(self) -> None:
        await self.traffic.request("health", "GET", "/health/live")

    async def report(self) -> None:
        host = self.rng.choice(self.own_hosts)
        today = dt.datetime.now(dt.UTC).date()
        body = {"kind": "earnings", "from": today.replace(day=1).isoformat(), "to": stay(self.rng)[0], "format": "csv"}
        await self.traffic.request("report", "POST", "/api/v1/reports", json=body, headers=bearer(host.token))

    async def cancel(self) -> None:
        if not self.confirmed:
            return
        booking_id = self.confirmed.pop(self.rng.randrange(len(self.confirmed)))
        await self.traffic.request("cancel", "POST", f"/api/v1/bookings/{booking_id}/cancel", headers=self.guest)

    async def story(self) -> None:
        """Hold, checkout, pay on localstripe, Stripe's signed webhook; the booking is then CONFIRMED."""
        prop = self.rng.choice(self.own_properties)
        check_in, check_out = stay(self.rng)
        body = {"property_id": prop.id, "check_in": check_in, "check_out": check_out, "guests": 2}
        held = await self.traffic.request("book", "POST", "/api/v1/bookings", json=body, headers=self.guest)
        if held is None or held.status_code != 201:
            return  # 409: the dates were taken by an earlier story
        booking_id = held.json()["id"]
        checkout = await self.traffic.request("checkout", "POST", f"/api/v1/bookings/{booking_id}/checkout",
                                              headers=self.guest)  # fmt: skip
        if checkout is None or checkout.status_code != 200:
            return
        started = time.perf_counter()
        try:
            intent = await pay(self.settings, checkout.json()["payment_intent_id"])
        except Exception as exc:
            self.traffic.record("stripe_pay", time.perf_counter() - started, type(exc).__name__)
            return
        self.traffic.record("stripe_pay", time.perf_counter() - started, "200")
        payload = event("payment_intent.succeeded", intent)
        headers = {"Stripe-Signature": signature(self.settings.stripe_webhook_secret, payload),
                   "Content-Type": "application/json"}  # fmt: skip
        answer = await self.traffic.request("webhook", "POST", "/api/v1/webhooks/stripe", content=payload,
                                            headers=headers)  # fmt: skip
        if answer is not None and answer.status_code == 200:
            self.commits[prop.host_id].append(Commit(uuid.UUID(booking_id), now()))
            self.confirmed.append(booking_id)


@dataclasses.dataclass
class LoadResult:
    seconds: float
    operations: dict[str, Operation]
    commits: dict[uuid.UUID, list[Commit]]
    peak_connections: int
    transport_errors: list[str]


async def peak_connections(database_url: str, stop: asyncio.Event) -> int:
    """The most connections to the bench's database seen at once (sampled), what `max_connections` must allow."""
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    peak = 0
    try:
        while not stop.is_set():
            seen = await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            peak = max(peak, seen)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), CONNECTION_SAMPLE_S)
    finally:
        await connection.close()
    return peak


async def drive(
    api_urls: Sequence[str], database_url: str, world: World, settings: Settings, options: Options
) -> LoadResult:
    traffic = Traffic(api_urls, options.users)
    commits: dict[uuid.UUID, list[Commit]] = {host.host_id: [] for host in world.hosts}
    users = [VirtualUser(index, traffic, world, settings, commits) for index in range(options.users)]
    stop = asyncio.Event()
    sampler = asyncio.create_task(peak_connections(database_url, stop))
    try:
        traffic.recording = True
        started = time.monotonic()
        await asyncio.gather(*(user.run(started + options.seconds) for user in users))
        # The last stories finish after the deadline: the load lasted until they did.
        seconds = time.monotonic() - started
    finally:
        stop.set()
        await traffic.close()
    return LoadResult(seconds, traffic.operations, commits, await sampler, traffic.transport_errors)


async def setup(api_urls: Sequence[str], database_url: str, settings: Settings, options: Options) -> World:
    hosts, guests = await seed_people(database_url, settings, options.hosts, options.users)
    traffic = Traffic(api_urls, SETUP_CONCURRENCY)
    try:
        properties = await list_properties(traffic, hosts, options.properties_per_host)
    finally:
        await traffic.close()
    return World(hosts, guests, properties)


# Everything that must be settled before the end state is judged, each a count that must reach 0.
UNSETTLED_SQL = {
    "outbox events not relayed": "SELECT count(*) FROM outbox_events WHERE published_at IS NULL",
    "refunds not settled": "SELECT count(*) FROM refunds WHERE status IN ('requested', 'sending')",
    "notifications pending": "SELECT count(*) FROM notifications WHERE status = 'pending'",
    "reports not finished": "SELECT count(*) FROM reports WHERE status IN ('PENDING', 'RUNNING')",
}
# The end state, each a count that must be 0.
BROKEN_SQL = {
    "overlapping live stays": """
        SELECT count(*) FROM bookings a JOIN bookings b ON a.property_id = b.property_id AND a.id < b.id
        WHERE a.status IN ('PENDING', 'CONFIRMED') AND b.status IN ('PENDING', 'CONFIRMED')
          AND daterange(a.check_in, a.check_out) && daterange(b.check_in, b.check_out)""",
    "refunded more than paid": "SELECT count(*) FROM bookings WHERE refunded_amount > total_amount",
    "refunds failed": "SELECT count(*) FROM refunds WHERE status = 'failed'",
    "reports failed": "SELECT count(*) FROM reports WHERE status = 'FAILED'",
    "notifications failed": "SELECT count(*) FROM notifications WHERE status = 'failed'",
}


@dataclasses.dataclass
class EndState:
    drain_s: float
    drained: bool
    unsettled: dict[str, int]
    broken: dict[str, int]
    outbox_events: int
    dead_letters: int
    confirmed_in_database: int


async def drain(settings: Settings, timeout_s: float) -> EndState:
    """Wait until every count of UNSETTLED_SQL is 0 and the aggregators' group has acknowledged the whole events
    stream (or the timeout passes), then read the end state."""
    connection = await asyncpg.connect(asyncpg_dsn(settings.database_url or ""))
    redis = Redis.from_url(settings.redis_url or "")
    started = time.monotonic()
    try:
        while True:
            unsettled = {name: await connection.fetchval(sql) for name, sql in UNSETTLED_SQL.items()}
            consumed = await caught_up(connection, redis, events_stream(settings))
            if (not any(unsettled.values()) and consumed) or time.monotonic() - started > timeout_s:
                break
            await asyncio.sleep(DRAIN_POLL_S)
        drained = not any(unsettled.values()) and consumed
        if not consumed:
            unsettled["events stream not acknowledged"] = 1
        return EndState(
            drain_s=time.monotonic() - started,
            drained=drained,
            unsettled=unsettled,
            broken={name: await connection.fetchval(sql) for name, sql in BROKEN_SQL.items()},
            outbox_events=await connection.fetchval("SELECT count(*) FROM outbox_events"),
            dead_letters=await redis.xlen(dead_letter_stream(settings)),
            confirmed_in_database=await connection.fetchval(
                "SELECT count(*) FROM bookings WHERE confirmed_at IS NOT NULL"
            ),
        )
    finally:
        await redis.aclose()
        await connection.close()


def fleet_plans(api_urls: Sequence[str], hosts: Sequence[HostAccess], count: int, window: Window) -> list[FleetPlan]:
    """`count` dashboards split over the API processes; each process's share starts where the previous one's
    round-robin over the hosts stopped, so a small fleet still covers as many hosts as it can."""
    plans, first = [], 0
    for index, url in enumerate(api_urls):
        share = count // len(api_urls) + (1 if index < count % len(api_urls) else 0)
        rotated = [*hosts[first % len(hosts) :], *hosts[: first % len(hosts)]]
        if share:
            plans.append(FleetPlan(url, rotated, share, window))
        first += share
    return plans


def process_figures(processes: Mapping[str, int]) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """Peak resident memory (MiB, the kernel's VmHWM) and CPU seconds of each process, read while it still runs."""
    rss: dict[str, float | None] = {}
    cpu: dict[str, float | None] = {}
    for name, pid in processes.items():
        try:
            process = psutil.Process(pid)
            with open(f"/proc/{pid}/status") as status:
                hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
            times = process.cpu_times()
            rss[name], cpu[name] = round(hwm / 1024, 1), round(times.user + times.system, 1)
        except (psutil.NoSuchProcess, FileNotFoundError):
            rss[name] = cpu[name] = None
    own = resource.getrusage(resource.RUSAGE_SELF)
    rss["bench (load generator)"] = round(own.ru_maxrss / 1024, 1)
    cpu["bench (load generator)"] = round(own.ru_utime + own.ru_stime, 1)
    return rss, cpu


def error_lines(lines: Sequence[str]) -> list[str]:
    """Log lines at ERROR or above (the service logs JSON with a `level` field)."""
    found = []
    for line in lines:
        with contextlib.suppress(ValueError):
            if json.loads(line).get("level") in ("ERROR", "CRITICAL"):
                found.append(line.rstrip())
    return found


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    server_url, redis_url = server_urls()
    load_before = os.getloadavg()
    prefix = f"staypulse-bench-system-{secrets.token_hex(6)}"
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(bench_database(server_url, "system"))
        stack.callback(lambda: asyncio.run(remove_redis_keys(redis_url, prefix)))
        mailbox = Mailbox()
        smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
        smtp.start()
        stack.callback(smtp.stop)
        mailbox.url = f"smtp://127.0.0.1:{smtp.port}"

        stripe_port = free_port()
        localstripe = stack.enter_context(
            child_process(
                "localstripe",
                # --from-scratch: localstripe otherwise loads /tmp/localstripe.pickle, shared with every other run.
                [str(Path(sys.executable).with_name("localstripe")), "--port", str(stripe_port), "--from-scratch"],
                {},
                ready_url=f"http://sk_test_probe:@127.0.0.1:{stripe_port}/v1/payment_intents",
                log_dir=options.log_dir,
            )
        )
        env = {
            "STAYPULSE_ENV": "production",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "STAYPULSE_REDIS_PREFIX": prefix,
            "STAYPULSE_DATA_DIR": stack.enter_context(tempfile.TemporaryDirectory()),
            "JWT_SECRET": secrets.token_urlsafe(48),
            "STRIPE_API_KEY": f"sk_test_bench_{secrets.token_hex(8)}",
            "STRIPE_PUBLISHABLE_KEY": f"pk_test_bench_{secrets.token_hex(8)}",
            "STRIPE_WEBHOOK_SECRET": f"whsec_bench_{secrets.token_hex(16)}",
            "STRIPE_API_BASE": f"http://127.0.0.1:{stripe_port}",
            "SMTP_URL": mailbox.url,
        }
        settings = Settings.from_env(env)
        apis, api_urls = [], []
        for number in range(1, API_PROCESSES + 1):
            url = f"http://127.0.0.1:{free_port()}"
            command = staypulse("api", "--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1])
            ready = f"{url}/health/ready"
            apis.append(stack.enter_context(child_process(f"api-{number}", command, env, ready, options.log_dir)))
            api_urls.append(url)
        workers = [
            stack.enter_context(child_process(f"worker-{number}", staypulse("worker"), env, log_dir=options.log_dir))
            for number in range(1, WORKER_PROCESSES + 1)
        ]

        print(f"setup: {options.hosts} hosts, {options.hosts * options.properties_per_host} properties ...", flush=True)
        world = asyncio.run(setup(api_urls, database_url, settings, options))
        today = dt.datetime.now(dt.UTC).date()
        window = Window(today - dt.timedelta(days=1), today + dt.timedelta(days=366))
        print(f"opening {options.dashboards} dashboards on {len(api_urls)} API processes ...", flush=True)
        fleets = [
            stack.enter_context(DashboardsProcess(plan))
            for plan in fleet_plans(api_urls, world.hosts, options.dashboards, window)
        ]
        print(f"load: {options.users} virtual users for {options.seconds:.0f} s ...", flush=True)
        load = asyncio.run(drive(api_urls, database_url, world, settings, options))
        load_during = os.getloadavg()
        print(f"drain: waiting up to {options.drain_timeout_s:.0f} s for the pipeline ...", flush=True)
        end = asyncio.run(drain(settings, options.drain_timeout_s))
        verify = subprocess.run(
            staypulse("metrics", "verify"),
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=VERIFY_TIMEOUT_S,
            check=False,
        )
        children = {child.name: child.pid for child in [*apis, *workers, localstripe]}
        children.update({f"dashboards-{n}": fleet.process.pid or 0 for n, fleet in enumerate(fleets, 1)})
        peak_rss, cpu = process_figures(children)
        # Read after verify, so the dashboards had those seconds too for the frames still on their way.
        records = [record for fleet in fleets for record in fleet.finish()]
        server_errors = {child.name: error_lines(child.log_lines()) for child in [*apis, *workers]}
        exited = [child.name for child in [*apis, *workers] if child.process.poll() is not None]

    samples, missing = latencies(records, load.commits)
    confirmations = sum(len(done) for done in load.commits.values())
    operations = {name: op.figures(load.seconds) for name, op in load.operations.items() if op.latencies_s}
    statuses = Counter(status for op in load.operations.values() for status in op.statuses.elements())
    failures_5xx = sum(count for status, count in statuses.items() if status.startswith("5"))
    # A status that is not a number: no HTTP answer (httpx's exception name; for stripe_pay, the SDK's).
    transport = sum(
        count
        for name, op in load.operations.items()
        if name != "stripe_pay"
        for status, count in op.statuses.items()
        if not status.isdigit()
    )
    stripe_failures = sum(count for status, count in load.operations["stripe_pay"].statuses.items() if status != "200")
    logged_errors = sum(len(lines) for lines in server_errors.values())

    print(f"\n{'operation':12} {'count':>7} {'per s':>7} {'p50 ms':>8} {'p99 ms':>8}  statuses")
    for name, figures in operations.items():
        print(
            f"{name:12} {figures['count']:7d} {figures['per_s']:7.1f} {figures['p50_ms']:8.1f} "
            f"{figures['p99_ms']:8.1f}  {figures['statuses']}"
        )
    p50, p99 = percentile_ms(samples, 0.50), percentile_ms(samples, 0.99)
    print(
        f"\ncommit to dashboard: p50 {p50} ms, p99 {p99} ms over {len(samples)} (dashboard, booking) pairs; "
        f"{missing} never arrived; {sum(1 for r in records if r.close_code is not None)} dashboards closed early"
    )
    print(f"drain {end.drain_s:.1f} s; unsettled {end.unsettled}; end state {end.broken}")
    verdict = (verify.stdout + verify.stderr.strip().rsplit("\n", 1)[-1]).strip()
    print(f"staypulse metrics verify: exit {verify.returncode}: {verdict[-2000:]}")
    for line in load.transport_errors[:10]:
        print(f"no answer: {line}")
    for name, lines in server_errors.items():
        for line in lines[:5]:
            print(f"{name} logged: {line[:500]}")
    print(f"peak RSS MiB {peak_rss}\nCPU s {cpu}\nPostgres connections at most {load.peak_connections}")

    checks = {
        "no_5xx": failures_5xx == 0,
        "no_transport_errors": transport == 0,
        "drained": end.drained,
        "metrics_verify": verify.returncode == 0,
        "outbox_all_relayed": end.unsettled["outbox events not relayed"] == 0,
        "no_dead_letters": end.dead_letters == 0,
        "end_state": not any(end.broken.values()),
        "confirmations_in_database": end.confirmed_in_database == confirmations,
        "dashboard_updates_all_arrived": missing == 0,
        "no_error_logs": logged_errors == 0,
        "processes_alive": not exited,
    }
    figures = {
        "bench": "system",
        "seconds": round(load.seconds, 1),
        "api_processes": API_PROCESSES,
        "worker_processes": WORKER_PROCESSES,
        "users": options.users,
        "hosts": options.hosts,
        "properties": len(world.properties),
        "dashboards": len(records),
        "requests_per_s": round(sum(len(op.latencies_s) for op in load.operations.values()) / load.seconds, 1),
        "operations": operations,
        "confirmations": confirmations,
        "commit_to_dashboard_p50_ms": p50,
        "commit_to_dashboard_p99_ms": p99,
        "commit_to_dashboard_samples": len(samples),
        "dashboard_updates_missing": missing,
        "postgres_connections_peak": load.peak_connections,
        "errors_5xx": failures_5xx,
        "transport_errors": transport,
        "stripe_pay_failures": stripe_failures,
        "error_log_lines": logged_errors,
        "outbox_events": end.outbox_events,
        "outbox_unpublished": end.unsettled["outbox events not relayed"],
        "dead_letters": end.dead_letters,
        "metrics_verify_exit": verify.returncode,
        "drain_s": round(end.drain_s, 1),
        "emails_received": len(mailbox.messages),
        "peak_rss_mib": peak_rss,
        "cpu_s": cpu,
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after_load": [round(x, 2) for x in load_during],
        "checks": checks,
    }
    print(json.dumps(figures))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

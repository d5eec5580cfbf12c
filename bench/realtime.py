"""Live metrics benchmark: 1,000 dashboards on one API process while 500 confirmed bookings/s are committed.

    .venv/bin/python bench/realtime.py [--hosts 100] [--dashboards 1000] [--rate 500] [--seconds 20] [--idle 10000]

Against the machine's Postgres and Redis (`DATABASE_URL` / `REDIS_URL`), in a database and a Redis key prefix of
its own, both removed at the end. One `staypulse api` child process serves the WebSockets; the outbox relay and
the aggregator run in one worker process (`bench.pipeline.Workers`, as `staypulse worker` runs them); the
dashboards run in a child process of their own (`bench.dashboards`).

Bookings do not come through HTTP (500/s of the booking and payment path would need more than this machine):
each is committed in the two transactions the app commits, with the app's own payload functions and statements'
shape, so the same outbox events flow: the booking row with `booking.created` (as `lifecycle.insert_created`),
then the confirmation with its payment row, `booking.confirmed` and `payment.succeeded` (as a successful Stripe
webhook does; the notification row is left out, since no notification job runs). A host's bookings are committed
one after the other on one connection; `--connections` connections share the hosts.

Figures (the rule for "a booking's update received" is in bench/dashboards.py):
- `p50_ms`, `p99_ms`: commit of the confirmation -> the update frame covering it read by a dashboard, over every
  (dashboard, booking of its host) pair of the measured phase, with `--stalled` dashboards connected and reading.
- `stalled_client_p99_ms`: the same for the next phase, in which the stalled dashboards stop reading; they must be
  closed with 4408 about `--stall-timeout` seconds after the server's sends start waiting on them.
- `rss_mib_10k_idle`: the API process's resident memory with `--idle` idle dashboards open.
Baselines of the same run: `pipeline_p50_ms`/`pipeline_p99_ms`, commit -> the host's update entry in Redis read by
a bare XREAD reader (what the gateway starts from), `relay_p50_ms`/`relay_p99_ms`, commit -> the confirmation on
the events stream (the relay's part of that), `redis_p50_ms`/`redis_p99_ms`, raw XADD -> XREADGROUP at the same
rate, and `rss_mib_0`, the API process with no socket open.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import resource
import secrets
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
import httpx
import psutil
from redis.asyncio import Redis

from bench.dashboards import (
    Commit,
    DashboardRecord,
    DashboardsProcess,
    Fleet,
    FleetPlan,
    HostAccess,
    Window,
    latencies,
    now,
    percentile_ms,
)
from bench.pipeline import Workers, baseline_latency, insert
from bench.servers import (
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    api_server,
    asyncpg_dsn,
    bench_database,
    remove_redis_keys,
)
from ingest.streams import decode, events_stream, host_updates_stream
from service.auth.tokens import jwt_auth
from service.bookings.lifecycle import booking_event_fields, pending_booking
from service.bookings.models import Booking, BookingStatus
from service.pricing import PricingRules, quote_stay
from service.properties.models import Property
from service.properties.service import property_event_fields
from service.settings import Settings

NIGHTLY_PRICE = 12_000
CLEANING_FEE = 3_000
TIMEZONE = "Europe/Lisbon"
WINDOW_DAYS = 30
OPEN_FILES = 65_536
AGGREGATED_TIMEOUT_S = 60.0
RSS_SAMPLE_EVERY_S = 0.5
CLOSE_MARGIN_S = 5.0
OVERRUN = 2.0
ANALYZE_EVERY_S = 5.0
MIB = 1024 * 1024

BOOKING_COLUMNS = [column.key for column in Booking.__table__.columns]
# `lifecycle.insert_created`: the booking and its `booking.created` event in one statement.
CREATE_SQL = f"""
WITH inserted_row AS (
    INSERT INTO bookings ({", ".join(BOOKING_COLUMNS)})
    VALUES ({", ".join(f"${n}" for n in range(1, len(BOOKING_COLUMNS) + 1))}) RETURNING host_id, property_id
)
INSERT INTO outbox_events (event_id, type, v, host_id, property_id, payload)
SELECT ${len(BOOKING_COLUMNS) + 1}, 'booking.created', 1, host_id, property_id, ${len(BOOKING_COLUMNS) + 2}::jsonb
FROM inserted_row
"""  # noqa: S608 - column names from the model
# A successful payment (`settlement._payment_succeeded`): PENDING -> CONFIRMED, the payment row succeeded, then
# `booking.confirmed` and `payment.succeeded`, in one transaction.
CONFIRM_SQL = """
WITH confirmed AS (
    UPDATE bookings SET status = 'CONFIRMED', confirmed_at = $2, updated_at = $2
    WHERE id = $1 AND status = 'PENDING' RETURNING id, host_id, property_id, currency, total_amount
), payment AS (
    INSERT INTO payments (id, booking_id, payment_intent_id, client_secret, amount, currency, status, succeeded_at)
    SELECT $3, id, $4::text, $4::text || '_secret', total_amount, currency, 'succeeded', $2 FROM confirmed
    RETURNING booking_id
)
INSERT INTO outbox_events (event_id, type, v, host_id, property_id, payload)
SELECT event.id, event.type, 1, confirmed.host_id, confirmed.property_id, event.payload::jsonb
FROM unnest($5::uuid[], $6::text[], $7::text[]) WITH ORDINALITY AS event(id, type, payload, n)
CROSS JOIN confirmed JOIN payment ON payment.booking_id = confirmed.id
ORDER BY event.n
"""


@dataclasses.dataclass(frozen=True)
class Options:
    hosts: int
    properties_per_host: int
    stalled_host_properties: int
    dashboards: int
    rate: float
    warmup_s: float
    seconds: float
    stalled: int
    stall_timeout_s: int
    stall_seconds: float
    idle: int
    idle_processes: int
    connections: int
    server_url: str
    redis_url: str


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=100, help="hosts; the dashboards are spread over them")
    parser.add_argument("--properties-per-host", type=int, default=4)
    parser.add_argument(
        "--stalled-host-properties", type=int, default=100, help="properties of the stalled dashboards' host"
    )
    parser.add_argument("--dashboards", type=int, default=1_000, help="dashboards reading during the load")
    parser.add_argument("--rate", type=float, default=500.0, help="confirmed bookings per second")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before measuring")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds of load")
    parser.add_argument("--stalled", type=int, default=2, help="dashboards that stop reading in the stall phase")
    parser.add_argument("--stall-timeout", type=int, default=3, help="the server's WS_STALL_TIMEOUT_SECONDS")
    parser.add_argument("--stall-seconds", type=float, default=30.0, help="seconds of load with stalled clients")
    parser.add_argument("--idle", type=int, default=10_000, help="idle dashboards for the memory figure (0: skip)")
    parser.add_argument("--idle-processes", type=int, default=2, help="client processes opening the idle ones")
    parser.add_argument("--connections", type=int, default=4, help="Postgres connections committing bookings")
    args = parser.parse_args(argv)
    if args.hosts < 1 or args.dashboards < args.hosts or args.rate <= 0 or args.connections < 1:
        parser.error("need --hosts >= 1, --dashboards >= --hosts, --rate > 0, --connections >= 1")
    return Options(
        hosts=args.hosts,
        properties_per_host=args.properties_per_host,
        stalled_host_properties=args.stalled_host_properties,
        dashboards=args.dashboards,
        rate=args.rate,
        warmup_s=args.warmup,
        seconds=args.seconds,
        stalled=args.stalled,
        stall_timeout_s=args.stall_timeout,
        stall_seconds=args.stall_seconds,
        idle=args.idle,
        idle_processes=max(1, args.idle_processes),
        connections=args.connections,
        server_url=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
        redis_url=os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL,
    )


@dataclasses.dataclass
class Host:
    host_id: uuid.UUID
    properties: list[uuid.UUID]
    nights_booked: dict[uuid.UUID, int] = dataclasses.field(default_factory=dict)
    next_property: int = 0


@dataclasses.dataclass
class World:
    hosts: list[Host]  # every host gets bookings; the last one is the stalled dashboards' host
    guest_id: uuid.UUID
    today: dt.date
    host_fee_bps: int
    guest_service_fee_bps: int

    def next_booking(self, host: Host) -> Booking:
        """A one-night stay at the host's next property (round robin), on the first night it has free, priced by
        the app's own quote function, as `create_booking` builds it."""
        property_id = host.properties[host.next_property % len(host.properties)]
        host.next_property += 1
        night = host.nights_booked.get(property_id, 0)
        host.nights_booked[property_id] = night + 1
        check_in = self.today + dt.timedelta(days=1 + night)
        check_out = check_in + dt.timedelta(days=1)
        rules = PricingRules(NIGHTLY_PRICE, CLEANING_FEE, 0)
        quote = quote_stay(rules, check_in, check_out, self.guest_service_fee_bps)
        return pending_booking(
            property_id=property_id,
            guest_id=self.guest_id,
            host_id=host.host_id,
            check_in=check_in,
            check_out=check_out,
            guests=2,
            currency="EUR",
            quote=quote,
            at=dt.datetime.now(dt.UTC),
            hold=dt.timedelta(minutes=15),
        )


async def seed(database_url: str, options: Options) -> World:
    """Hosts with properties, created as the app creates them (rows plus `property.created` events), and one
    guest who makes every booking. One more host, with many properties (long frames, so that their buffers fill
    quickly), is the stalled dashboards' host; it gets its share of bookings like the others."""
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        sizes = [options.properties_per_host] * options.hosts + [options.stalled_host_properties]
        hosts = [Host(uuid.uuid4(), [uuid.uuid4() for _ in range(size)]) for size in sizes]
        guest_id = uuid.uuid4()
        users = [(host.host_id, f"host-{host.host_id}@bench.example", ["guest", "host"]) for host in hosts]
        users.append((guest_id, f"guest-{guest_id}@bench.example", ["guest"]))
        await connection.executemany(
            "INSERT INTO users (id, email, name, password_hash, roles) VALUES ($1, $2, 'Bench', 'no-login', $3)", users
        )
        props = [
            Property(
                id=property_id, host_id=host.host_id, title="Bench flat", description="", city="Lisbon", country="PT",
                timezone=TIMEZONE, max_guests=4, currency="EUR", nightly_price=NIGHTLY_PRICE,
                cleaning_fee=CLEANING_FEE, tax_rate_bps=0, min_nights=1, max_nights=30,
                cancellation_policy="moderate", calendar_token=secrets.token_hex(16), deleted_at=None,
            )
            for host in hosts
            for property_id in host.properties
        ]  # fmt: skip
        columns = ["id", "host_id", "title", "description", "city", "country", "timezone", "max_guests", "currency",
                   "nightly_price", "cleaning_fee", "tax_rate_bps", "min_nights", "max_nights", "cancellation_policy",
                   "calendar_token"]  # fmt: skip
        records = [tuple(getattr(prop, column) for column in columns) for prop in props]
        await connection.copy_records_to_table("properties", columns=columns, records=records)
        events = [
            (uuid.uuid4(), "property.created", prop.host_id, prop.id, json.dumps(property_event_fields(prop)))
            for prop in props
        ]
        await insert(connection, events)
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    settings = Settings.from_env({})
    today = dt.datetime.now(dt.UTC).date()
    return World(hosts, guest_id, today, settings.host_fee_bps, settings.guest_service_fee_bps)


async def wait_aggregated(database_url: str, properties: int) -> None:
    """Until the worker has folded every `property.created` into `metric_properties`."""
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        deadline = time.monotonic() + AGGREGATED_TIMEOUT_S
        while await connection.fetchval("SELECT count(*) FROM metric_properties") < properties:
            if time.monotonic() > deadline:
                raise RuntimeError("the worker did not aggregate the seeded properties in time")
            await asyncio.sleep(0.2)
    finally:
        await connection.close()


class Producer:
    """Commits confirmed bookings at a steady rate, each host's one after the other on one connection."""

    def __init__(self, world: World, connections: list[asyncpg.Connection], rate: float) -> None:
        self.world = world
        self.connections = connections
        self.rate = rate
        self.issued = 0

    async def run(self, seconds: float) -> dict[uuid.UUID, list[Commit]]:
        """Commit `rate * seconds` bookings on schedule; answers each host's commits in order. A producer that
        falls behind (a busy machine) stops at twice the planned time: the bench stays bounded, and the achieved
        rate is reported."""
        total = int(seconds * self.rate)
        first = self.issued
        self.issued += total
        commits: dict[uuid.UUID, list[Commit]] = {host.host_id: [] for host in self.world.hosts}
        started = time.perf_counter()
        hosts = self.world.hosts

        async def lane(index: int, connection: asyncpg.Connection) -> None:
            for number in range(first, first + total):
                host = hosts[number % len(hosts)]
                if (number % len(hosts)) % len(self.connections) != index:
                    continue
                if time.perf_counter() > started + OVERRUN * seconds:
                    return
                await asyncio.sleep(max(0.0, started + (number - first) / self.rate - time.perf_counter()))
                booking = self.world.next_booking(host)
                await commit_confirmed(connection, booking)
                commits[host.host_id].append(Commit(booking.id, now()))

        await asyncio.gather(*(lane(index, connection) for index, connection in enumerate(self.connections)))
        return commits


async def commit_confirmed(connection: asyncpg.Connection, booking: Booking) -> None:
    """The two commits of a booking paid at once: created (PENDING), then confirmed by its payment."""
    created = json.dumps(booking_event_fields(booking))
    row = [getattr(booking, column) for column in BOOKING_COLUMNS]
    await connection.execute(CREATE_SQL, *row, uuid.uuid4(), created)
    booking.status = BookingStatus.CONFIRMED
    booking.confirmed_at = booking.updated_at = dt.datetime.now(dt.UTC)
    confirmed = booking_event_fields(booking)
    intent = f"pi_bench_{booking.id.hex}"
    succeeded = {**confirmed, "payment_intent_id": intent, "amount": booking.total_amount}
    await connection.execute(
        CONFIRM_SQL,
        booking.id,
        booking.confirmed_at,
        uuid.uuid4(),
        intent,
        [uuid.uuid4(), uuid.uuid4()],
        ["booking.confirmed", "payment.succeeded"],
        [json.dumps(confirmed), json.dumps(succeeded)],
    )


class UpdateReader:
    """The baseline reader: XREAD on every host's update stream, as the gateway's host readers do, but with no
    figures to compute and no socket to write; records each entry like a dashboard's update frame."""

    def __init__(self, redis: Redis, settings: Settings, hosts: list[Host]) -> None:
        self.redis = redis
        self.streams = {host_updates_stream(settings, host.host_id): host.host_id for host in hosts}
        self.records = {host.host_id: DashboardRecord(host.host_id, False, 0, now()) for host in hosts}
        self.running = True

    async def run(self) -> None:
        last: dict[Any, Any] = {}
        for stream in self.streams:
            newest: Any = await self.redis.xrevrange(stream, count=1)
            last[stream] = newest[0][0] if newest else "0-0"
        for record in self.records.values():
            record.snapshot_at = now()
        while self.running:
            answer: Any = await self.redis.xread(last, block=500)
            at = now()
            for stream, entries in answer or []:
                name = stream.decode()
                record = self.records[self.streams[name]]
                for entry_id, fields in entries:
                    last[name] = entry_id
                    record.updates.append(
                        (at, int(fields[b"seq"]), fields[b"event_type"].decode(), fields[b"booking_id"].decode(), 0)
                    )


class RelayedReader:
    """Commit -> the booking's confirmation on the events stream (XREAD, outside the consumer group): the relay's
    share of the pipeline, the stage before the aggregator."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.stream = events_stream(settings)
        self.arrivals: dict[str, float] = {}
        self.running = True

    async def run(self) -> None:
        last: Any = "$"
        while self.running:
            answer: Any = await self.redis.xread({self.stream: last}, block=500)
            at = now()
            for _, entries in answer or []:
                for entry_id, fields in entries:
                    last = entry_id
                    message = decode(fields[b"e"])
                    if message.type == "booking.confirmed":
                        self.arrivals[str(message.payload["booking_id"])] = at

    def latencies(self, commits: dict[uuid.UUID, list[Commit]]) -> list[float]:
        return [
            self.arrivals[str(commit.booking_id)] - commit.at
            for done in commits.values()
            for commit in done
            if str(commit.booking_id) in self.arrivals
        ]


async def analyze_periodically(dsn: str) -> None:
    """ANALYZE every `ANALYZE_EVERY_S` during the run, as autovacuum does on a production server.

    The development machine's Postgres runs without autovacuum. Analyzed once after seeding (no booking yet),
    `bookings` kept the statistics of an empty table, and the plans the producer's connections cached while it
    was nearly empty (its prepared statements, the foreign-key checks) kept their sequential scans for the whole
    run: sampled in `pg_stat_user_tables` near the end of the load, ~265 scans and ~600,000 rows read a second,
    the top of Postgres's profile, CPU taken from the system under test. ANALYZE also makes Postgres plan them
    again."""
    connection = await asyncpg.connect(dsn)
    try:
        while True:
            await asyncio.sleep(ANALYZE_EVERY_S)
            await connection.execute("ANALYZE bookings, payments")
    finally:
        await connection.close()


class MemoryWatch:
    """Samples a process's resident memory in the background; answers the peak."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self.running = True

    def rss(self) -> int:
        return int(self.process.memory_info().rss)

    async def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.rss())
            await asyncio.sleep(RSS_SAMPLE_EVERY_S)


class CpuShare:
    """CPU used by each process of the run between `start` and `stop`, in % of one core: on a shared 2-core
    machine it tells whether the API was the bottleneck or was waiting for a core."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.processes = {role: psutil.Process(pid) for role, pid in pids.items()}
        self.started: dict[str, float] = {}
        self.at = 0.0

    def _used(self, role: str) -> float:
        times = self.processes[role].cpu_times()
        return float(times.user + times.system)

    def start(self) -> None:
        self.at = time.perf_counter()
        self.started = {role: self._used(role) for role in self.processes}

    def stop(self) -> dict[str, float]:
        elapsed = time.perf_counter() - self.at
        return {role: round(100 * (self._used(role) - used) / elapsed) for role, used in self.started.items()}


def api_pid() -> int:
    for child in psutil.Process().children():
        if "service.cli" in child.cmdline() and "api" in child.cmdline():
            return int(child.pid)
    raise RuntimeError("no staypulse api child process")


def raise_open_files_limit() -> int:
    """Sockets are files: 10,000 connections need more than the usual 1,024; children inherit the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = OPEN_FILES if hard == resource.RLIM_INFINITY else min(OPEN_FILES, hard)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def split(commits: dict[uuid.UUID, list[Commit]], after: float) -> dict[uuid.UUID, list[Commit]]:
    return {host: [commit for commit in done if commit.at >= after] for host, done in commits.items()}


def host_tokens(settings: Settings, world: World) -> list[HostAccess]:
    """Bearer tokens for each host, signed as the API signs them (same settings)."""
    auth = jwt_auth(settings)
    return [
        HostAccess(host.host_id, auth.create_token(identifier=str(host.host_id), token_extras={"roles": ["host"]}))
        for host in world.hosts
    ]


async def stall_closes(http: httpx.AsyncClient) -> int:
    """How many sockets the API has given up on as stalled (4408), from its Prometheus page."""
    sample = 'staypulse_ws_metrics_server_closes_total{code="4408"} '
    page = (await http.get("/metrics")).text
    return int(next((float(line.removeprefix(sample)) for line in page.splitlines() if line.startswith(sample)), 0))


async def watch_stall_closes(base_url: str, expected: int, since: float, closed_after: list[float]) -> None:
    """Record how long after `since` the server gave up on each of `expected` stalled sockets. A stalled client
    never reads its close frame, so the server's own count is the evidence."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        before = await stall_closes(http)
        while len(closed_after) < expected:
            closed = await stall_closes(http) - before
            closed_after.extend([round(now() - since, 2)] * (closed - len(closed_after)))
            await asyncio.sleep(0.2)


async def measure(
    options: Options, settings: Settings, world: World, base_url: str, pid: int, worker_pid: int
) -> dict[str, Any]:
    """Every phase against the running API and worker; answers the figures."""
    window = Window(world.today, world.today + dt.timedelta(days=WINDOW_DAYS))
    *hosts, stalled_host = host_tokens(settings, world)
    memory = MemoryWatch(pid)
    redis = Redis.from_url(options.redis_url)
    dsn = asyncpg_dsn(settings.database_url or "")
    connections = [await asyncpg.connect(dsn) for _ in range(options.connections)]
    background = [asyncio.create_task(analyze_periodically(dsn))]
    try:
        # The API with no socket open, once a few dashboards have come and gone (imports and pools warmed up).
        async with Fleet(FleetPlan(base_url, hosts, min(10, len(hosts)), window)):
            pass
        await asyncio.sleep(1)
        rss_0 = memory.rss()

        producer = Producer(world, connections, options.rate)
        reader = UpdateReader(redis, settings, world.hosts)
        relayed = RelayedReader(redis, settings)
        background += [asyncio.create_task(reader.run()), asyncio.create_task(relayed.run())]
        plan = FleetPlan(base_url, hosts, options.dashboards + options.stalled, window, options.stalled, [stalled_host])
        print(f"opening {plan.count} dashboards over {len(hosts)} hosts ...", flush=True)
        dashboards = DashboardsProcess(plan)
        await asyncio.to_thread(dashboards.start)
        try:
            background.append(asyncio.create_task(memory.run()))
            print(f"{options.rate:.0f} confirmed bookings/s for {options.warmup_s + options.seconds:.0f} s ...")
            measured_from = now() + options.warmup_s
            cpu = CpuShare({"api": pid, "worker": worker_pid, "dashboards": dashboards.pid, "bench": os.getpid()})
            cpu.start()
            reading = split(await producer.run(options.warmup_s + options.seconds), measured_from)
            cpu_percent = cpu.stop()
            rss_reading = memory.peak
            memory.peak = 0
            await asyncio.to_thread(dashboards.stall)
            stalled_at = now()
            closed_after: list[float] = []
            closing = asyncio.create_task(watch_stall_closes(base_url, options.stalled, stalled_at, closed_after))
            background.append(closing)
            print(f"{options.stalled} dashboards stalled; {options.stall_seconds:.0f} s more ...", flush=True)
            stalling = await producer.run(options.stall_seconds)
            rss_stalled = memory.peak
            # The server should have dropped them by now; give it the stall timeout once more, then read again
            # (what each one reads last says how it was closed).
            await asyncio.wait([closing], timeout=options.stall_timeout_s + CLOSE_MARGIN_S)
            await asyncio.to_thread(dashboards.resume, CLOSE_MARGIN_S)
            records = await asyncio.to_thread(dashboards.finish)
        finally:
            dashboards.stop()
        reader.running = relayed.running = False
        samples, missing = latencies(records, reading)
        stalled_samples, stalled_missing = latencies(records, stalling)
        print(
            f"commit -> dashboard p50 {percentile_ms(samples, 0.5)} ms, p99 {percentile_ms(samples, 0.99)} ms; "
            f"with stalled dashboards p99 {percentile_ms(stalled_samples, 0.99)} ms",
            flush=True,
        )

        idle_rss = None
        if options.idle:
            idle_rss = await idle_memory(options, hosts, window, base_url, memory)

        print("raw Redis baseline ...", flush=True)
        redis_baseline = await baseline_latency(redis, settings.redis_prefix, min(options.seconds, 10.0))
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        for connection in connections:
            await connection.close()
        await redis.aclose()

    pipeline, pipeline_missing = latencies(list(reader.records.values()), reading)
    relay = relayed.latencies(reading)
    stalled = [record for record in records if record.stallable]
    bookings = sum(len(done) for done in reading.values())
    moments = [commit.at for done in reading.values() for commit in done]
    achieved_per_s = bookings / (max(moments) - min(moments)) if bookings > 1 else 0.0
    return {
        "bench": "realtime",
        "p50_ms": percentile_ms(samples, 0.50),
        "p99_ms": percentile_ms(samples, 0.99),
        "stalled_client_p99_ms": percentile_ms(stalled_samples, 0.99),
        "stalled_client_p50_ms": percentile_ms(stalled_samples, 0.50),
        "rss_mib_10k_idle": round(idle_rss / MIB, 1) if idle_rss else None,
        "pipeline_p50_ms": percentile_ms(pipeline, 0.50),
        "pipeline_p99_ms": percentile_ms(pipeline, 0.99),
        "relay_p50_ms": percentile_ms(relay, 0.50),
        "relay_p99_ms": percentile_ms(relay, 0.99),
        "redis_p50_ms": percentile_ms(redis_baseline, 0.50),
        "redis_p99_ms": percentile_ms(redis_baseline, 0.99),
        "rss_mib_0": round(rss_0 / MIB, 1),
        "rss_mib_reading_peak": round(rss_reading / MIB, 1),
        "rss_mib_stalled_peak": round(rss_stalled / MIB, 1),
        "samples": len(samples),
        "missing": missing + stalled_missing,
        "pipeline_missing": pipeline_missing,
        "stalled_close_codes": sorted(record.close_code or 0 for record in stalled),
        "stalled_closed_by_server_after_s": closed_after,
        "bookings_measured": bookings,
        "bookings_per_s": round(achieved_per_s, 1),  # below `rate` when the producer could not keep up
        "cpu_percent": cpu_percent,  # of one core, per process, during the load with every dashboard reading
        "hosts": options.hosts,
        "properties_per_host": options.properties_per_host,
        "stalled_host_properties": options.stalled_host_properties,
        "dashboards": options.dashboards,
        "dashboards_per_host": round(options.dashboards / options.hosts, 1),
        "stalled": options.stalled,
        "stall_timeout_s": options.stall_timeout_s,
        "idle": options.idle,
        "rate": options.rate,
        "seconds": options.seconds,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "target_p50_ms": 10,
        "target_p99_ms": 50,
        "must_p99_ms": 100,
        "target_rss_mib_10k_idle": 1024,
    }


async def idle_memory(
    options: Options, hosts: list[HostAccess], window: Window, base_url: str, memory: MemoryWatch
) -> int:
    """The API's resident memory with `--idle` dashboards open and nothing happening, opened by several client
    processes at once."""
    share = [options.idle // options.idle_processes] * options.idle_processes
    share[0] += options.idle - sum(share)
    processes = [DashboardsProcess(FleetPlan(base_url, hosts, count, window)) for count in share]
    print(f"opening {options.idle} idle dashboards from {len(processes)} processes ...", flush=True)
    try:
        await asyncio.gather(*(asyncio.to_thread(process.start) for process in processes))
        await asyncio.sleep(2)
        rss = memory.rss()
        for process in processes:
            await asyncio.to_thread(process.finish)
        return rss
    finally:
        for process in processes:
            process.stop()


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    raise_open_files_limit()
    prefix = f"staypulse-bench-realtime-{secrets.token_hex(6)}"
    with bench_database(options.server_url, "realtime") as database_url:
        settings = dataclasses.replace(
            Settings.from_env({}).with_servers(database_url, options.redis_url), redis_prefix=prefix
        )
        world = asyncio.run(seed(database_url, options))
        workers = Workers(settings, aggregators=1, split=False)
        workers.start()
        try:
            properties = options.hosts * options.properties_per_host + options.stalled_host_properties
            asyncio.run(wait_aggregated(database_url, properties))
            server_env = {
                "STAYPULSE_REDIS_PREFIX": prefix,
                "WS_STALL_TIMEOUT_SECONDS": str(options.stall_timeout_s),
                "LOG_LEVEL": "WARNING",
            }
            with api_server(database_url, options.redis_url, server_env) as base_url:
                worker_pid = workers.processes[0].pid or 0
                figures = asyncio.run(measure(options, settings, world, base_url, api_pid(), worker_pid))
        finally:
            workers.stop()
            asyncio.run(remove_redis_keys(options.redis_url, prefix))
    f = figures
    lines = [
        f"commit -> dashboard      p50 {f['p50_ms']} ms  p99 {f['p99_ms']} ms",
        f"  with stalled clients  p50 {f['stalled_client_p50_ms']} ms  p99 {f['stalled_client_p99_ms']} ms",
        f"commit -> Redis update  p50 {f['pipeline_p50_ms']} ms  p99 {f['pipeline_p99_ms']} ms (bare)",
        f"  of which to the relay p50 {f['relay_p50_ms']} ms  p99 {f['relay_p99_ms']} ms",
        f"raw XADD -> XREADGROUP  p50 {f['redis_p50_ms']} ms  p99 {f['redis_p99_ms']} ms",
        f"API RSS {f['rss_mib_0']} MiB with no socket, {f['rss_mib_10k_idle']} MiB with {options.idle} idle",
    ]
    print("\n".join(lines))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())

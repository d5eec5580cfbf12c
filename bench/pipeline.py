"""Benchmark of the event pipeline: outbox -> relay -> Redis stream -> aggregator -> metrics tables.

Runs against the machine's Postgres and Redis (DATABASE_URL / REDIS_URL, default 127.0.0.1:5432 and :6379) in a
fresh database of its own and a Redis key prefix of its own, both removed at the end. The relay and the
aggregator run as the worker runs them (`relay_outbox`, `aggregate_events`), each in its own process.

Figures, each beside a baseline from the same Redis in the same run:
- sustained events/s: a producer writes booking events into the outbox as fast as it can while relay and
  aggregator keep up; baseline: raw pipelined XADD, then XREADGROUP + XACK of as many messages of the same size.
- replay: 100,000 events waiting in the outbox, then relay and aggregator start; events/s until all are applied.
- latency at a steady 500 events/s: from a booking event's commit to its host's update message, which the
  aggregator sends after committing the metrics rows (so an upper bound of commit -> metrics row); baseline:
  XADD -> XREADGROUP latency of the same Redis at the same rate.

    .venv/bin/python bench/pipeline.py [--sustained 50000] [--replay 100000] [--latency-seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import multiprocessing
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
from redis.asyncio import Redis

from bench.servers import bench_database, remove_redis_keys, server_urls
from ingest.aggregator import aggregate_events
from ingest.relay import relay_outbox
from ingest.streams import EVENTS_GROUP, OutboxMessage, encode, events_stream, host_updates_stream
from service.cli import run_on_uvloop
from service.garbage import freeze_startup_objects
from service.settings import Settings

ZONES = ("Europe/Lisbon", "America/New_York", "Asia/Tokyo", "Australia/Sydney")
HOSTS = 50
PROPERTIES_PER_HOST = 4
INSERT_BATCH = 250
LATENCY_RATE_PER_S = 500

INSERT = (
    "INSERT INTO outbox_events (event_id, type, v, host_id, property_id, payload) "
    "SELECT e, t, 1, h, p, pl::jsonb FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::text[]) "
    "AS x(e, t, h, p, pl)"
)

Row = tuple[uuid.UUID, str, uuid.UUID, uuid.UUID, str]


@dataclasses.dataclass
class World:
    """Synthetic hosts and properties; booking events are generated against them."""

    properties: list[tuple[uuid.UUID, uuid.UUID, str]]  # (host_id, property_id, timezone)
    rng: random.Random

    def property_rows(self) -> list[Row]:
        return [
            (
                uuid.uuid4(),
                "property.created",
                host,
                prop,
                json.dumps({"timezone": zone, "currency": "EUR", "active": True}),
            )
            for host, prop, zone in self.properties
        ]

    def booking_rows(self, host: uuid.UUID | None = None) -> list[Row]:
        """One booking's events: created, confirmed, and for one in five a guest cancellation with a refund."""
        choices = [entry for entry in self.properties if host is None or entry[0] == host]
        host_id, prop, _ = self.rng.choice(choices)
        nights = self.rng.randint(1, 7)
        check_in = dt.date(2027, 1, 1) + dt.timedelta(days=self.rng.randint(0, 365))
        prices = [self.rng.randint(8_000, 25_000) for _ in range(nights)]
        now = dt.datetime.now(dt.UTC)
        fields: dict[str, Any] = {
            "booking_id": str(uuid.uuid4()),
            "guest_id": str(uuid.uuid4()),
            "status": "PENDING",
            "check_in": check_in.isoformat(),
            "check_out": (check_in + dt.timedelta(days=nights)).isoformat(),
            "nights": nights,
            "guests": 2,
            "currency": "EUR",
            "nightly_prices": prices,
            "accommodation_amount": sum(prices),
            "discount_amount": 0,
            "cleaning_fee": 3_000,
            "service_fee": sum(prices) // 10,
            "taxes": 0,
            "total_amount": sum(prices) + 3_000 + sum(prices) // 10,
            "refunded_amount": 0,
            "created_at": now.isoformat(),
            "confirmed_at": None,
            "cancelled_at": None,
            "cancelled_by": None,
        }
        rows = [(uuid.uuid4(), "booking.created", host_id, prop, json.dumps(fields))]
        fields = {**fields, "status": "CONFIRMED", "confirmed_at": now.isoformat()}
        rows.append((uuid.uuid4(), "booking.confirmed", host_id, prop, json.dumps(fields)))
        if self.rng.random() < 0.2:
            fields = {**fields, "status": "CANCELLED", "cancelled_at": now.isoformat(), "cancelled_by": "guest"}
            refund = {**fields, "refund_due": fields["total_amount"] // 2}
            rows.append((uuid.uuid4(), "booking.cancelled", host_id, prop, json.dumps(refund)))
        return rows

    def events(self, count: int) -> Iterator[Row]:
        produced = 0
        while produced < count:
            for row in self.booking_rows():
                yield row
                produced += 1


def new_world(seed: int) -> World:
    rng = random.Random(seed)
    properties = []
    for _ in range(HOSTS):
        host = uuid.uuid4()
        properties += [(host, uuid.uuid4(), rng.choice(ZONES)) for _ in range(PROPERTIES_PER_HOST)]
    return World(properties, rng)


async def insert(connection: asyncpg.Connection, rows: list[Row]) -> None:
    await connection.execute(INSERT, *[list(column) for column in zip(*rows, strict=True)])


def _run_jobs(names: tuple[str, ...], settings: Settings) -> None:
    jobs = {"relay": relay_outbox, "aggregate": aggregate_events}

    async def run_all() -> None:
        await asyncio.gather(*(jobs[name](settings) for name in names))

    freeze_startup_objects()  # as `staypulse worker` does
    run_on_uvloop(run_all())


class Workers:
    """Worker processes running the relay and aggregator jobs, started and stopped by this bench only.

    By default one process runs both, as `staypulse worker` does; `--split` gives each job its own process.
    """

    def __init__(self, settings: Settings, aggregators: int, split: bool) -> None:
        context = multiprocessing.get_context("spawn")
        aggregate: tuple[str, ...] = ("aggregate",)
        first: tuple[str, ...] = ("relay",) if split else ("relay", "aggregate")
        groups = [first] + [aggregate] * (aggregators if split else aggregators - 1)
        self.processes = [context.Process(target=_run_jobs, args=(names, settings), daemon=True) for names in groups]

    def start(self) -> None:
        for process in self.processes:
            process.start()

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.join(timeout=10)


async def caught_up(connection: asyncpg.Connection, redis: Redis, stream: str) -> bool:
    """Every outbox row published, and the group has delivered and acknowledged everything in the stream."""
    if await connection.fetchval("SELECT EXISTS (SELECT 1 FROM outbox_events WHERE published_at IS NULL)"):
        return False
    info: Any = await redis.xinfo_stream(stream)
    groups: Any = await redis.xinfo_groups(stream)
    group = next(g for g in groups if g["name"] in (EVENTS_GROUP, EVENTS_GROUP.encode()))
    return bool(group["pending"] == 0 and group["last-delivered-id"] == info["last-generated-id"])


async def wait_caught_up(connection: asyncpg.Connection, redis: Redis, stream: str, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while not await caught_up(connection, redis, stream):
        if time.monotonic() > deadline:
            raise RuntimeError("the pipeline did not catch up in time")
        await asyncio.sleep(0.01)


async def ensure_group(redis: Redis, stream: str) -> None:
    await redis.xgroup_create(stream, EVENTS_GROUP, id="0", mkstream=True)


async def baseline_throughput(redis: Redis, prefix: str, count: int, size: int) -> float:
    """Raw Redis: pipelined XADD of `count` messages, then XREADGROUP + XACK of all of them, in batches."""
    stream = f"{prefix}:baseline"
    await redis.xgroup_create(stream, "g", id="0", mkstream=True)
    body = b"x" * size
    started = time.perf_counter()
    for offset in range(0, count, 1_000):
        pipe = redis.pipeline(transaction=False)
        for _ in range(min(1_000, count - offset)):
            pipe.xadd(stream, {"e": body})
        await pipe.execute()
    consumed = 0
    while consumed < count:
        answer: Any = await redis.xreadgroup("g", "c", {stream: ">"}, count=500)
        ids = [message_id for message_id, _ in answer[0][1]]
        await redis.xack(stream, "g", *ids)
        consumed += len(ids)
    elapsed = time.perf_counter() - started
    await redis.delete(stream)
    return count / elapsed


async def baseline_latency(redis: Redis, prefix: str, seconds: float) -> list[float]:
    """XADD -> XREADGROUP latency of the same Redis at the latency phase's rate."""
    stream = f"{prefix}:baseline-latency"
    await redis.xgroup_create(stream, "g", id="$", mkstream=True)
    sent: dict[bytes, float] = {}
    latencies: list[float] = []
    total = int(seconds * LATENCY_RATE_PER_S)

    async def consume() -> None:
        while len(latencies) < total:
            answer: Any = await redis.xreadgroup("g", "c", {stream: ">"}, count=100, block=1_000)
            now = time.perf_counter()
            for message_id, fields in answer[0][1] if answer else []:
                latencies.append(now - sent[fields[b"n"]])
                await redis.xack(stream, "g", message_id)

    consumer = asyncio.create_task(consume())
    started = time.perf_counter()
    for index in range(total):
        await asyncio.sleep(max(0.0, started + index / LATENCY_RATE_PER_S - time.perf_counter()))
        key = str(index).encode()
        sent[key] = time.perf_counter()
        await redis.xadd(stream, {"n": key})
    await consumer
    await redis.delete(stream)
    return latencies


async def pipeline_latency(
    settings: Settings, connection: asyncpg.Connection, redis: Redis, world: World, seconds: float
) -> list[float]:
    """Commit one booking event at a time at a steady rate; await each host's update naming the booking."""
    hosts = sorted({host for host, _, _ in world.properties})
    streams = {host_updates_stream(settings, host): host for host in hosts}
    last_ids: dict[Any, Any] = {}
    for stream in streams:
        entries: Any = await redis.xrevrange(stream, count=1)
        last_ids[stream] = entries[0][0] if entries else "0-0"
    committed: dict[uuid.UUID, list[tuple[str, float]]] = {host: [] for host in hosts}
    latencies: list[float] = []
    total = int(seconds * LATENCY_RATE_PER_S)

    async def listen() -> None:
        while len(latencies) < total:
            answer: Any = await redis.xread(last_ids, block=1_000)
            now = time.perf_counter()
            for stream, entries in answer or []:
                name = stream.decode()
                for message_id, fields in entries:
                    last_ids[name] = message_id
                    booking = fields[b"booking_id"].decode()
                    waiting = committed[streams[name]]
                    # One aggregator applies the stream in order: every earlier event of the host is applied too.
                    done = next((i for i, (b, _) in enumerate(waiting) if b == booking), -1)
                    latencies.extend(now - at for _, at in waiting[: done + 1])
                    del waiting[: done + 1]

    listener = asyncio.create_task(listen())
    started = time.perf_counter()
    for index in range(total):
        await asyncio.sleep(max(0.0, started + index / LATENCY_RATE_PER_S - time.perf_counter()))
        host = hosts[index % len(hosts)]
        row = world.booking_rows(host)[1]  # a confirmation: it changes the host's metrics
        await insert(connection, [row])
        committed[host].append((json.loads(row[4])["booking_id"], time.perf_counter()))
    await asyncio.wait_for(listener, timeout=60)
    return latencies


def wire_size_sample(world: World) -> bytes:
    """A booking event as the relay puts it on the stream, so the baseline moves messages of the same size."""
    event_id, kind, host, prop, payload = world.booking_rows()[1]
    message = OutboxMessage(1, event_id, kind, 1, dt.datetime.now(dt.UTC), host, prop, json.loads(payload))
    return encode(message)


def percentile_ms(values: list[float], percent: int) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * percent / 100))] * 1_000, 2)


async def run(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    world = new_world(seed=7)
    redis = Redis.from_url(settings.redis_url or "")
    connection = await asyncpg.connect(settings.async_database_url.replace("+asyncpg", ""))
    stream = events_stream(settings)
    try:
        size = len(wire_size_sample(world))
        baseline_per_s = await baseline_throughput(redis, settings.redis_prefix, args.replay, size)
        await ensure_group(redis, stream)
        await insert(connection, world.property_rows())

        # Replay: a backlog waits in the outbox, then the workers start.
        backlog = list(world.events(args.replay))
        for offset in range(0, len(backlog), 5_000):
            await insert(connection, backlog[offset : offset + 5_000])
        workers = Workers(settings, args.aggregators, args.split)
        started = time.perf_counter()
        workers.start()
        try:
            await wait_caught_up(connection, redis, stream)
            replay_per_s = (len(backlog) + len(world.properties)) / (time.perf_counter() - started)

            # Sustained: produce while the workers keep up.
            started = time.perf_counter()
            produced: list[Row] = []
            for row in world.events(args.sustained):
                produced.append(row)
                if len(produced) == INSERT_BATCH:
                    await insert(connection, produced)
                    produced = []
            if produced:
                await insert(connection, produced)
            await wait_caught_up(connection, redis, stream)
            events_per_s = args.sustained / (time.perf_counter() - started)

            # What an operator (or autovacuum, a little later) does after a bulk replay; otherwise the latency phase
            # measures autovacuum competing for this 2-core machine rather than the pipeline.
            await connection.execute("VACUUM (ANALYZE) outbox_events, metric_bookings, metric_days, metric_properties")
            latencies = await pipeline_latency(settings, connection, redis, world, args.latency_seconds)
        finally:
            workers.stop()
        baseline_latencies = await baseline_latency(redis, settings.redis_prefix, args.latency_seconds)
    finally:
        await remove_redis_keys(settings.redis_url or "", settings.redis_prefix)
        await redis.aclose()
        await connection.close()
    p50, p99 = percentile_ms(latencies, 50), percentile_ms(latencies, 99)
    base_p50, base_p99 = percentile_ms(baseline_latencies, 50), percentile_ms(baseline_latencies, 99)
    print(f"sustained      {events_per_s:9.0f} events/s   baseline raw XADD+XREADGROUP {baseline_per_s:9.0f}/s")
    print(f"replay 100k    {replay_per_s:9.0f} events/s   ratio to baseline {replay_per_s / baseline_per_s:.3f}")
    print(f"latency @500/s p50 {p50} ms p99 {p99} ms   baseline Redis p50 {base_p50} ms p99 {base_p99} ms")
    return {
        "bench": "pipeline",
        "events_per_s": round(events_per_s),
        "baseline_per_s": round(baseline_per_s),
        "ratio": round(events_per_s / baseline_per_s, 3),
        "replay_events_per_s": round(replay_per_s),
        "replay_ratio": round(replay_per_s / baseline_per_s, 3),
        "p50_ms": p50,
        "p99_ms": p99,
        "baseline_p50_ms": base_p50,
        "baseline_p99_ms": base_p99,
        "latency_samples": len(latencies),
        "load_avg_1m": round(os.getloadavg()[0], 2),  # other work on the machine shows in the latency
        "aggregators": args.aggregators,
        "split": args.split,
        "target_events_per_s": 5_000,
        "target_p50_ms": 10,
        "target_p99_ms": 50,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sustained", type=int, default=50_000, help="events in the sustained phase")
    parser.add_argument("--replay", type=int, default=100_000, help="events in the replayed backlog")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--aggregators", type=int, default=1, help="aggregator jobs, one per process")
    parser.add_argument("--split", action="store_true", help="run the relay in a process of its own")
    args = parser.parse_args()
    server_url, redis_url = server_urls()
    with bench_database(server_url, "pipeline") as database_url:
        settings = dataclasses.replace(
            Settings.from_env({}).with_servers(database_url, redis_url),
            redis_prefix=f"staypulse-bench-{uuid.uuid4().hex[:10]}",
        )
        result = asyncio.run(run(settings, args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

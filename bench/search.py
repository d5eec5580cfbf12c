"""Search benchmark: `GET /api/v1/properties` over 100,000 properties with calendars, beside bare HTTP.

Run `.venv/bin/python bench/search.py [--properties 100000] [--requests 2000] [--concurrency 4]`. It creates a
database of its own on the server `DATABASE_URL` names (the machine's Postgres by default), migrates it, seeds it
in SQL, serves the real API with `staypulse api` in a child process, and drops the database at the end, also
when something fails. Search throughput means little alone on a noisy machine, so the same run measures
`GET /health/live` through the same server and client: `ratio` is what a search costs over bare HTTP.
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import datetime as dt
import json
import math
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from sqlalchemy.dialects import postgresql

from bench.servers import api_server, asyncpg_dsn, bench_database, server_urls
from service.properties.search import SearchCriteria, search_statement

CITIES = 500
HOSTS = 1_000
GUESTS = 1_000
CALENDAR_SLOTS = 12
BOOKING_SHARE = 0.35
BLOCK_SHARE = 0.25
WARM_UP_REQUESTS = 50
REQUEST_TIMEOUT_S = 10.0
PLAN_INDEXES = ("ix_properties_search", "ix_availability_blocks_property_during", "ex_bookings_no_overlapping_stays")

HOSTS_SQL = """
INSERT INTO users (id, email, name, password_hash, roles)
SELECT md5('host-' || n)::uuid, format('host-%s@bench.example', n), format('Host %s', n),
       'bench-seeded-no-login', ARRAY['guest', 'host']
FROM generate_series(1, $1::int) AS n
"""
GUESTS_SQL = """
INSERT INTO users (id, email, name, password_hash, roles)
SELECT md5('guest-' || n)::uuid, format('guest-%s@bench.example', n), format('Guest %s', n),
       'bench-seeded-no-login', ARRAY['guest']
FROM generate_series(1, $1::int) AS n
"""
# Country and zone are picked by city, so every city sits in one plausible place.
PROPERTIES_SQL = """
INSERT INTO properties (id, host_id, title, description, city, country, timezone, max_guests, currency,
                        nightly_price, cleaning_fee, tax_rate_bps, min_nights, max_nights, cancellation_policy,
                        calendar_token, deleted_at)
SELECT md5('property-' || g)::uuid, md5('host-' || (1 + g % $2::int))::uuid, format('Flat %s', g), '',
       format('City-%s', lpad((g % $3::int)::text, 4, '0')),
       (ARRAY['PT', 'ES', 'FR', 'IT', 'DE'])[1 + (g % $3::int) % 5],
       (ARRAY['Europe/Lisbon', 'Europe/Madrid', 'Europe/Paris', 'Europe/Rome', 'Europe/Berlin'])[1 + (g % $3::int) % 5],
       1 + floor(random() * 8)::int, 'EUR', (40 + floor(random() * 260)::int) * 100,
       floor(random() * 6)::int * 1000, (ARRAY[0, 600, 1300])[1 + floor(random() * 3)::int],
       1 + floor(random() * 3)::int, (ARRAY[14, 30, 90, 365])[1 + floor(random() * 4)::int],
       (ARRAY['flexible', 'moderate', 'strict'])[1 + floor(random() * 3)::int],
       md5('calendar-' || g), CASE WHEN random() < 0.02 THEN now() END
FROM generate_series(1, $1::int) AS g
"""
# Each property's year from a month ago is cut into 30-day slots, each drawn once (a temporary table, so that
# every random value is fixed before the inserts read it). A slot may hold a booking of under 10 nights starting
# in its first 10 days (so it ends by day 19) and a block on days 20-27: seeded calendars never break the
# exclusion constraint, and no block covers a live booking (the API refuses that too).
SLOTS_SQL = """
CREATE TEMPORARY TABLE calendar_slots AS
SELECT p.id AS property_id, p.host_id, p.nightly_price, p.cleaning_fee, p.tax_rate_bps, p.max_guests,
       current_date - 30 + 30 * s AS slot_start, s,
       random() AS booking_draw, random() AS status_draw, floor(random() * 10)::int AS booking_offset,
       least(p.max_nights, p.min_nights + floor(random() * 7)::int) AS nights,
       random() AS block_draw, 1 + floor(random() * 7)::int AS block_nights
FROM properties AS p CROSS JOIN generate_series(0, $1::int - 1) AS s
"""
BLOCKS_SQL = """
INSERT INTO availability_blocks (id, property_id, during, reason, source)
SELECT gen_random_uuid(), property_id, daterange(slot_start + 20, slot_start + 20 + block_nights, '[)'),
       'Owner stay', 'host'
FROM calendar_slots WHERE block_draw < $1::float8
"""
# Amounts follow service/pricing.py with no rules: a 10 % guest service fee and the property's tax rate, both on
# accommodation plus cleaning. A pending hold outlives the bench, so its nights stay taken while it runs.
BOOKINGS_SQL = """
INSERT INTO bookings (id, property_id, guest_id, host_id, check_in, check_out, guests, status, currency,
                      nightly_prices, accommodation_amount, discount_amount, cleaning_fee, service_fee, taxes,
                      total_amount, refunded_amount, hold_expires_at, confirmed_at, cancelled_at, cancelled_by,
                      ended_at)
SELECT gen_random_uuid(), property_id, md5('guest-' || (1 + floor(status_draw * $2::int)::int))::uuid, host_id,
       check_in, check_out, 1 + (s % max_guests), status, 'EUR', array_fill(nightly_price, ARRAY[nights]),
       accommodation, 0, cleaning_fee, service_fee, taxes, accommodation + cleaning_fee + service_fee + taxes,
       CASE WHEN status = 'CANCELLED' THEN accommodation + cleaning_fee + service_fee + taxes ELSE 0 END,
       CASE WHEN status = 'PENDING' THEN now() + interval '1 day' ELSE now() - interval '30 days' END,
       CASE WHEN status IN ('CONFIRMED', 'COMPLETED') THEN now() - interval '30 days' END,
       CASE WHEN status = 'CANCELLED' THEN now() - interval '1 day' END,
       CASE WHEN status = 'CANCELLED' THEN 'guest' END,
       CASE WHEN status = 'COMPLETED' THEN check_out::timestamptz END
FROM (
    SELECT *, nightly_price * nights AS accommodation,
           (nightly_price * nights + cleaning_fee + 5) / 10 AS service_fee,
           ((nightly_price * nights + cleaning_fee) * tax_rate_bps + 5000) / 10000 AS taxes,
           CASE WHEN status_draw < 0.1 THEN 'CANCELLED'
                WHEN slot_start + booking_offset + nights <= current_date THEN 'COMPLETED'
                WHEN status_draw < 0.2 THEN 'PENDING'
                ELSE 'CONFIRMED' END AS status,
           slot_start + booking_offset AS check_in, slot_start + booking_offset + nights AS check_out
    FROM calendar_slots WHERE booking_draw < $1::float8
) AS stay
"""


@dataclass(frozen=True)
class Options:
    properties: int
    requests: int
    concurrency: int
    time_limit_s: float
    server_url: str
    redis_url: str


@dataclass(frozen=True)
class Measurement:
    """One phase's latencies, wall time and how many answers were not 200."""

    latencies_s: list[float]
    elapsed_s: float
    errors: int
    results: int

    @property
    def per_s(self) -> float:
        return len(self.latencies_s) / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def percentile_ms(self, share: float) -> float:
        """Nearest-rank percentile: a latency some request actually had, never an interpolation."""
        ordered = sorted(self.latencies_s)
        return 1000 * ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--properties", type=int, default=100_000, help="properties to seed (default 100000)")
    parser.add_argument("--requests", type=int, default=2_000, help="measured requests per phase (default 2000)")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight at once (default 4)")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds at most per phase (default 120)")
    args = parser.parse_args(argv)
    if args.properties < CITIES or args.requests < 1 or not 1 <= args.concurrency <= 20 or args.time_limit <= 0:
        parser.error(f"need --properties >= {CITIES}, --requests >= 1, 1 <= --concurrency <= 20, --time-limit > 0")
    server_url, redis_url = server_urls()
    return Options(
        properties=args.properties,
        requests=args.requests,
        concurrency=args.concurrency,
        time_limit_s=args.time_limit,
        server_url=server_url,
        redis_url=redis_url,
    )


async def seed(database_url: str, properties: int) -> dict[str, int]:
    """Hosts, guests, properties and their calendars, all in set-based SQL; answers each table's row count."""
    statements: list[tuple[str, tuple[Any, ...]]] = [
        # Reproducible data: every random() below follows from this seed (dates still move with today).
        ("SELECT setseed(0.42)", ()),
        (HOSTS_SQL, (HOSTS,)),
        (GUESTS_SQL, (GUESTS,)),
        (PROPERTIES_SQL, (properties, HOSTS, CITIES)),
        (SLOTS_SQL, (CALENDAR_SLOTS,)),
        (BLOCKS_SQL, (BLOCK_SHARE,)),
        (BOOKINGS_SQL, (BOOKING_SHARE, GUESTS)),
        ("DROP TABLE calendar_slots", ()),
        # Fresh statistics, as autovacuum would gather soon after such a load; the plans depend on them.
        ("ANALYZE", ()),
    ]
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        for statement, arguments in statements:
            await connection.execute(statement, *arguments)
        counts = {}
        for table in ("users", "properties", "availability_blocks", "bookings"):
            counts[table] = await connection.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed names
        return counts
    finally:
        await connection.close()


def sample_criteria(rng: random.Random, today: dt.date) -> SearchCriteria:
    """What a guest might ask: any city, a short stay within the seeded year, a party size and a budget."""
    check_in = today + dt.timedelta(days=rng.randint(1, 300))
    return SearchCriteria(
        city=f"City-{rng.randrange(CITIES):04d}",
        check_in=check_in,
        check_out=check_in + dt.timedelta(days=rng.randint(2, 7)),
        guests=rng.randint(1, 4),
        min_price=None,
        max_price=rng.choice((10_000, 15_000, 20_000, 30_000)),
        limit=20,
        offset=0,
    )


def query_params(criteria: SearchCriteria) -> dict[str, str]:
    assert criteria.city and criteria.check_in and criteria.check_out and criteria.max_price  # noqa: PT018
    return {
        "city": criteria.city,
        "check_in": criteria.check_in.isoformat(),
        "check_out": criteria.check_out.isoformat(),
        "guests": str(criteria.guests),
        "max_price": str(criteria.max_price),
    }


async def explain_search(database_url: str, criteria: SearchCriteria) -> str:
    """The real planner's choice (no settings forced) for the statement the API runs, with literal values."""
    compiled = search_statement(criteria).compile(
        dialect=postgresql.dialect(),  # type: ignore[no-untyped-call]
        compile_kwargs={"literal_binds": True},
    )
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await connection.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}")
    finally:
        await connection.close()
    return "\n".join(row[0] for row in rows)


async def measure(
    client: httpx.AsyncClient, path: str, params: Sequence[dict[str, str]], concurrency: int, time_limit_s: float
) -> Measurement:
    """Send the requests with `concurrency` in flight until all are answered or the time limit passes."""
    latencies: list[float] = []
    errors = 0
    results = 0
    pending = iter(params)
    started = time.perf_counter()
    deadline = started + time_limit_s

    async def worker() -> None:
        nonlocal errors, results
        for one in pending:
            if time.perf_counter() > deadline:
                return
            sent = time.perf_counter()
            response = await client.get(path, params=one)
            latencies.append(time.perf_counter() - sent)
            if response.status_code != 200:
                errors += 1
            elif "items" in (body := response.json()):
                results += len(body["items"])

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Measurement(latencies, time.perf_counter() - started, errors, results)


async def run_load(base_url: str, options: Options, today: dt.date) -> tuple[Measurement, Measurement]:
    """Warm both routes up (connections, prepared statements), then measure bare HTTP, then search."""
    rng = random.Random(42)
    searches = [query_params(sample_criteria(rng, today)) for _ in range(WARM_UP_REQUESTS + options.requests)]
    limits = httpx.Limits(max_connections=options.concurrency, max_keepalive_connections=options.concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT_S, limits=limits) as client:
        await measure(client, "/health/live", [{}] * WARM_UP_REQUESTS, options.concurrency, options.time_limit_s)
        await measure(
            client, "/api/v1/properties", searches[:WARM_UP_REQUESTS], options.concurrency, options.time_limit_s
        )
        baseline = await measure(
            client, "/health/live", [{}] * options.requests, options.concurrency, options.time_limit_s
        )
        search = await measure(
            client, "/api/v1/properties", searches[WARM_UP_REQUESTS:], options.concurrency, options.time_limit_s
        )
    return baseline, search


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    today = dt.datetime.now(dt.UTC).date()
    with bench_database(options.server_url, "search") as database_url:
        print(f"seeding {options.properties} properties in {CITIES} cities ...", flush=True)
        seed_started = time.perf_counter()
        counts = asyncio.run(seed(database_url, options.properties))
        seed_s = time.perf_counter() - seed_started
        print(f"seeded in {seed_s:.1f} s: " + ", ".join(f"{n} {table}" for table, n in counts.items()))

        explained = sample_criteria(random.Random(7), today)
        plan = asyncio.run(explain_search(database_url, explained))
        missing = [index for index in PLAN_INDEXES if index not in plan]
        print(f"\nEXPLAIN (ANALYZE, BUFFERS) for {query_params(explained)}:\n{plan}\n")
        if missing:
            print(f"WARNING: the plan does not use {', '.join(missing)}", flush=True)
        execution = re.search(r"Execution Time: ([\d.]+) ms", plan)

        with api_server(database_url, options.redis_url) as base_url:
            print(f"{options.requests} requests per route at concurrency {options.concurrency} on {base_url} ...")
            baseline, search = asyncio.run(run_load(base_url, options, today))

    for label, measured in (("GET /health/live", baseline), ("GET /api/v1/properties", search)):
        print(
            f"{label:24} {len(measured.latencies_s):6d} requests  {measured.per_s:8.1f}/s  "
            f"p50 {measured.percentile_ms(0.50):6.1f} ms  p99 {measured.percentile_ms(0.99):6.1f} ms  "
            f"errors {measured.errors}"
        )
    figures = {
        "bench": "search",
        "properties": options.properties,
        "requests": len(search.latencies_s),
        "concurrency": options.concurrency,
        "search_per_s": round(search.per_s, 1),
        "p50_ms": round(search.percentile_ms(0.50), 1),
        "p99_ms": round(search.percentile_ms(0.99), 1),
        "baseline_per_s": round(baseline.per_s, 1),
        "baseline_p99_ms": round(baseline.percentile_ms(0.99), 1),
        "ratio": round(search.per_s / baseline.per_s, 3) if baseline.per_s else None,
        "mean_results": round(search.results / len(search.latencies_s), 1) if search.latencies_s else 0,
        "errors": search.errors + baseline.errors,
        "seed_s": round(seed_s, 1),
        "explain_ms": float(execution.group(1)) if execution else None,
        "plan_uses_indexes": not missing,
    }
    print(json.dumps(figures))
    return 1 if figures["errors"] or missing else 0


if __name__ == "__main__":
    sys.exit(main())

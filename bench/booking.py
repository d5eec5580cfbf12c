"""How fast `POST /bookings` is, next to the cheapest endpoint that stores the same rows.

(a) the real app (`staypulse api` under uvicorn: JWT auth, validation, Redis lock, availability and pricing
    checks, the booking INSERT under the exclusion constraint, its outbox event);
(b) a minimal Litestar endpoint under uvicorn that only runs the same two INSERTs with raw asyncpg.

Both run in their own process against the machine's Postgres and Redis, in a fresh database dropped at the end,
and are driven by the same client at the same concurrency; each request books a different property so none
conflicts. The two sides take turns in rounds, so that both meet the same machine load. The last line is JSON:
{"bench": "booking", "bookings_per_s", "baseline_per_s", "ratio", "p99_ms", ...}.

    .venv/bin/python bench/booking.py [--requests 3000] [--concurrency 32]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import httpx
import psutil

from bench.servers import asyncpg_dsn, bench_database, child_process, free_port, server_urls
from service.auth.tokens import jwt_auth
from service.settings import Settings

TARGET_RATIO = 0.7
BASELINE_APP = "bench.booking_baseline:app"
ROUNDS = 6


@dataclasses.dataclass
class Run:
    name: str
    requests: int
    seconds: float
    cpu_seconds: float
    latencies_ms: list[float]
    statuses: dict[int, int]

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_seconds * 1000 / self.requests

    @classmethod
    def combine(cls, name: str, runs: list[Run]) -> Run:
        statuses: dict[int, int] = {}
        for run in runs:
            for status, count in run.statuses.items():
                statuses[status] = statuses.get(status, 0) + count
        return cls(
            name,
            sum(run.requests for run in runs),
            sum(run.seconds for run in runs),
            sum(run.cpu_seconds for run in runs),
            [latency for run in runs for latency in run.latencies_ms],
            statuses,
        )

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def seed(url: str, properties: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """One host owning `properties` places, and one guest; answers the guest and the property ids."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        host, guest = uuid.uuid4(), uuid.uuid4()
        await connection.executemany(
            "INSERT INTO users (id, email, name, password_hash, roles) VALUES ($1, $2, 'Bench', 'x', $3)",
            [(host, f"host-{host}@bench.example", ["host"]), (guest, f"guest-{guest}@bench.example", ["guest"])],
        )
        ids = [uuid.uuid4() for _ in range(properties)]
        await connection.copy_records_to_table(
            "properties",
            columns=["id", "host_id", "title", "description", "city", "country", "timezone", "max_guests",
                     "currency", "nightly_price", "cleaning_fee", "tax_rate_bps", "min_nights", "max_nights",
                     "cancellation_policy", "calendar_token"],
            records=[
                (pid, host, "Bench flat", "", "Bench", "PT", "Europe/Lisbon", 4, "EUR", 10_000, 2_000, 0, 1, 30,
                 "moderate", uuid.uuid4().hex)
                for pid in ids
            ],
        )  # fmt: skip
        await connection.execute("ANALYZE")
        return guest, ids
    finally:
        await connection.close()


@dataclasses.dataclass(frozen=True)
class Server:
    base_url: str
    pid: int

    def cpu_seconds(self) -> float:
        """CPU the server process has used so far: steadier than wall time on a loaded machine."""
        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)


@contextmanager
def server(name: str, command: list[str], env: dict[str, str], port: int) -> Iterator[Server]:
    base_url = f"http://127.0.0.1:{port}"
    with child_process(name, command, env, ready_url=f"{base_url}/health/live") as child:
        yield Server(base_url, child.pid)


async def drive(name: str, target: Server, token: str, bodies: list[dict[str, Any]], concurrency: int) -> Run:
    """Send every body once, `concurrency` at a time, over keep-alive connections."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=target.base_url, limits=limits, headers=headers, timeout=30) as http:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                started = time.perf_counter()
                response = await http.post("/api/v1/bookings", json=body)
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        started, cpu_before = time.perf_counter(), target.cpu_seconds()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds, cpu = time.perf_counter() - started, target.cpu_seconds() - cpu_before
    return Run(name, len(bodies), seconds, cpu, latencies, statuses)


def bodies_for(properties: list[uuid.UUID]) -> list[dict[str, Any]]:
    check_in = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)
    return [
        {"property_id": str(pid), "check_in": check_in.isoformat(), "check_out": str(check_in + dt.timedelta(days=3))}
        for pid in properties
    ]


async def main(url: str, redis_url: str, requests: int, concurrency: int, warmup: int) -> dict[str, Any]:
    per_side = requests + warmup
    guest, properties = await seed(url, 2 * per_side)
    settings = Settings.from_env({}).with_servers(url, redis_url)
    token = jwt_auth(settings).create_token(identifier=str(guest), token_extras={"roles": ["guest"]})
    env = {
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "STAYPULSE_REDIS_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
        "LOG_LEVEL": "WARNING",
        "BENCH_GUEST_ID": str(guest),
    }
    app_bodies, baseline_bodies = bodies_for(properties[:per_side]), bodies_for(properties[per_side:])
    baseline_port, app_port = free_port(), free_port()
    baseline_command = [
        sys.executable,
        "-m",
        "uvicorn",
        BASELINE_APP,
        f"--port={baseline_port}",
        "--log-level=warning",
    ]
    app_command = [sys.executable, "-m", "service.cli", "api", "--port", str(app_port)]
    with (
        server("baseline", baseline_command, env, baseline_port) as baseline_server,
        server("staypulse api", app_command, env, app_port) as app_server,
    ):
        await drive("warm-up", baseline_server, token, baseline_bodies[:warmup], concurrency)
        await drive("warm-up", app_server, token, app_bodies[:warmup], concurrency)
        # Alternate rounds so that both sides meet the same machine load (it is shared and noisy).
        baseline_runs, app_runs = [], []
        chunk = max(1, requests // ROUNDS)
        for start in range(warmup, per_side, chunk):
            baseline_runs.append(
                await drive("baseline", baseline_server, token, baseline_bodies[start : start + chunk], concurrency)
            )
            app_runs.append(await drive("app", app_server, token, app_bodies[start : start + chunk], concurrency))
    baseline, app = Run.combine("baseline", baseline_runs), Run.combine("app", app_runs)

    for run in (baseline, app):
        print(
            f"{run.name:>8}: {run.per_s:7.0f} bookings/s  p50 {run.percentile(0.5):6.1f} ms  "
            f"p99 {run.percentile(0.99):6.1f} ms  server CPU {run.cpu_ms_per_request:5.2f} ms/request  "
            f"statuses {run.statuses}"
        )
    return {
        "bench": "booking",
        "requests": requests,
        "concurrency": concurrency,
        "bookings_per_s": round(app.per_s),
        "p50_ms": round(app.percentile(0.5), 1),
        "p99_ms": round(app.percentile(0.99), 1),
        "baseline_per_s": round(baseline.per_s),
        "baseline_p50_ms": round(baseline.percentile(0.5), 1),
        "baseline_p99_ms": round(baseline.percentile(0.99), 1),
        "ratio": round(app.per_s / baseline.per_s, 2),
        "cpu_ms_per_booking": round(app.cpu_ms_per_request, 2),
        "baseline_cpu_ms_per_booking": round(baseline.cpu_ms_per_request, 2),
        "cpu_ratio": round(baseline.cpu_ms_per_request / app.cpu_ms_per_request, 2),
        "target_ratio": TARGET_RATIO,
        "app_statuses": app.statuses,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=300)
    arguments = parser.parse_args()
    server_url, redis_url = server_urls()
    with bench_database(server_url, "booking") as database_url:
        figures = asyncio.run(
            main(database_url, redis_url, arguments.requests, arguments.concurrency, arguments.warmup)
        )
    print(json.dumps(figures))

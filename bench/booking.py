"""How fast `POST /bookings` is, next to the cheapest endpoint that stores the same rows.

(a) the real app (`staypulse api` under uvicorn: JWT auth, validation, Redis lock, availability and pricing
    checks, the booking INSERT under the exclusion constraint, its outbox event);
(b) a minimal Litestar endpoint under uvicorn that only runs the same two INSERTs with raw asyncpg.

Both run in their own process against the machine's Postgres and Redis, in a fresh database dropped at the end.
The load comes from wrk (C, Debian package `wrk`) with bench/booking.lua, so that the load generator costs little
of the 2 cores and the figures show the servers' cost; a Python client would be the bottleneck of the baseline and
flatter the ratio. Both sides are driven the same way (one wrk thread, the same connections, every request a
different property and stay, so none conflicts) and take turns in rounds, so that both meet the same machine
load. Server CPU per booking (the process's user + system time) is printed too: it is steadier than wall time
on a shared machine. The last line is JSON: {"bench": "booking", "bookings_per_s", "baseline_per_s", "ratio",
"p99_ms", ...}; the script exits 1 if any answer was not 201.

    .venv/bin/python bench/booking.py [--rounds 6] [--seconds 5] [--concurrency 32] [--profile app.svg]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import calendar
import dataclasses
import datetime as dt
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import psutil

from bench.servers import asyncpg_dsn, bench_database, child_process, free_port, server_urls
from service.auth.tokens import jwt_auth
from service.settings import Settings

TARGET_RATIO = 0.7
BASELINE_APP = "bench.booking_baseline:app"
WRK_SCRIPT = Path(__file__).with_name("booking.lua")
PROPERTIES_PER_SIDE = 1000
FIRST_CHECK_IN_DAYS = 30
WRK_TIMEOUT_S = 10
SETTLED_AFTER_S = 0.3


@dataclasses.dataclass
class Round:
    """One wrk run against one server."""

    responses: int  # answers wrk read
    seconds: float
    created: int  # of which 201
    failures: int  # other answers, and connections wrk saw fail
    stored: int  # bookings the server stored: `created`, plus those still in flight when wrk stopped
    cpu_seconds: float  # server CPU until it had finished those too
    latency_us: list[int]  # 1,000 equal-mass points of this round's latency distribution


@dataclasses.dataclass
class Side:
    """One server under test, the properties it books, and its measured rounds merged."""

    name: str
    server: Server
    property_ids: list[uuid.UUID]
    ids_file: Path
    next_slot: int = 0
    rounds: list[Round] = dataclasses.field(default_factory=list)

    @property
    def responses(self) -> int:
        return sum(r.responses for r in self.rounds)

    @property
    def per_s(self) -> float:
        return self.responses / sum(r.seconds for r in self.rounds)

    @property
    def cpu_ms_per_booking(self) -> float:
        return sum(r.cpu_seconds for r in self.rounds) * 1000 / sum(r.stored for r in self.rounds)

    @property
    def failures(self) -> int:
        return sum(r.failures for r in self.rounds)

    def percentile_ms(self, q: float) -> float:
        """The q-quantile of all rounds together: each round's points weigh its responses / 1,000."""
        weighted = sorted((us, r.responses / len(r.latency_us)) for r in self.rounds for us in r.latency_us)
        total, seen = sum(weight for _, weight in weighted), 0.0
        for us, weight in weighted:
            seen += weight
            if seen >= q * total:
                return us / 1000
        return weighted[-1][0] / 1000


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


async def stored_bookings(db: asyncpg.Connection, side: Side) -> int:
    return int(
        await db.fetchval("SELECT count(*) FROM bookings WHERE property_id = ANY($1::uuid[])", side.property_ids)
    )


async def settled_bookings(db: asyncpg.Connection, side: Side) -> int:
    """The side's stored bookings once its server has finished the requests wrk left in flight when it stopped
    (no new row for SETTLED_AFTER_S)."""
    deadline = time.monotonic() + 30
    count = await stored_bookings(db, side)
    while time.monotonic() < deadline:
        await asyncio.sleep(SETTLED_AFTER_S)
        count, before = await stored_bookings(db, side), count
        if count == before:
            return count
    raise RuntimeError(f"{side.name} is still storing bookings 30 s after the load stopped")


async def drive(db: asyncpg.Connection, side: Side, token: str, seconds: int, concurrency: int) -> Round:
    """One wrk run of `seconds` with `concurrency` keep-alive connections, booking from the side's next slot on."""
    first_day = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=FIRST_CHECK_IN_DAYS)
    stored_before, cpu_before = await stored_bookings(db, side), side.server.cpu_seconds()
    wrk = await asyncio.create_subprocess_exec(
        "wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", f"--timeout={WRK_TIMEOUT_S}s", "-s", str(WRK_SCRIPT),
        side.server.base_url, "--", str(side.ids_file), token, str(side.next_slot),
        str(calendar.timegm(first_day.timetuple())),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    output, _ = await wrk.communicate()
    if wrk.returncode != 0:
        raise RuntimeError(f"wrk exited with {wrk.returncode}")
    stored = await settled_bookings(db, side) - stored_before
    cpu = side.server.cpu_seconds() - cpu_before
    figures = json.loads(next(line for line in output.decode().splitlines() if line.startswith('{"responses"')))
    side.next_slot = figures["next_slot"]
    if not figures["created"] <= stored <= figures["created"] + concurrency:
        raise RuntimeError(f"{side.name}: {figures['created']} answers 201 but {stored} bookings stored")
    return Round(
        responses=figures["responses"],
        seconds=figures["duration_us"] / 1e6,
        created=figures["created"],
        failures=figures["other_status"] + figures["socket_errors"],
        stored=stored,
        cpu_seconds=cpu,
        latency_us=figures["latency_us"],
    )


PROFILE_FORMATS = {".svg": "flamegraph", ".json": "speedscope", ".txt": "raw"}


async def profile_app(
    db: asyncpg.Connection, app: Side, token: str, seconds: int, concurrency: int, path: Path
) -> None:
    """One more app round, not counted, with py-spy sampling the server: a flame graph (.svg), speedscope (.json)
    or collapsed stacks (.txt) of where a booking's CPU goes."""
    py_spy = await asyncio.create_subprocess_exec(
        "py-spy", "record", "--pid", str(app.server.pid), "--rate", "200", "--duration", str(seconds + 1),
        "--format", PROFILE_FORMATS.get(path.suffix, "flamegraph"), "--output", str(path),
        stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await drive(db, app, token, seconds, concurrency)
    if await py_spy.wait() != 0:
        raise RuntimeError("py-spy failed (it needs permission to trace the server: run as root or allow ptrace)")


async def main(
    url: str, redis_url: str, rounds: int, seconds: int, concurrency: int, warmup: int, profile: Path | None
) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    guest, properties = await seed(url, 2 * PROPERTIES_PER_SIDE)
    settings = Settings.from_env({}).with_servers(url, redis_url)
    token = jwt_auth(settings).create_token(identifier=str(guest), token_extras={"roles": ["guest"]})
    env = {
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "STAYPULSE_REDIS_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
        "LOG_LEVEL": "WARNING",
        "BENCH_GUEST_ID": str(guest),
    }
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
        tempfile.TemporaryDirectory() as folder,
        server("baseline", baseline_command, env, baseline_port) as baseline_server,
        server("staypulse api", app_command, env, app_port) as app_server,
    ):
        sides = []
        for index, (label, target) in enumerate((("baseline", baseline_server), ("app", app_server))):
            ids = properties[index * PROPERTIES_PER_SIDE : (index + 1) * PROPERTIES_PER_SIDE]
            ids_file = Path(folder) / f"{label}.txt"
            ids_file.write_text("".join(f"{pid}\n" for pid in ids))
            sides.append(Side(label, target, ids, ids_file))
        db = await asyncpg.connect(asyncpg_dsn(url))
        try:
            for side in sides:
                await drive(db, side, token, warmup, concurrency)
            # Alternate rounds, changing who goes first, so that both sides meet the same machine load.
            for number in range(rounds):
                for side in sides[:: -1 if number % 2 else 1]:
                    side.rounds.append(await drive(db, side, token, seconds, concurrency))
            if profile is not None:
                await profile_app(db, sides[1], token, seconds, concurrency, profile)
            events = await db.fetchval("SELECT count(*) FROM outbox_events WHERE type = 'booking.created'")
            bookings = await db.fetchval("SELECT count(*) FROM bookings")
        finally:
            await db.close()
    if events != bookings:
        raise RuntimeError(f"{bookings} bookings stored but {events} booking.created events")
    baseline, app = sides

    for side in (baseline, app):
        print(
            f"{side.name:>8}: {side.per_s:7.0f} bookings/s  "
            f"p50 {side.percentile_ms(0.5):6.1f} ms  p99 {side.percentile_ms(0.99):6.1f} ms  "
            f"server CPU {side.cpu_ms_per_booking:5.2f} ms/booking  "
            f"responses {side.responses}, not 201: {side.failures}"
        )
    return {
        "bench": "booking",
        "load_generator": "wrk",
        "rounds": rounds,
        "seconds_per_round": seconds,
        "concurrency": concurrency,
        "bookings": app.responses,
        "bookings_per_s": round(app.per_s),
        "p50_ms": round(app.percentile_ms(0.5), 1),
        "p99_ms": round(app.percentile_ms(0.99), 1),
        "baseline_per_s": round(baseline.per_s),
        "baseline_p50_ms": round(baseline.percentile_ms(0.5), 1),
        "baseline_p99_ms": round(baseline.percentile_ms(0.99), 1),
        "ratio": round(app.per_s / baseline.per_s, 2),
        "cpu_ms_per_booking": round(app.cpu_ms_per_booking, 2),
        "baseline_cpu_ms_per_booking": round(baseline.cpu_ms_per_booking, 2),
        "cpu_ratio": round(baseline.cpu_ms_per_booking / app.cpu_ms_per_booking, 2),
        "target_ratio": TARGET_RATIO,
        "failures": app.failures + baseline.failures,
        "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6, help="measured rounds per side")
    parser.add_argument("--seconds", type=int, default=5, help="length of one round")
    parser.add_argument("--concurrency", type=int, default=32, help="open connections (requests in flight)")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured load per side first")
    parser.add_argument(
        "--profile", type=Path, help="after the rounds, profile one more app round with py-spy into this file"
    )
    arguments = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/booking.py needs wrk on the PATH (Debian/Ubuntu: apt-get install wrk)")
    if arguments.profile is not None and shutil.which("py-spy") is None:
        sys.exit("--profile needs py-spy on the PATH (.venv/bin/pip install py-spy)")
    server_url, redis_url = server_urls()
    with bench_database(server_url, "booking") as database_url:
        figures = asyncio.run(
            main(
                database_url,
                redis_url,
                arguments.rounds,
                arguments.seconds,
                arguments.concurrency,
                arguments.warmup,
                arguments.profile,
            )
        )
    print(json.dumps(figures))
    if figures["failures"]:
        sys.exit(1)

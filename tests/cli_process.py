"""A `staypulse` command run as a child process the way a newcomer runs it: no server URLs set (so it starts
embedded Postgres and Redis in its data folder), polled for readiness, stopped by a signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from service.demo.localstripe import free_port

READY_TIMEOUT_S = 60.0


def processes_using(data_dir: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(str(data_dir) in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


class Service:
    """`staypulse <command>` as a child process with an empty environment of StayPulse settings; its output goes
    to files beside the data folder (a pipe nobody reads would block a chatty process)."""

    def __init__(self, data_dir: Path, command: str = "serve", **settings: str) -> None:
        self.port = free_port()
        environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        self.stdout_path = data_dir.parent / f"{command}-{self.port}.stdout"
        self.stderr_path = data_dir.parent / f"{command}-{self.port}.stderr"
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        with self.stdout_path.open("wb") as stdout, self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "service.cli", command, "--port", str(self.port)],
                env={**environ, "STAYPULSE_DATA_DIR": str(data_dir), **settings},
                stdout=stdout,
                stderr=stderr,
            )
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)

    def stdout(self) -> str:
        return self.stdout_path.read_text()

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def assert_running(self) -> None:
        assert self.process.poll() is None, f"exited with {self.process.returncode}:\n{self.stderr()[-3000:]}"

    def wait_until_ready(self) -> None:
        """Poll readiness the way a load balancer would, failing fast if the process dies."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            self.assert_running()
            try:
                if self.http.get("/health/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        pytest.fail(f"staypulse was not ready within {READY_TIMEOUT_S} s")

    def stop(self, signum: signal.Signals = signal.SIGTERM) -> int:
        self.http.close()
        self.process.send_signal(signum)
        return self.process.wait(timeout=60)

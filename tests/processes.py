"""StayPulse commands as real child processes: the environment that points them at a test's servers, database and
Redis key prefix, and `staypulse worker` started, stopped, or killed as an operator's `kill -9` would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from service.settings import Settings

STOP_TIMEOUT_S = 30.0


def environment_for(settings: Settings) -> dict[str, str]:
    """The variables `Settings.from_env` reads back into the same settings (those the tests change)."""
    optional = {
        "SMTP_URL": settings.smtp_url,
        "SMS_API_URL": settings.sms_api_url,
        "SMS_API_TOKEN": settings.sms_api_token,
    }
    return {
        "STAYPULSE_ENV": settings.env,
        "DATABASE_URL": settings.database_url or "",
        "REDIS_URL": settings.redis_url or "",
        "STAYPULSE_REDIS_PREFIX": settings.redis_prefix,
        "STAYPULSE_DATA_DIR": str(settings.data_dir),
        "LOG_LEVEL": settings.log_level,
        "HOST_FEE_BPS": str(settings.host_fee_bps),
        "GUEST_SERVICE_FEE_BPS": str(settings.guest_service_fee_bps),
        "BOOKING_HOLD_SECONDS": str(settings.booking_hold_seconds),
        "EVENTS_CLAIM_IDLE_SECONDS": str(settings.events_claim_idle_seconds),
        "STRIPE_API_BASE": settings.stripe_api_base,
        **{name: value for name, value in optional.items() if value},
    }


@dataclass
class WorkerProcess:
    """`staypulse worker` as a child process; its JSON log goes to `log_path`."""

    process: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def start(cls, settings: Settings, log_path: Path) -> WorkerProcess:
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "service.cli", "worker"],
                env={**os.environ, **environment_for(settings)},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        return cls(process, log_path)

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as when the machine or the OOM killer takes the process."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> int:
        """SIGTERM, the way a supervisor stops it; answers the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=STOP_TIMEOUT_S)

    def assert_alive(self) -> None:
        assert self.process.poll() is None, f"the worker exited with {self.process.returncode}:\n{self.log_tail()}"

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def worker_process(settings: Settings, log_path: Path) -> Iterator[WorkerProcess]:
    """A worker for the block; stopped at its end if it still runs (it must stop cleanly)."""
    worker = WorkerProcess.start(settings, log_path)
    try:
        yield worker
    finally:
        if worker.process.poll() is None:
            assert worker.stop() == 0, worker.log_tail()

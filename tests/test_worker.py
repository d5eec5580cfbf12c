"""The worker's supervisor stops every job, even one whose first cancellation is lost (as redis-py can lose one
that lands inside a blocked XREADGROUP, which once left `serve` hanging after SIGTERM)."""

from __future__ import annotations

import asyncio

import pytest

from service import worker
from service.settings import Settings


async def test_a_job_that_loses_its_cancellation_is_cancelled_again(monkeypatch: pytest.MonkeyPatch) -> None:
    cancellations = 0

    async def loses_the_first_cancellation(_: Settings) -> None:
        nonlocal cancellations
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancellations += 1
                if cancellations > 1:
                    raise

    async def well_behaved(_: Settings) -> None:
        await asyncio.sleep(3600)

    monkeypatch.setattr(worker, "JOBS", (loses_the_first_cancellation, well_behaved))
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run_jobs(Settings.from_env({}), stop))
    await asyncio.sleep(0.1)
    stop.set()
    async with asyncio.timeout(10 * worker.RECANCEL_AFTER_S):
        await running
    assert cancellations == 2

"""The worker's round loop: a failing round is logged and retried after its pause, the job goes on, and the
sessions it hands out reach the real database."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.rounds import run_rounds
from service.settings import Settings


async def test_a_failed_round_is_logged_and_the_job_goes_on(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    answers: list[int] = []
    third_round = asyncio.Event()

    async def one_round(sessions: async_sessionmaker[AsyncSession]) -> float:
        if not answers:
            answers.append(0)
            raise RuntimeError("the database went away")
        async with sessions() as session:
            answers.append((await session.execute(text("SELECT 1"))).scalar_one())
        if len(answers) == 3:
            third_round.set()
        return 0

    with caplog.at_level(logging.ERROR, logger="service.rounds"):
        job = asyncio.create_task(run_rounds(settings, "example", one_round, after_failure=0.01))
        await asyncio.wait_for(third_round.wait(), timeout=10)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job

    assert answers == [0, 1, 1]
    failures = [record for record in caplog.records if record.getMessage() == "example round failed"]
    assert len(failures) == 1
    assert failures[0].exc_info is not None

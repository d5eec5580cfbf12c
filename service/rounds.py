"""The loop shared by the worker's database jobs: run a round, wait as long as it says, survive failures.

A job's round gets a session factory and answers how many seconds to wait before the next round (0 to go on at
once, when it left work behind). A round that raises (the database away, a bug in one row) is logged and tried
again after `after_failure` seconds: a worker job never dies of one bad round, and its engine is disposed when
the job is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.db import create_engine, session_factory
from service.settings import Settings

log = logging.getLogger(__name__)

Round = Callable[[async_sessionmaker[AsyncSession]], Awaitable[float]]


async def run_rounds(settings: Settings, name: str, one_round: Round, *, after_failure: float) -> None:
    """Run `one_round` until cancelled, on a small engine of its own; `name` says which job failed in the log."""
    engine = create_engine(settings, pool_size=2)
    sessions = session_factory(engine)
    try:
        while True:
            try:
                wait = await one_round(sessions)
            except Exception:
                log.exception("%s round failed", name, extra={"job": name})
                wait = after_failure
            if wait > 0:
                await asyncio.sleep(wait)
    finally:
        await engine.dispose()

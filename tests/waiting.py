"""Awaiting a condition with a deadline, for tests that watch other processes work: never a fixed sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
POLL_INTERVAL_S = 0.1


async def eventually(probe: Callable[[], Awaitable[T]], what: str | Callable[[], str], timeout_s: float = 30.0) -> T:
    """Poll `probe` until it answers something truthy, and answer that; fail saying `what` did not happen."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = await probe()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what() if callable(what) else what}")
        await asyncio.sleep(POLL_INTERVAL_S)

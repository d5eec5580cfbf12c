"""The API's collector policy (service/garbage.py): young collections as usual, full ones only on the timer."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from service.garbage import defer_full_collections, full_collections
from tests.waiting import eventually

CPYTHON_DEFAULT_THRESHOLDS = (700, 10, 10)


class Node:
    """Something that can be part of a reference cycle and be watched through a weak reference."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def deferred() -> Iterator[None]:
    thresholds = gc.get_threshold()
    defer_full_collections()
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def old_cycle() -> weakref.ref[Node]:
    """A two-object cycle that survived two young collections (so it sits in the oldest generation), then was
    dropped: only a full collection can free it."""
    first, second = Node(), Node()
    first.other, second.other = second, first
    gc.collect(0)
    gc.collect(1)
    return weakref.ref(first)


def automatic_full_collections() -> int:
    """How many full collections CPython starts by itself while the process allocates (and keeps, for a moment)
    as many tracked objects again as it holds: enough to pass its thresholds several times over."""
    before = gc.get_stats()[2]["collections"]
    kept: list[list[None]] = [[] for _ in range(max(300_000, len(gc.get_objects())))]
    after = gc.get_stats()[2]["collections"]
    del kept
    return int(after - before)


def test_cpython_starts_no_full_collection_once_they_are_deferred() -> None:
    thresholds = gc.get_threshold()
    try:
        gc.set_threshold(*CPYTHON_DEFAULT_THRESHOLDS)
        assert automatic_full_collections() > 0  # for comparison: under CPython's own policy the probe sees them
        defer_full_collections()
        assert automatic_full_collections() == 0
    finally:
        gc.set_threshold(*thresholds)


async def test_the_timer_frees_old_cycles_that_young_collections_leave(deferred: None) -> None:
    watched = old_cycle()
    gc.collect(1)
    assert watched() is not None
    stop = asyncio.Event()
    timer = asyncio.create_task(full_collections(stop, every_s=0.05))
    try:
        await eventually(lambda: asyncio.sleep(0, watched() is None), "the timed full collection freed the cycle")
    finally:
        stop.set()
        async with asyncio.timeout(5):
            await timer

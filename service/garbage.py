"""When the garbage collector may stop a serving process: never for start-up objects, and for full collections
only on a timer.

A full collection walks every object the process tracks and stops the event loop while it does. In the API that
is mostly the live dashboards: each socket holds some 190 objects (about 23 suspended coroutines, most of them
the middleware stack), so 1,000 sockets made full collections of ~190,000 objects that stopped every update for
60-180 ms on this machine, whenever CPython's heuristic decided (every 20-30 s under `bench/realtime.py`'s load),
and the dashboards' p99 was those pauses. Young collections are left alone: they take a few milliseconds and
free nearly all cyclic garbage, which dies young. What outlives them (a closed socket's cycles, say) waits for
the next timed full collection.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc

FULL_COLLECTION_EVERY_S = 300.0
# More young collections than a process lives through: CPython's own full collections never come.
NEVER = 2**30


def freeze_startup_objects() -> None:
    """Put what importing and building the app allocated (some 200,000 objects that live as long as the process)
    out of the garbage collector's reach: every full collection would walk them again, a pause of 75 ms on this
    machine, more when it is busy, in the middle of live updates and requests."""
    gc.freeze()


def defer_full_collections() -> None:
    """Leave full collections to `full_collections`; young ones run as CPython decides."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, NEVER)


async def full_collections(stop: asyncio.Event, every_s: float = FULL_COLLECTION_EVERY_S) -> None:
    """A full collection every `every_s` until `stop` is set: as long a pause as CPython's, but rare and regular."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every_s):
                await stop.wait()
        if not stop.is_set():
            gc.collect()

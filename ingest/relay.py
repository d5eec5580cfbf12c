"""The outbox relay: committed outbox rows go to the events stream in id order, then are marked published.

Watermark choice: a round selects `published_at IS NULL ORDER BY id`, never only `id > last_id`. An id is taken
at insert but the row becomes visible at commit, so a transaction that commits late leaves a hole below ids
already published; a cursor would skip it forever, while "unpublished" finds it. To stay cheap between VACUUMs a
round looks only a little below the newest id it published (`LATE_IDS`), and a sweep every `SWEEP_INTERVAL_S`
looks at every unpublished row, so a late row waits at most until the next sweep (see below); the relay also
vacuums its table itself (`ingest.vacuum`).

Several relays may run, one publishing: the relay that holds a session-level advisory lock on its connection
(`take_lead`) is the leader until that connection ends; the others try for it every second. One publisher keeps
the stream in id order (which `FOR UPDATE SKIP LOCKED` with concurrent publishers would not) and means a row is
published by one relay only. Holding the lock across rounds makes a round two statements and one Redis round trip
(read the batch, XADD it, mark it published) where a lock per round took a transaction of four statements: the
round is the first stage of the pipeline's latency. The marks come after the XADDs succeeded: if Redis is down
nothing is marked and the rows wait; if the relay dies between XADD and mark, the rows go out again and the
aggregators, which are idempotent, ignore the repeats.

Wake-ups come from `LISTEN staypulse_outbox` on a dedicated connection (the migration's trigger notifies at
commit), with a polling fallback so a lost connection or notification only delays events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
from redis.asyncio import Redis

from ingest.pg import connect, create_pool
from ingest.streams import OutboxMessage, encode, events_stream
from ingest.vacuum import TableVacuum
from service.app import redis_client
from service.settings import Settings

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "staypulse_outbox"
RELAY_LOCK_KEY = 0x5374_6179_5075_6C  # any constant bigint, shared by every relay
BATCH_SIZE = 1_000
# A memory bound that only bites when aggregators are down for this many events; normally the aggregators trim
# what they have consumed (MINID), see `ingest.aggregator.trim_consumed`.
STREAM_MAXLEN = 250_000
POLL_INTERVAL_S = 1.0
RETRY_DELAY_S = 1.0

# The leader's lock is session-level: Postgres releases it when the connection ends (the relay stopped, crashed or
# lost the connection), and another relay takes it at its next wake-up.
TAKE_LEAD = "SELECT pg_try_advisory_lock($1)"
UNPUBLISHED = """
SELECT id, event_id, type, v, occurred_at, host_id, property_id, payload::text AS payload
FROM outbox_events WHERE published_at IS NULL AND id > $2 ORDER BY id LIMIT $1
"""
MARK_PUBLISHED = "UPDATE outbox_events SET published_at = now() WHERE id = ANY($1::bigint[])"

# A round looks at ids above the newest it published minus `LATE_IDS`, not at every unpublished row. Publishing
# updates a row, and until VACUUM the partial index keeps an entry for it, so an `ORDER BY id` from the start steps
# over every row published since (6 ms a round after 100,000 events); with stale statistics (autovacuum off, as on
# the development machine) the planner even walks the primary key and reads each published row (10 ms per 10,000).
# A row committed more than `LATE_IDS` ids behind the newest (its transaction took its id long before it
# committed; the outbox insert is normally a transaction's last statement) waits for the sweep every
# `SWEEP_INTERVAL_S`, which looks at every unpublished row.
LATE_IDS = 1_000
SWEEP_INTERVAL_S = 10.0


@dataclass(frozen=True)
class Published:
    """What a round sent to the stream: how many rows, and the highest id among them (0 for none)."""

    count: int
    newest_id: int = 0


async def take_lead(connection: asyncpg.Connection) -> bool:
    """Whether this connection holds the relay lock now (it keeps it until it closes)."""
    return bool(await connection.fetchval(TAKE_LEAD, RELAY_LOCK_KEY))


async def relay_once(
    connection: asyncpg.Connection,
    redis: Redis,
    settings: Settings,
    batch_size: int = BATCH_SIZE,
    maxlen: int = STREAM_MAXLEN,
    after_id: int = 0,
) -> Published:
    """Publish one batch of the unpublished rows above `after_id`, on a connection that holds the relay lock."""
    rows = await connection.fetch(UNPUBLISHED, batch_size, after_id)
    if not rows:
        return Published(0)
    stream = events_stream(settings)
    pipe = redis.pipeline(transaction=False)
    for row in rows:
        pipe.xadd(stream, {"e": _wire(row)}, maxlen=maxlen, approximate=True)
    await pipe.execute()
    await connection.execute(MARK_PUBLISHED, [row["id"] for row in rows])
    return Published(len(rows), rows[-1]["id"])


def _wire(row: asyncpg.Record) -> bytes:
    # The payload is already JSON text; decoding it only to encode it again would double the relay's cost.
    head = encode(
        OutboxMessage(
            seq=row["id"],
            event_id=row["event_id"],
            type=row["type"],
            v=row["v"],
            occurred_at=row["occurred_at"],
            host_id=row["host_id"],
            property_id=row["property_id"],
            payload={},
        )
    )
    payload: str = row["payload"]
    return head[: -len(b"{}}")] + payload.encode() + b"}"


class Wakeup:
    """Set by NOTIFY; the relay also wakes every `POLL_INTERVAL_S` without it."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.connection: asyncpg.Connection | None = None

    def _notified(self, *_: Any) -> None:
        self.event.set()

    async def listen(self, settings: Settings) -> None:
        """(Re)open the LISTEN connection if it is gone; failures leave polling in charge."""
        if self.connection is not None and not self.connection.is_closed():
            return
        try:
            self.connection = await connect(settings)
            await self.connection.add_listener(NOTIFY_CHANNEL, self._notified)
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            log.warning("relay cannot LISTEN, polling only: %s", exc)
            self.connection = None

    async def wait(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(POLL_INTERVAL_S):
                await self.event.wait()
        self.event.clear()

    async def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await self.connection.close()


class Lead:
    """The relay's own connection, reopened when lost, and whether it holds the relay lock."""

    def __init__(self) -> None:
        self.connection: asyncpg.Connection | None = None
        self.held = False

    async def take(self, settings: Settings) -> asyncpg.Connection | None:
        """The connection when this relay leads (taking the lock if it is free), else None."""
        if self.connection is None or self.connection.is_closed():
            self.held = False
            self.connection = await connect(settings)
            # The marks need not wait for the disk: one lost in a crash only sends its rows again (see Failure).
            await self.connection.execute("SET synchronous_commit = off")
        if not self.held:
            self.held = await take_lead(self.connection)
        return self.connection if self.held else None

    async def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await self.connection.close()


async def relay_outbox(settings: Settings) -> None:
    """Worker job: runs until cancelled; a failed round (Redis or Postgres away) is retried after a pause. A relay
    that does not lead tries again every `POLL_INTERVAL_S`, not at each commit."""
    vacuum_pool = await create_pool(settings, size=1)
    redis = redis_client(settings)
    wakeup = Wakeup()
    lead = Lead()
    vacuum = TableVacuum(vacuum_pool, ("outbox_events",))
    newest_id = 0
    next_sweep = 0.0
    try:
        while True:
            await wakeup.listen(settings)
            sweep = time.monotonic() >= next_sweep
            after_id = 0 if sweep else max(0, newest_id - LATE_IDS)
            try:
                connection = await lead.take(settings)
                if connection is None:
                    await asyncio.sleep(POLL_INTERVAL_S)
                    continue
                published = await relay_once(connection, redis, settings, after_id=after_id)
            except Exception:
                log.exception("relay round failed; unpublished events wait in the outbox")
                await asyncio.sleep(RETRY_DELAY_S)
                continue
            if sweep:
                next_sweep = time.monotonic() + SWEEP_INTERVAL_S
            newest_id = max(newest_id, published.newest_id)
            vacuum.count(published.count)
            if published.count < BATCH_SIZE:
                await wakeup.wait()
    finally:
        await vacuum.close()
        await wakeup.close()
        await lead.close()
        await redis.aclose()
        await vacuum_pool.close()

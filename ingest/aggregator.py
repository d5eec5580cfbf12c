"""Aggregators: a Redis consumer group turns the events stream into metrics rows.

A round reads a batch (`XREADGROUP`), applies it in one Postgres transaction and `XACK`s after the commit; a crash
in between leaves the messages pending, and another consumer takes them over with `XAUTOCLAIM` once they have been
idle for `EVENTS_CLAIM_IDLE_SECONDS` (30 s by default). Re-applying what was committed but not acked is harmless
(see `ingest.apply`).

An event that cannot be applied (malformed) fails alone: the batch is retried one event at a time, the bad one's
attempts are counted, and after `MAX_ATTEMPTS` it moves to the dead-letter stream with its error. Infrastructure
errors (Postgres or Redis away) are not the event's fault: the round fails and its messages wait, uncounted.

After each committed batch every host whose numbers changed gets a message on its update stream, with a per-host
`seq` and the cause (event type and booking id) of its last change.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import msgspec
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, ResponseError

from ingest.apply import HostChange, MalformedEvent, apply_batch
from ingest.pg import create_pool
from ingest.streams import (
    DEAD_LETTER_MAXLEN,
    EVENTS_GROUP,
    HOST_UPDATES_FEED_MAXLEN,
    HOST_UPDATES_MAXLEN,
    OutboxMessage,
    dead_letter_stream,
    decode,
    encode_days,
    events_stream,
    failures_key,
    host_seq_key,
    host_updates_feed,
    host_updates_stream,
)
from ingest.vacuum import TableVacuum
from service.app import redis_client
from service.settings import Settings

log = logging.getLogger(__name__)

BATCH_SIZE = 500
MAX_ATTEMPTS = 5
BLOCK_MS = 1_000
CLAIM_EVERY_S = 5.0
RETRY_DELAY_S = 1.0
# Rewritten by (nearly) every batch: kept vacuumed by this job, see `ingest.vacuum`.
CHURNED_TABLES = ("metric_hosts", "metric_bookings", "metric_days")

Entry = tuple[bytes, dict[bytes, bytes] | None]

# Per host: the next `seq` and the update message carrying it, atomically, for all hosts of a batch at once; each
# update goes to the host's stream (history, for resume) and to the feed of all hosts' updates (what the gateway's
# one reader per process follows), in the same order. Only the feed's entry carries the version and the metric
# differences (what the gateway adds to the figures it holds); resume needs neither.
# KEYS: the feed, then per host: seq key, update stream. ARGV: a host stream's MAXLEN, the feed's MAXLEN, then per
# host: host_id, event_type, booking_id, property_id, events, version, reload, days.
ANNOUNCE_LUA = """
for i = 2, #KEYS, 2 do
    local j = 3 + (i - 2) / 2 * 8
    local seq = redis.call('INCR', KEYS[i])
    local fields = {'seq', seq, 'event_type', ARGV[j + 1], 'booking_id', ARGV[j + 2], 'property_id', ARGV[j + 3],
        'events', ARGV[j + 4]}
    redis.call('XADD', KEYS[i + 1], 'MAXLEN', '~', ARGV[1], '*', unpack(fields))
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'host_id', ARGV[j], 'version', ARGV[j + 5],
        'reload', ARGV[j + 6], 'days', ARGV[j + 7], unpack(fields))
end
"""


def announce_arguments(settings: Settings, changes: Sequence[HostChange]) -> tuple[list[str], list[str | int | bytes]]:
    """KEYS and ARGV of `ANNOUNCE_LUA` for these hosts' updates."""
    keys = [host_updates_feed(settings)]
    args: list[str | int | bytes] = [HOST_UPDATES_MAXLEN, HOST_UPDATES_FEED_MAXLEN]
    for one in changes:
        keys += [host_seq_key(settings, one.host_id), host_updates_stream(settings, one.host_id)]
        args += [
            str(one.host_id),
            one.event_type,
            one.booking_id or "",
            str(one.property_id),
            one.events,
            one.version,
            int(one.reload),
            encode_days(one.days),
        ]
    return keys, args


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class Aggregator:
    """One consumer of the group; `aggregate_once` is a round tests and the worker job call."""

    pool: asyncpg.Pool
    redis: Redis
    settings: Settings
    consumer: str = field(default_factory=consumer_name)
    batch_size: int = BATCH_SIZE
    # None: the settings' `events_claim_idle_seconds`; tests pass 0 to take over at once.
    claim_idle_ms: int | None = None
    max_attempts: int = MAX_ATTEMPTS
    # Start by re-reading our own pending messages (a restart under the same name, a failed round).
    own_pending: bool = True
    _announce_script: AsyncScript = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._announce_script = self.redis.register_script(ANNOUNCE_LUA)

    @property
    def stream(self) -> str:
        return events_stream(self.settings)

    async def ensure_group(self) -> None:
        """Create the group reading from the stream's start, so events published before it existed count."""
        try:
            await self.redis.xgroup_create(self.stream, EVENTS_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self, *, block_ms: int | None, claim: bool) -> list[Entry]:
        """Own pending messages first, then messages of dead consumers, then new ones."""
        entries: list[Entry] = []
        if self.own_pending:
            entries += await self._read_group("0", None)
            self.own_pending = False
        if claim and len(entries) < self.batch_size:
            claimed = await self.redis.xautoclaim(
                self.stream,
                EVENTS_GROUP,
                self.consumer,
                min_idle_time=self._claim_idle_ms(),
                start_id="0-0",
                count=self.batch_size - len(entries),
            )
            entries += claimed[1]
        if len(entries) < self.batch_size:
            entries += await self._read_group(">", None if entries else block_ms)
        return entries

    def _claim_idle_ms(self) -> int:
        if self.claim_idle_ms is None:
            return self.settings.events_claim_idle_seconds * 1000
        return self.claim_idle_ms

    async def _read_group(self, start: str, block_ms: int | None) -> list[Entry]:
        answer: Any = await self.redis.xreadgroup(
            EVENTS_GROUP, self.consumer, {self.stream: start}, count=self.batch_size, block=block_ms
        )
        return list(answer[0][1]) if answer else []

    async def aggregate_once(self, *, block_ms: int | None = None, claim: bool = True) -> int:
        """One round; answers how many messages were settled (acked or dead-lettered)."""
        entries = await self.read(block_ms=block_ms, claim=claim)
        if not entries:
            return 0
        try:
            return await self._settle(entries)
        except BaseException:
            self.own_pending = True
            raise

    async def _settle(self, entries: list[Entry]) -> int:
        messages: list[tuple[bytes, OutboxMessage]] = []
        settled: list[bytes] = []
        for message_id, fields in entries:
            if fields is None:  # trimmed away before it was claimed: nothing left to apply
                settled.append(message_id)
                continue
            try:
                messages.append((message_id, decode(fields[b"e"])))
            except (KeyError, msgspec.DecodeError, msgspec.ValidationError) as exc:
                settled += await self._failed(message_id, fields, f"undecodable event: {exc}")
        try:
            changes = await self._apply([message for _, message in messages])
            settled += [message_id for message_id, _ in messages]
        except MalformedEvent:
            changes = []
            for message_id, message in messages:
                try:
                    changes += await self._apply([message])
                    settled.append(message_id)
                except MalformedEvent as exc:
                    settled += await self._failed(message_id, {b"e": msgspec.json.encode(message)}, str(exc))
        await self._settled(settled, changes)
        return len(settled)

    async def _apply(self, messages: list[OutboxMessage]) -> list[HostChange]:
        if not messages:
            return []
        async with self.pool.acquire() as connection, connection.transaction():
            return await apply_batch(connection, messages, self.settings.host_fee_bps)

    async def _failed(self, message_id: bytes, fields: dict[bytes, bytes], error: str) -> list[bytes]:
        """Count a failed attempt; answers [message_id] once it has been moved to the dead-letter stream."""
        attempts = await self.redis.hincrby(failures_key(self.settings), message_id.decode(), 1)
        log.warning("event failed", extra={"message_id": message_id.decode(), "attempts": attempts, "error": error})
        if attempts < self.max_attempts:
            self.own_pending = True
            return []
        dead: dict[Any, Any] = {**fields, "message_id": message_id, "error": error, "attempts": attempts}
        await self.redis.xadd(dead_letter_stream(self.settings), dead, maxlen=DEAD_LETTER_MAXLEN, approximate=True)
        return [message_id]

    async def _settled(self, settled: list[bytes], changes: Sequence[HostChange]) -> None:
        """Acknowledge, and tell each host whose numbers changed, in one round trip after the commit.

        The script goes as a plain EVALSHA: redis-py's script objects in a pipeline first ask `SCRIPT EXISTS`, a
        round trip of its own in every round (the round's slowest step in `bench/realtime.py`'s profile). A Redis
        that does not know the script (restarted, flushed) answers NOSCRIPT and changes nothing; the script object
        then loads it and announces once.
        """
        if not settled and not changes:
            return
        pipe = self.redis.pipeline(transaction=False)
        if settled:
            pipe.xack(self.stream, EVENTS_GROUP, *settled)
            pipe.hdel(failures_key(self.settings), *settled)
        keys, args = announce_arguments(self.settings, changes)
        if changes:
            pipe.evalsha(self._announce_script.sha, len(keys), *keys, *args)
        try:
            await pipe.execute()
        except NoScriptError:
            await self._announce_script(keys=keys, args=args)


async def trim_point(redis: Redis, stream: str) -> bytes | str | None:
    """The oldest entry the group still needs: its oldest pending entry, else the last one it delivered."""
    groups = {group["name"]: group for group in await redis.xinfo_groups(stream)}
    group = groups.get(EVENTS_GROUP.encode()) or groups.get(EVENTS_GROUP)
    if group is None:
        return None
    point: bytes | str = group["last-delivered-id"]
    pending = await redis.xpending(stream, EVENTS_GROUP)
    if pending["pending"]:
        point = min(point, pending["min"], key=_stream_id)
    return point


async def trim_consumed(redis: Redis, stream: str) -> None:
    """Drop entries older than the trim point (approximately: Redis frees whole nodes)."""
    point = await trim_point(redis, stream)
    if point is not None:
        await redis.xtrim(stream, minid=point, approximate=True)


def _stream_id(value: bytes | str) -> tuple[int, int]:
    text = value.decode() if isinstance(value, bytes) else value
    millis, _, sequence = text.partition("-")
    return int(millis), int(sequence or 0)


async def aggregate_events(settings: Settings) -> None:
    """Worker job: consume until cancelled; claims dead consumers' messages and trims every few seconds."""
    pool = await create_pool(settings)
    redis = redis_client(settings)
    aggregator = Aggregator(pool, redis, settings)
    vacuum = TableVacuum(pool, CHURNED_TABLES)
    next_claim = 0.0
    group_ready = False  # checked again after any failure: a Redis that restarted empty has lost the group
    try:
        while True:
            try:
                if not group_ready:
                    await aggregator.ensure_group()
                    group_ready = True
                now = time.monotonic()
                claim = now >= next_claim
                if claim:
                    next_claim = now + CLAIM_EVERY_S
                    await trim_consumed(redis, aggregator.stream)
                vacuum.count(await aggregator.aggregate_once(block_ms=BLOCK_MS, claim=claim))
            except Exception:
                group_ready = False
                log.exception("aggregation round failed; its events stay pending")
                await asyncio.sleep(RETRY_DELAY_S)
    finally:
        await vacuum.close()
        await redis.aclose()
        await pool.close()

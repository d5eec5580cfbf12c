"""Reading a host's update stream, which the aggregators write (`ingest.aggregator.ANNOUNCE_LUA`).

Each entry has a per-host `seq` from `INCR` in the same script as its `XADD`, so seqs in the stream are
consecutive and the stream's last entry always carries the host's current seq.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from redis.asyncio import Redis

from ingest.streams import DayDifferences, decode_days, host_updates_stream
from realtime.messages import Cause
from service.settings import Settings

START = b"0-0"


@dataclass(frozen=True)
class HostUpdate:
    """One entry of a host's update stream, or of the feed of all hosts' updates, whose entries also carry the
    host's metrics `version` after the change and either its `metric_days` differences or `reload`."""

    stream_id: bytes
    seq: int
    cause: Cause
    version: int = 0
    reload: bool = False
    days_json: bytes = b"{}"

    @classmethod
    def from_entry(cls, stream_id: bytes, fields: dict[bytes, bytes]) -> HostUpdate:
        booking_id = fields.get(b"booking_id", b"").decode()
        return cls(
            stream_id=stream_id,
            seq=int(fields[b"seq"]),
            cause=Cause(fields[b"event_type"].decode(), uuid.UUID(booking_id) if booking_id else None),
            version=int(fields.get(b"version", 0)),
            reload=fields.get(b"reload") == b"1",
            days_json=fields.get(b"days", b"{}"),
        )

    @cached_property
    def days(self) -> DayDifferences:
        """Decoded once however many windows add them."""
        return decode_days(self.days_json)


async def latest(redis: Redis, settings: Settings, host_id: uuid.UUID) -> HostUpdate | None:
    """The host's newest update, or None before their first."""
    entries: Any = await redis.xrevrange(host_updates_stream(settings, host_id), count=1)
    return HostUpdate.from_entry(*entries[0]) if entries else None


async def current_seq(redis: Redis, settings: Settings, host_id: uuid.UUID) -> int:
    newest = await latest(redis, settings, host_id)
    return newest.seq if newest else 0


async def missed_since(redis: Redis, settings: Settings, host_id: uuid.UUID, since: int) -> list[HostUpdate] | None:
    """Every update after `since`, in order, or None when the stream no longer holds them all (trimmed) or
    `since` is not a seq this host has reached."""
    entries: Any = await redis.xrange(host_updates_stream(settings, host_id))
    updates = [HostUpdate.from_entry(stream_id, fields) for stream_id, fields in entries]
    current = updates[-1].seq if updates else 0
    if since > current:
        return None
    missed = [update for update in updates if update.seq > since]
    if missed and missed[0].seq != since + 1:
        return None
    return missed

"""Names of the Redis streams the pipeline uses, and the one wire format of an event on them.

An event travels as a single field `e` holding the outbox row as JSON, so the relay and the aggregators agree on
one schema (`OutboxMessage`), decoded by msgspec without copies into Python dicts field by field.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec

from service.settings import Settings

EVENTS_GROUP = "aggregators"
HOST_UPDATES_MAXLEN = 1_000
# Every host's updates in one stream: a gateway process follows it with one reader; 10,000 entries are many
# seconds of updates at the busiest, and a reader that fell further behind only sees later updates coalesced.
HOST_UPDATES_FEED_MAXLEN = 10_000
DEAD_LETTER_MAXLEN = 10_000


class OutboxMessage(msgspec.Struct, frozen=True):
    """An outbox row as published; `seq` is its outbox id, the version aggregators compare."""

    seq: int
    event_id: uuid.UUID
    type: str
    v: int
    occurred_at: dt.datetime
    host_id: uuid.UUID
    property_id: uuid.UUID
    payload: dict[str, Any]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(OutboxMessage)


def encode(message: OutboxMessage) -> bytes:
    return _encoder.encode(message)


def decode(raw: bytes) -> OutboxMessage:
    """Raises `msgspec.DecodeError` / `ValidationError` for a malformed event (a dead-letter candidate)."""
    return _decoder.decode(raw)


# A host's `metric_days` differences of one transaction: property -> local date -> `METRIC_COLUMNS` differences.
DayDifferences = dict[uuid.UUID, dict[dt.date, list[int]]]

_days_decoder = msgspec.json.Decoder(DayDifferences)


def encode_days(days: DayDifferences) -> bytes:
    return _encoder.encode(days)


def decode_days(raw: bytes) -> DayDifferences:
    return _days_decoder.decode(raw)


def events_stream(settings: Settings) -> str:
    return f"{settings.redis_prefix}:events"


def dead_letter_stream(settings: Settings) -> str:
    return f"{settings.redis_prefix}:events:dead"


def failures_key(settings: Settings) -> str:
    """A hash of stream message id -> failed attempts, cleared when the message is acked or dead-lettered."""
    return f"{settings.redis_prefix}:events:failures"


def host_updates_stream(settings: Settings, host_id: uuid.UUID) -> str:
    return f"{settings.redis_prefix}:host:{host_id}:updates"


def host_updates_feed(settings: Settings) -> str:
    """Every host's updates, each entry the same as on the host's stream plus `host_id`."""
    return f"{settings.redis_prefix}:hosts:updates"


def host_seq_key(settings: Settings, host_id: uuid.UUID) -> str:
    return f"{settings.redis_prefix}:host:{host_id}:seq"

"""Apply a batch of events to the metrics tables in the caller's transaction.

Concurrency: every event names its property; a batch first locks its properties' `metric_properties` rows
(creating placeholders) in property-id order. All other rows a batch writes belong to those properties, so two
workers never interleave on one property and lock order never deadlocks.

Idempotency: see `ingest.contributions`. A booking's state is replaced only by an event with a higher outbox id
(`seq`); facts carried by single events (refund due, refunds by refund_id, expiry time) are merged as sets. Block
and property events are folded the same way, so any order and any repetition gives the same rows.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec

from ingest.contributions import (
    METRIC_COLUMNS,
    BookingFacts,
    Contribution,
    add_into,
    booking_contribution,
    booking_state,
)
from ingest.streams import DayDifferences, OutboxMessage

BOOKING_EVENT_PREFIXES = ("booking.", "payment.")
METRIC_EVENT_PREFIXES = ("property.", "availability.", *BOOKING_EVENT_PREFIXES)


@dataclass
class PropertyFacts:
    timezone: str | None
    currency: str | None
    listed_at: dt.datetime | None
    delisted_at: dt.datetime | None
    last_seq: int


@dataclass(frozen=True)
class Change:
    """An applied event that changed something."""

    host_id: uuid.UUID
    event_type: str
    property_id: uuid.UUID
    booking_id: str | None
    seq: int  # the event's outbox id: a host's update names its change of the highest seq in the batch


@dataclass(frozen=True)
class HostChange:
    """What one transaction changed for one host, for the host's update stream: the host's new metrics version,
    the cause (its change of the highest seq), how many events changed something, and either the differences of
    its `metric_days` rows (`days`: property -> date -> `METRIC_COLUMNS` differences) or, when availability or a
    property changed (`reload`), only that its figures must be read again."""

    host_id: uuid.UUID
    version: int
    event_type: str
    property_id: uuid.UUID
    booking_id: str | None
    events: int
    reload: bool
    days: DayDifferences


class MalformedEvent(ValueError):
    """An event the aggregator cannot apply whatever it retries; it ends on the dead-letter stream."""


def is_booking_event(event_type: str) -> bool:
    """Events of a booking's life, whose effect on the metrics is a difference of `metric_days` rows."""
    return event_type.startswith(BOOKING_EVENT_PREFIXES)


def merge_booking(facts: BookingFacts | None, last_seq: int, message: OutboxMessage) -> tuple[BookingFacts, int]:
    """Fold one event into a booking's facts; answers the new facts and the new latest seq."""
    payload = message.payload
    try:
        state = booking_state(payload)
        merged = BookingFacts(
            state=facts.state if facts is not None and last_seq >= message.seq else state,
            refund_due=facts.refund_due if facts is not None else None,
            refunds=dict(facts.refunds) if facts is not None else {},
            expired_at=facts.expired_at if facts is not None else None,
        )
        if message.type == "booking.cancelled":
            merged.refund_due = int(payload["refund_due"])
        elif message.type == "payment.refunded":
            merged.refunds[str(payload["refund_id"])] = [str(payload["refunded_at"]), int(payload["amount"])]
        elif message.type == "booking.expired":
            merged.expired_at = message.occurred_at
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedEvent(f"{message.type} {message.event_id}: {exc!r}") from exc
    return merged, max(last_seq, message.seq)


def merge_property(facts: PropertyFacts, message: OutboxMessage) -> PropertyFacts:
    try:
        timezone, currency = str(message.payload["timezone"]), str(message.payload["currency"])
    except KeyError as exc:
        raise MalformedEvent(f"{message.type} {message.event_id}: {exc!r}") from exc
    newer = message.seq > facts.last_seq
    return PropertyFacts(
        timezone=timezone if newer or facts.timezone is None else facts.timezone,
        currency=currency if newer or facts.currency is None else facts.currency,
        listed_at=message.occurred_at if message.type == "property.created" else facts.listed_at,
        delisted_at=message.occurred_at if message.type == "property.deleted" else facts.delisted_at,
        last_seq=max(facts.last_seq, message.seq),
    )


async def apply_batch(
    connection: asyncpg.Connection, messages: list[OutboxMessage], host_fee_bps: int
) -> list[HostChange]:
    """Apply `messages` (any order, repeats allowed) inside the caller's transaction; answers what changed, per
    host in host-id order, each host with its metrics version bumped.

    Event types the metrics do not depend on (reviews, notifications...) are skipped.
    """
    messages = [message for message in messages if message.type.startswith(METRIC_EVENT_PREFIXES)]
    if not messages:
        return []
    host_of = {message.property_id: message.host_id for message in messages}
    property_ids = sorted(host_of)
    rows = await _lock_properties(connection, property_ids)
    # First events of a property: create placeholders, then lock them too. These locks can come after higher ids;
    # the rare deadlock that allows aborts one batch, which is retried like any failed round.
    if len(rows) < len(property_ids):
        known = {row["property_id"] for row in rows}
        new = [pid for pid in property_ids if pid not in known]
        await connection.execute(
            "INSERT INTO metric_properties (property_id, host_id) "
            "SELECT p, h FROM unnest($1::uuid[], $2::uuid[]) AS t(p, h) ORDER BY p ON CONFLICT DO NOTHING",
            new,
            [host_of[pid] for pid in new],
        )
        rows = [*rows, *await _lock_properties(connection, new)]
    before = {row["property_id"]: PropertyFacts(*list(row.values())[1:]) for row in rows}
    after = dict(before)
    changes: list[Change] = []
    blocks: list[OutboxMessage] = []
    by_booking: dict[str, list[OutboxMessage]] = defaultdict(list)
    for message in messages:
        if message.type.startswith("property."):
            merged = merge_property(after[message.property_id], message)
            if merged != after[message.property_id]:
                changes.append(Change(message.host_id, message.type, message.property_id, None, message.seq))
            after[message.property_id] = merged
        elif message.type.startswith("availability."):
            blocks.append(message)
        elif is_booking_event(message.type):
            try:
                by_booking[str(uuid.UUID(str(message.payload["booking_id"])))].append(message)
            except (KeyError, ValueError) as exc:
                raise MalformedEvent(f"{message.type} {message.event_id}: no booking_id") from exc
    changes += await _apply_blocks(connection, blocks)
    rezoned = [pid for pid in property_ids if after[pid].timezone != before[pid].timezone]
    bookings = await _apply_bookings(connection, by_booking, rezoned, before, after, host_fee_bps)
    await _store_properties(connection, {pid: facts for pid, facts in after.items() if facts != before[pid]})
    by_host: dict[uuid.UUID, list[Change]] = defaultdict(list)
    for change in [*changes, *bookings.changes]:
        by_host[change.host_id].append(change)
    versions = await _store(connection, bookings, sorted(by_host))
    return _host_changes(by_host, versions, bookings.days)


def _host_changes(
    by_host: dict[uuid.UUID, list[Change]], versions: dict[uuid.UUID, int], days: DayDifferences
) -> list[HostChange]:
    """One per changed host, in host-id order, with its new version."""
    host_changes = []
    for host_id in sorted(by_host):
        host = by_host[host_id]
        cause = max(host, key=lambda change: change.seq)
        host_changes.append(
            HostChange(
                host_id=host_id,
                version=versions[host_id],
                event_type=cause.event_type,
                property_id=cause.property_id,
                booking_id=cause.booking_id,
                events=len(host),
                reload=any(not is_booking_event(change.event_type) for change in host),
                days={change.property_id: days[change.property_id] for change in host if change.property_id in days},
            )
        )
    return host_changes


async def _lock_properties(connection: asyncpg.Connection, property_ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    return list(
        await connection.fetch(
            "SELECT property_id, timezone, currency, listed_at, delisted_at, last_seq FROM metric_properties "
            "WHERE property_id = ANY($1::uuid[]) ORDER BY property_id FOR UPDATE",
            property_ids,
        )
    )


async def _apply_blocks(connection: asyncpg.Connection, messages: list[OutboxMessage]) -> list[Change]:
    if not messages:
        return []
    try:
        rows = [
            (
                uuid.UUID(str(m.payload["block_id"])),
                m.property_id,
                dt.date.fromisoformat(m.payload["start"]),
                dt.date.fromisoformat(m.payload["end"]),
                m.type == "availability.unblocked",
            )
            for m in messages
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedEvent(f"availability event: {exc!r}") from exc
    await connection.executemany(
        'INSERT INTO metric_blocks (block_id, property_id, start, "end", removed) VALUES ($1, $2, $3, $4, $5) '
        "ON CONFLICT (block_id) DO UPDATE SET removed = metric_blocks.removed OR EXCLUDED.removed",
        rows,
    )
    return [Change(m.host_id, m.type, m.property_id, None, m.seq) for m in messages]


async def _apply_bookings(
    connection: asyncpg.Connection,
    by_booking: dict[str, list[OutboxMessage]],
    rezoned: list[uuid.UUID],
    before: dict[uuid.UUID, PropertyFacts],
    after: dict[uuid.UUID, PropertyFacts],
    host_fee_bps: int,
) -> BookingWrites:
    """Fold the events into the bookings' stored states; answers what to write (`_store` writes it)."""
    if not by_booking and not rezoned:
        return BookingWrites([], [], {}, {})
    stored = await connection.fetch(
        "SELECT booking_id, property_id, host_id, last_seq, state::text, refund_due, refunds::text, expired_at "
        "FROM metric_bookings WHERE booking_id = ANY($1::uuid[]) OR property_id = ANY($2::uuid[])",
        list(by_booking),
        rezoned,
    )
    known = {str(row["booking_id"]): row for row in stored}
    deltas: dict[uuid.UUID, Contribution] = defaultdict(dict)
    hosts: dict[uuid.UUID, uuid.UUID] = {}
    writes: list[tuple[Any, ...]] = []
    changes: list[Change] = []
    for booking_id in sorted(set(by_booking) | set(known)):
        row = known.get(booking_id)
        facts = _facts(row) if row is not None else None
        last_seq: int = row["last_seq"] if row is not None else 0
        events = by_booking.get(booking_id, [])
        if events:
            property_id, host_id = events[0].property_id, events[0].host_id
        else:
            assert row is not None  # a booking with no event here was loaded because its property was rezoned
            property_id, host_id = row["property_id"], row["host_id"]
        merged, merged_seq = facts, last_seq
        for message in events:
            merged, merged_seq = merge_booking(merged, merged_seq, message)
        assert merged is not None
        if facts == merged and merged_seq == last_seq and property_id not in rezoned:
            continue
        old = booking_contribution(facts, before[property_id].timezone, host_fee_bps) if facts else {}
        try:
            new = booking_contribution(merged, after[property_id].timezone, host_fee_bps)
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedEvent(f"booking {booking_id}: {exc!r}") from exc
        add_into(deltas[property_id], old, -1)
        add_into(deltas[property_id], new, +1)
        hosts[property_id] = host_id
        if facts != merged or merged_seq != last_seq:
            writes.append(_booking_row(booking_id, property_id, host_id, merged_seq, merged))
            if old != new:  # a new hold or a payment record alone moves no figure: no update for the host
                changes += [Change(host_id, m.type, property_id, booking_id, m.seq) for m in events[-1:]]
    days = {
        property_id: {day: values for day, values in sorted(contribution.items()) if any(values)}
        for property_id, contribution in sorted(deltas.items())
    }
    return BookingWrites(changes, writes, days, hosts)


def _facts(row: asyncpg.Record) -> BookingFacts:
    return BookingFacts(
        state=msgspec.json.decode(row["state"]),
        refund_due=row["refund_due"],
        refunds=msgspec.json.decode(row["refunds"]),
        expired_at=row["expired_at"],
    )


def _booking_row(
    booking_id: str, property_id: uuid.UUID, host_id: uuid.UUID, seq: int, facts: BookingFacts
) -> tuple[Any, ...]:
    return (
        uuid.UUID(booking_id),
        property_id,
        host_id,
        seq,
        msgspec.json.encode(facts.state).decode(),
        facts.refund_due,
        msgspec.json.encode(facts.refunds).decode(),
        facts.expired_at,
    )


# The bookings' new states, their `metric_days` differences and the changed hosts' versions in one statement (one
# round trip). The rows written belong to properties the batch has locked; the versions are bumped in host-id
# order after those locks, so two batches never wait on each other in a cycle, and each bump holds the host's row
# until commit, so a host's versions commit in order. Built from the fixed column tuple, never from input.
STORE = (  # noqa: S608
    "WITH stored_bookings AS ("
    "  INSERT INTO metric_bookings "
    "  (booking_id, property_id, host_id, last_seq, state, refund_due, refunds, expired_at) "
    "  SELECT b, p, h, s, st::jsonb, rd, rf::jsonb, e FROM unnest("
    "  $1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[], $5::text[], $6::int[], $7::text[], $8::timestamptz[]"
    "  ) AS t(b, p, h, s, st, rd, rf, e) "
    "  ON CONFLICT (booking_id) DO UPDATE SET last_seq = EXCLUDED.last_seq, state = EXCLUDED.state, "
    "  refund_due = EXCLUDED.refund_due, refunds = EXCLUDED.refunds, expired_at = EXCLUDED.expired_at"
    "), stored_days AS ("
    "  INSERT INTO metric_days (property_id, day, host_id, {columns}) "
    "  SELECT * FROM unnest($9::uuid[], $10::date[], $11::uuid[], {arrays}) "
    "  ON CONFLICT (property_id, day) DO UPDATE SET {sums}"
    ") "
    "INSERT INTO metric_hosts (host_id, version) SELECT h, 1 FROM unnest(${hosts}::uuid[]) AS t(h) ORDER BY h "
    "ON CONFLICT (host_id) DO UPDATE SET version = metric_hosts.version + 1 RETURNING host_id, version"
).format(
    columns=", ".join(METRIC_COLUMNS),
    arrays=", ".join(f"${index}::bigint[]" for index in range(12, 12 + len(METRIC_COLUMNS))),
    sums=", ".join(f"{name} = metric_days.{name} + EXCLUDED.{name}" for name in METRIC_COLUMNS),
    hosts=12 + len(METRIC_COLUMNS),
)


@dataclass
class BookingWrites:
    """What folding a batch's booking events changed: the changes, the bookings' new stored states, and per
    property the nonzero differences of its `metric_days` rows (and its host, for those rows)."""

    changes: list[Change]
    states: list[tuple[Any, ...]]
    days: DayDifferences
    hosts: dict[uuid.UUID, uuid.UUID]


async def _store(
    connection: asyncpg.Connection, bookings: BookingWrites, hosts: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Write the bookings' states and days and bump the hosts' versions; answers each host's new version."""
    if not bookings.states and not bookings.days and not hosts:
        return {}
    day_rows = [
        (property_id, day, bookings.hosts[property_id], *values)
        for property_id, days in bookings.days.items()
        for day, values in days.items()
    ]
    rows = await connection.fetch(
        STORE,
        *_columns(bookings.states, 8),
        *_columns(day_rows, 3 + len(METRIC_COLUMNS)),
        hosts,
    )
    return {row["host_id"]: row["version"] for row in rows}


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as the column arrays `unnest` takes (`width` empty arrays for no rows)."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


async def _store_properties(connection: asyncpg.Connection, changed: dict[uuid.UUID, PropertyFacts]) -> None:
    if not changed:
        return
    await connection.executemany(
        "UPDATE metric_properties SET timezone = $2, currency = $3, listed_at = $4, delisted_at = $5, last_seq = $6 "
        "WHERE property_id = $1",
        [(pid, f.timezone, f.currency, f.listed_at, f.delisted_at, f.last_seq) for pid, f in changed.items()],
    )

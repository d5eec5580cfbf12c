"""`staypulse metrics verify` and `rebuild`: the metrics recomputed from Postgres, compared or written back.

The expected rows come from the service's own tables (properties, availability_blocks, bookings) through the same
pure contribution functions the aggregators use, so verify checks the pipeline (nothing lost, nothing counted
twice, order irrelevant), not two spellings of the definitions. Facts the tables do not keep come from the
outbox, which is Postgres too: the `refund_due` granted at cancellation, refunds paid (`payment.refunded`, until
payments keeps a refunds table), when a hold expired and when a property was listed or delisted.

Run verify when the pipeline has caught up; it reports unpublished outbox rows first, since events still in flight
show up as differences.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec

from ingest.contributions import METRIC_COLUMNS, BookingFacts, add_into, booking_contribution
from ingest.pg import connect
from service.settings import Settings

PROPERTIES = """
SELECT p.id, p.host_id, p.timezone, p.currency,
       coalesce((SELECT min(o.occurred_at) FROM outbox_events o
                 WHERE o.property_id = p.id AND o.type = 'property.created'), p.created_at) AS listed_at,
       (SELECT max(o.occurred_at) FROM outbox_events o
        WHERE o.property_id = p.id AND o.type = 'property.deleted') AS delisted_at,
       coalesce((SELECT max(o.id) FROM outbox_events o
                 WHERE o.property_id = p.id AND o.type LIKE 'property.%'), 0) AS last_seq
FROM properties p ORDER BY p.id
"""

BOOKINGS = """
SELECT b.id, b.property_id, b.host_id, b.status, b.check_in, b.check_out, b.nightly_prices, b.cleaning_fee,
       b.total_amount, b.created_at, b.confirmed_at, b.cancelled_at,
       e.last_seq, e.refund_due, e.expired_at, coalesce(e.refunds, '{}')::text AS refunds
FROM bookings b LEFT JOIN (
    SELECT (payload->>'booking_id')::uuid AS booking_id, max(id) AS last_seq,
           max((payload->>'refund_due')::int) FILTER (WHERE type = 'booking.cancelled') AS refund_due,
           max(occurred_at) FILTER (WHERE type = 'booking.expired') AS expired_at,
           jsonb_object_agg(payload->>'refund_id',
                            jsonb_build_array(payload->>'refunded_at', (payload->>'amount')::int))
               FILTER (WHERE type = 'payment.refunded') AS refunds
    FROM outbox_events WHERE type LIKE 'booking.%' OR type LIKE 'payment.%' GROUP BY 1
) e ON e.booking_id = b.id
"""


@dataclass(frozen=True)
class ExpectedProperty:
    host_id: uuid.UUID
    timezone: str
    currency: str
    listed_at: dt.datetime | None
    delisted_at: dt.datetime | None
    last_seq: int


@dataclass
class Expected:
    properties: dict[uuid.UUID, ExpectedProperty]
    blocks: dict[uuid.UUID, tuple[uuid.UUID, dt.date, dt.date]]
    bookings: list[tuple[Any, ...]]  # rows for metric_bookings
    days: dict[tuple[uuid.UUID, dt.date], list[int]]


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None


async def expected_metrics(connection: asyncpg.Connection, host_fee_bps: int) -> Expected:
    properties = {row["id"]: ExpectedProperty(*list(row.values())[1:]) for row in await connection.fetch(PROPERTIES)}
    blocks = {
        row["id"]: (row["property_id"], row["during"].lower, row["during"].upper)
        for row in await connection.fetch("SELECT id, property_id, during FROM availability_blocks")
    }
    days: dict[tuple[uuid.UUID, dt.date], list[int]] = {}
    per_property: dict[uuid.UUID, dict[dt.date, list[int]]] = {}
    bookings = []
    for row in await connection.fetch(BOOKINGS):
        facts = BookingFacts(
            state={
                "status": row["status"],
                "check_in": row["check_in"].isoformat(),
                "check_out": row["check_out"].isoformat(),
                "nightly_prices": list(row["nightly_prices"]),
                "cleaning_fee": row["cleaning_fee"],
                "total_amount": row["total_amount"],
                "created_at": _iso(row["created_at"]),
                "confirmed_at": _iso(row["confirmed_at"]),
                "cancelled_at": _iso(row["cancelled_at"]),
            },
            refund_due=row["refund_due"],
            refunds=msgspec.json.decode(row["refunds"]),
            expired_at=row["expired_at"],
        )
        prop = properties[row["property_id"]]
        add_into(
            per_property.setdefault(row["property_id"], {}), booking_contribution(facts, prop.timezone, host_fee_bps), 1
        )
        bookings.append(
            (
                row["id"],
                row["property_id"],
                row["host_id"],
                row["last_seq"] or 0,
                msgspec.json.encode(facts.state).decode(),
                facts.refund_due,
                msgspec.json.encode(facts.refunds).decode(),
                facts.expired_at,
            )
        )
    for property_id, contribution in per_property.items():
        for day, values in contribution.items():
            if any(values):
                days[(property_id, day)] = values
    return Expected(properties, blocks, bookings, days)


@dataclass(frozen=True)
class Verification:
    unpublished: int  # outbox events not yet relayed: differences may only mean they are in flight
    differences: list[str]  # one line each; empty when the kept metrics equal the recompute


async def verify(settings: Settings) -> Verification:
    """Compare the kept metrics with a recompute, in one consistent snapshot of the database."""
    connection = await connect(settings)
    try:
        async with connection.transaction(isolation="repeatable_read", readonly=True):
            unpublished = await connection.fetchval("SELECT count(*) FROM outbox_events WHERE published_at IS NULL")
            expected = await expected_metrics(connection, settings.host_fee_bps)
            return Verification(unpublished, await _compare(connection, expected))
    finally:
        await connection.close()


async def _compare(connection: asyncpg.Connection, expected: Expected) -> list[str]:
    differences = []
    kept_properties = {
        row["property_id"]: ExpectedProperty(*list(row.values())[1:])
        for row in await connection.fetch(
            "SELECT property_id, host_id, timezone, currency, listed_at, delisted_at, last_seq FROM metric_properties"
        )
    }
    for property_id in sorted(set(kept_properties) | set(expected.properties)):
        kept, want = kept_properties.get(property_id), expected.properties.get(property_id)
        if kept is not None and want is not None:
            kept = ExpectedProperty(**{**kept.__dict__, "last_seq": want.last_seq})
        if kept != want:
            differences.append(f"property {property_id}: kept {kept}, expected {want}")
    kept_blocks = {
        row["block_id"]: (row["property_id"], row["start"], row["end"])
        for row in await connection.fetch(
            'SELECT block_id, property_id, start, "end" FROM metric_blocks WHERE NOT removed'
        )
    }
    for block_id in sorted(set(kept_blocks) | set(expected.blocks)):
        if kept_blocks.get(block_id) != expected.blocks.get(block_id):
            differences.append(
                f"block {block_id}: kept {kept_blocks.get(block_id)}, expected {expected.blocks.get(block_id)}"
            )
    kept_days = {
        (row[0], row[1]): list(row[2:])
        for row in await connection.fetch(f"SELECT property_id, day, {', '.join(METRIC_COLUMNS)} FROM metric_days")  # noqa: S608 - fixed columns
        if any(row[2:])
    }
    zero = [0] * len(METRIC_COLUMNS)
    for key in sorted(set(kept_days) | set(expected.days)):
        kept_row, want_row = kept_days.get(key, zero), expected.days.get(key, zero)
        for column, kept_value, want_value in zip(METRIC_COLUMNS, kept_row, want_row, strict=True):
            if kept_value != want_value:
                differences.append(f"{key[0]} {key[1]} {column}: kept {kept_value}, expected {want_value}")
    return differences


@dataclass(frozen=True)
class Rebuilt:
    properties: int
    blocks: int
    bookings: int
    days: int


async def rebuild(settings: Settings) -> Rebuilt:
    """Replace the metrics tables with a recompute; aggregators wait on the table locks meanwhile and then carry
    on, ignoring events no newer than the rebuilt state (`last_seq`)."""
    connection = await connect(settings)
    try:
        async with connection.transaction():
            await connection.execute(
                "LOCK TABLE metric_properties, metric_blocks, metric_bookings, metric_days IN EXCLUSIVE MODE"
            )
            expected = await expected_metrics(connection, settings.host_fee_bps)
            await connection.execute("TRUNCATE metric_properties, metric_blocks, metric_bookings, metric_days")
            await connection.copy_records_to_table(
                "metric_properties",
                records=[(pid, *p.__dict__.values()) for pid, p in expected.properties.items()],
                columns=["property_id", "host_id", "timezone", "currency", "listed_at", "delisted_at", "last_seq"],
            )
            await connection.copy_records_to_table(
                "metric_blocks",
                records=[(bid, *block, False) for bid, block in expected.blocks.items()],
                columns=["block_id", "property_id", "start", "end", "removed"],
            )
            await connection.executemany(
                "INSERT INTO metric_bookings "
                "(booking_id, property_id, host_id, last_seq, state, refund_due, refunds, expired_at) "
                "VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7::jsonb, $8)",
                expected.bookings,
            )
            await connection.copy_records_to_table(
                "metric_days",
                records=[
                    (pid, day, expected.properties[pid].host_id, *values)
                    for (pid, day), values in sorted(expected.days.items())
                ],
                columns=["property_id", "day", "host_id", *METRIC_COLUMNS],
            )
            # Figures held by the realtime gateway are at the old versions: the next update of each host finds
            # its version skipped and reads them again.
            await connection.execute("UPDATE metric_hosts SET version = version + 1")
    finally:
        await connection.close()
    return Rebuilt(len(expected.properties), len(expected.blocks), len(expected.bookings), len(expected.days))

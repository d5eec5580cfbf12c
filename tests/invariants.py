"""The end state every fault drill must reach, checked from Postgres, Redis and Stripe (localstripe), never from
what the test itself remembers.

(i)   The pipeline caught up: every outbox row published; the consumer group was delivered every stream entry and
      acknowledged it, nothing dead-lettered; and the aggregators' own bookkeeping shows each event applied: every
      booking's kept state (`metric_bookings`: newest outbox id, state, refund due, refunds paid by id, expiry)
      and every property's newest event id (`metric_properties.last_seq`) equal what the outbox and the service's
      tables say (`ingest.recompute.expected_metrics`, the recompute `metrics verify` uses).
(ii)  `metrics verify` (`ingest.recompute.verify`) finds no difference: nothing lost, nothing counted twice.
(iii) No two live (PENDING or CONFIRMED) bookings of a property overlap.
(iv)  Refunds: at most one per booking and reason, each settled; a booking's refunded amount is the sum of its
      refunds and never exceeds what was paid; Stripe holds exactly those refunds for the PaymentIntent.
(v)   Every booking's event trail matches its state: `booking.created` first, then only moves the state machine
      allows, ending in the booking's status; at most one `payment.succeeded`, present exactly when the payment
      succeeded; one `payment.refunded` per refund paid; the newest event carries the booking's status and
      refunded amount.

`assert_end_state` checks all of them over the whole database, so it is for tests with a database of their own
(`own_stack`); the scoped checks take the bookings or properties a test on the shared database made.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import msgspec

from ingest.pg import connect
from ingest.recompute import expected_metrics, verify
from ingest.streams import EVENTS_GROUP, dead_letter_stream, events_stream
from service.app import redis_client
from service.bookings.lifecycle import ALLOWED_MOVES, LATE_PAYMENT_MOVES
from service.bookings.models import BookingStatus
from service.demo.card_payment import stripe_client
from service.settings import Settings
from tests.waiting import eventually

CAUGHT_UP_TIMEOUT_S = 60.0

OVERLAPS = """
SELECT a.id, b.id FROM bookings a JOIN bookings b
  ON a.property_id = b.property_id AND a.id < b.id
 AND daterange(a.check_in, a.check_out) && daterange(b.check_in, b.check_out)
WHERE a.status IN ('PENDING', 'CONFIRMED') AND b.status IN ('PENDING', 'CONFIRMED')
  AND ($1::uuid[] IS NULL OR a.property_id = ANY($1::uuid[]))
"""


def _ids(values: Sequence[str | uuid.UUID] | None) -> list[uuid.UUID] | None:
    return None if values is None else [uuid.UUID(str(value)) for value in values]


async def pipeline_backlog(settings: Settings) -> list[str]:
    """(i): what the relay and the aggregators have not done yet, one line each; empty once they caught up."""
    backlog = await _redis_backlog(settings)
    connection = await connect(settings)
    try:
        async with connection.transaction(isolation="repeatable_read", readonly=True):
            unpublished = await connection.fetchval("SELECT count(*) FROM outbox_events WHERE published_at IS NULL")
            if unpublished:
                backlog.append(f"{unpublished} outbox rows not published")
            expected = await expected_metrics(connection, settings.host_fee_bps)
            kept_bookings = {
                row["booking_id"]: row
                for row in await connection.fetch(
                    "SELECT booking_id, last_seq, state::text, refund_due, refunds::text, expired_at "
                    "FROM metric_bookings"
                )
            }
            kept_property_seqs = {
                row["property_id"]: row["last_seq"]
                for row in await connection.fetch("SELECT property_id, last_seq FROM metric_properties")
            }
    finally:
        await connection.close()
    for booking_id, _, _, last_seq, state, refund_due, refunds, expired_at in expected.bookings:
        kept = kept_bookings.get(booking_id)
        want = (last_seq, msgspec.json.decode(state), refund_due, msgspec.json.decode(refunds), expired_at)
        have = None
        if kept is not None:
            have = (
                kept["last_seq"],
                msgspec.json.decode(kept["state"]),
                kept["refund_due"],
                msgspec.json.decode(kept["refunds"]),
                kept["expired_at"],
            )
        if have != want:
            backlog.append(f"booking {booking_id} not applied: kept {have}, expected {want}")
    for property_id, prop in expected.properties.items():
        if prop.last_seq and kept_property_seqs.get(property_id) != prop.last_seq:
            backlog.append(
                f"property {property_id}: newest event applied {kept_property_seqs.get(property_id)}, "
                f"newest in the outbox {prop.last_seq}"
            )
    return backlog


async def _redis_backlog(settings: Settings) -> list[str]:
    redis = redis_client(settings)
    stream = events_stream(settings)
    try:
        if not await redis.exists(stream):
            return []
        info: Any = await redis.xinfo_stream(stream)
        groups = {_text(group["name"]): group for group in await redis.xinfo_groups(stream)}
        dead = await redis.xlen(dead_letter_stream(settings))
    finally:
        await redis.aclose()
    group = groups.get(EVENTS_GROUP)
    if group is None:
        return [f"no consumer group {EVENTS_GROUP!r} on {stream}"]
    backlog = []
    if _text(group["last-delivered-id"]) != _text(info["last-generated-id"]):
        backlog.append(
            f"stream entries up to {_text(info['last-generated-id'])} not delivered "
            f"(last delivered {_text(group['last-delivered-id'])})"
        )
    if group["pending"]:
        backlog.append(f"{group['pending']} stream entries delivered but not acknowledged")
    if dead:
        backlog.append(f"{dead} events in the dead-letter stream")
    return backlog


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def wait_until_caught_up(settings: Settings, timeout_s: float = CAUGHT_UP_TIMEOUT_S) -> None:
    """Await (i) while workers run; fails with what is still outstanding at the deadline."""
    backlog: list[str] = []

    async def caught_up() -> bool:
        nonlocal backlog
        backlog = await pipeline_backlog(settings)
        return not backlog

    await eventually(caught_up, lambda: "the pipeline caught up; outstanding:\n" + "\n".join(backlog[:20]), timeout_s)


async def metrics_differences(settings: Settings) -> list[str]:
    """(ii): what `staypulse metrics verify` would print."""
    result = await verify(settings)
    unpublished = [f"verify ran with {result.unpublished} outbox rows unpublished"] if result.unpublished else []
    return unpublished + result.differences


async def overlapping_bookings(
    settings: Settings, property_ids: Sequence[str | uuid.UUID] | None = None
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(iii): pairs of live bookings of one property whose stays overlap (of these properties, or all)."""
    connection = await connect(settings)
    try:
        return [(row[0], row[1]) for row in await connection.fetch(OVERLAPS, _ids(property_ids))]
    finally:
        await connection.close()


async def refund_problems(settings: Settings, booking_ids: Sequence[str | uuid.UUID] | None = None) -> list[str]:
    """(iv), from our tables and from Stripe's own list of refunds per PaymentIntent."""
    scope = _ids(booking_ids)
    connection = await connect(settings)
    try:
        bookings = await connection.fetch(
            "SELECT id, status, total_amount, refunded_amount FROM bookings WHERE $1::uuid[] IS NULL OR id = ANY($1)",
            scope,
        )
        payments = {
            row["booking_id"]: row
            for row in await connection.fetch(
                "SELECT booking_id, payment_intent_id, amount, status FROM payments "
                "WHERE $1::uuid[] IS NULL OR booking_id = ANY($1)",
                scope,
            )
        }
        refunds: dict[uuid.UUID, list[Any]] = defaultdict(list)
        for row in await connection.fetch(
            "SELECT id, booking_id, reason, amount, status FROM refunds "
            "WHERE $1::uuid[] IS NULL OR booking_id = ANY($1)",
            scope,
        ):
            refunds[row["booking_id"]].append(row)
    finally:
        await connection.close()
    problems = []
    to_ask_stripe = []
    for booking in bookings:
        booking_id, refunded = booking["id"], booking["refunded_amount"]
        own = refunds.get(booking_id, [])
        name = f"booking {booking_id}"
        for reason, count in Counter(row["reason"] for row in own).items():
            if count > 1:
                problems.append(f"{name}: {count} refunds for {reason}")
        problems += [f"{name}: refund {row['id']} still {row['status']}" for row in own if row["status"] != "succeeded"]
        succeeded = [row for row in own if row["status"] == "succeeded"]
        if refunded != sum(row["amount"] for row in succeeded):
            problems.append(f"{name}: refunded_amount {refunded} but refunds paid {[r['amount'] for r in succeeded]}")
        payment = payments.get(booking_id)
        paid = payment["amount"] if payment is not None and payment["status"] == "succeeded" else 0
        if refunded > paid or refunded > booking["total_amount"]:
            problems.append(f"{name}: refunded {refunded} of {paid} paid (total {booking['total_amount']})")
        if own and booking["status"] != BookingStatus.CANCELLED:
            problems.append(f"{name}: refunds on a {booking['status']} booking")
        if payment is not None and paid:
            to_ask_stripe.append((name, payment["payment_intent_id"], refunded, {str(row["id"]) for row in succeeded}))
    for name, intent_id, refunded, refund_ids in to_ask_stripe:
        at_stripe = (
            await stripe_client(settings).v1.refunds.list_async(params={"payment_intent": intent_id, "limit": 100})
        ).data
        amounts = [refund.amount for refund in at_stripe]
        ours = {(refund.metadata.to_dict() if refund.metadata else {}).get("refund_id") for refund in at_stripe}
        if sum(amounts) != refunded or len(amounts) != len(refund_ids) or ours != refund_ids:
            problems.append(f"{name}: Stripe holds refunds {amounts} for {intent_id}, we recorded {refunded}")
    return problems


async def event_trail_problems(settings: Settings, booking_ids: Sequence[str | uuid.UUID] | None = None) -> list[str]:
    """(v): each booking's outbox events, in id order, against the state machine and the booking's row."""
    scope = _ids(booking_ids)
    connection = await connect(settings)
    try:
        bookings = await connection.fetch(
            "SELECT b.id, b.status, b.refunded_amount, p.status = 'succeeded' AS paid, "
            "  coalesce((SELECT array_agg(r.id::text || ':' || r.amount) FROM refunds r "
            "            WHERE r.booking_id = b.id AND r.status = 'succeeded'), '{}') AS refunds "
            "FROM bookings b LEFT JOIN payments p ON p.booking_id = b.id WHERE $1::uuid[] IS NULL OR b.id = ANY($1)",
            scope,
        )
        trails: dict[uuid.UUID, list[Any]] = defaultdict(list)
        for row in await connection.fetch(
            "SELECT (payload->>'booking_id')::uuid AS booking_id, type, payload->>'status' AS status, "
            "  (payload->>'refunded_amount')::int AS refunded_amount, "
            "  payload->>'refund_id' || ':' || (payload->>'amount') AS refund "
            "FROM outbox_events WHERE payload ? 'booking_id' "
            "  AND ($1::uuid[] IS NULL OR (payload->>'booking_id')::uuid = ANY($1)) ORDER BY id",
            scope,
        ):
            trails[row["booking_id"]].append(row)
    finally:
        await connection.close()
    problems = []
    for booking in bookings:
        problems += [f"booking {booking['id']}: {p}" for p in _trail_problems(booking, trails.get(booking["id"], []))]
    return problems


def _trail_problems(booking: Any, events: list[Any]) -> list[str]:
    types = [event["type"] for event in events]
    if not events or events[0]["type"] != "booking.created" or events[0]["status"] != BookingStatus.PENDING:
        return [f"trail does not start with a PENDING booking.created: {types}"]
    problems = []
    state = BookingStatus.PENDING
    for event in events[1:]:
        if event["type"].startswith("booking."):
            moved = BookingStatus(event["type"].removeprefix("booking.").upper())
            allowed = ALLOWED_MOVES[state] | LATE_PAYMENT_MOVES.get(state, frozenset())
            if moved not in allowed:
                problems.append(f"{state} -> {moved} is no allowed move: {types}")
            state = moved
        if event["status"] != state:
            problems.append(f"{event['type']} carries status {event['status']} while the booking was {state}")
    if state != booking["status"]:
        problems.append(f"the events end in {state} but the booking is {booking['status']}: {types}")
    if events[-1]["refunded_amount"] != booking["refunded_amount"]:
        problems.append(
            f"newest event says refunded {events[-1]['refunded_amount']}, the booking {booking['refunded_amount']}"
        )
    succeeded = types.count("payment.succeeded")
    if succeeded != (1 if booking["paid"] else 0):
        problems.append(f"{succeeded} payment.succeeded events for a payment that succeeded: {bool(booking['paid'])}")
    refunded = sorted(event["refund"] for event in events if event["type"] == "payment.refunded")
    if refunded != sorted(booking["refunds"]):
        problems.append(f"payment.refunded events {refunded} but refunds paid {sorted(booking['refunds'])}")
    return problems


async def assert_bookings_consistent(settings: Settings, booking_ids: Sequence[str | uuid.UUID]) -> None:
    """(iv) and (v) for these bookings: for tests on the shared database."""
    problems = await refund_problems(settings, booking_ids) + await event_trail_problems(settings, booking_ids)
    assert not problems, "\n".join(problems)


async def assert_end_state(settings: Settings) -> None:
    """(i) to (v) over the whole database, once the pipeline has caught up (see `wait_until_caught_up`)."""
    problems = await pipeline_backlog(settings)
    problems += await metrics_differences(settings)
    problems += [f"live bookings {a} and {b} overlap" for a, b in await overlapping_bookings(settings)]
    problems += await refund_problems(settings)
    problems += await event_trail_problems(settings)
    assert not problems, "\n".join(problems)

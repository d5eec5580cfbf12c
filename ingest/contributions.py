"""What a booking adds to the metrics of each local date, derived from its latest state alone.

This is the heart of idempotency: the aggregator keeps each booking's latest state and applies the difference
between the contribution of the state before and after an event. The same event twice, or a stale event arriving
after a newer one, leaves the state and so the contribution unchanged. `metrics verify` and `rebuild` derive the
expected rows from Postgres through these same functions.

Definitions (local dates of the property's current time zone):
- booked nights and accommodation revenue: each night of a CONFIRMED or COMPLETED booking, on that night's date,
  at its `nightly_prices` entry (after discount).
- gross earnings: accommodation after discount + cleaning fee, on the date the booking was confirmed; the booking
  also counts once in `bookings_confirmed`, its nights in `stay_nights` and its lead time (check-in minus the local
  date it was created) in `lead_time_days` on that date. A later cancellation does not undo this; refunds do.
- refunds: the host's share of money returned to the guest. Refunds paid (`payment.refunded`, keyed by refund_id)
  count on their `refunded_at` date; the part of the `refund_due` granted at cancellation not yet covered by paid
  refunds counts on the cancellation date. The guest's refund includes service fee and taxes, which never were the
  host's, so the host's share of a cumulative refund R is R * gross / total_amount (a full refund takes back
  exactly the gross). Bookings never confirmed earned nothing and have no refunds.
- host fees: `host_fee_bps` of gross on the confirmation date; each refund gives back the fee on the share
  refunded, on the refund date, so over a booking's life fees = bps of (gross - refunds). Rounded half up, computed
  on cumulative amounts so parts always add up to the whole.
- bookings_cancelled: confirmed bookings cancelled, on the cancellation date (dropped holds are not counted).
- bookings_expired: holds that ran out, on the date of their `booking.expired` event.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

METRIC_COLUMNS = (
    "booked_nights",
    "accommodation_revenue",
    "gross_earnings",
    "refunds",
    "host_fees",
    "bookings_confirmed",
    "bookings_cancelled",
    "bookings_expired",
    "stay_nights",
    "lead_time_days",
)
(BOOKED, REVENUE, GROSS, REFUNDS, FEES, CONFIRMED, CANCELLED, EXPIRED, STAY, LEAD) = range(len(METRIC_COLUMNS))

# The fields of `booking_event_fields` the contribution reads; the rest of a payload is not kept.
STATE_KEYS = (
    "status",
    "check_in",
    "check_out",
    "nightly_prices",
    "cleaning_fee",
    "total_amount",
    "created_at",
    "confirmed_at",
    "cancelled_at",
)
BOOKED_STATUSES = ("CONFIRMED", "COMPLETED")

Contribution = dict[dt.date, list[int]]


@dataclass
class BookingFacts:
    """A booking's latest state plus the facts only some of its events carry."""

    state: dict[str, Any]
    refund_due: int | None = None
    refunds: dict[str, list[Any]] = field(default_factory=dict)  # refund_id -> [refunded_at ISO, amount]
    expired_at: dt.datetime | None = None


def booking_state(payload: dict[str, Any]) -> dict[str, Any]:
    """The kept part of a `booking.*`/`payment.*` payload; a KeyError means a malformed event."""
    return {key: payload[key] for key in STATE_KEYS}


@cache
def _zone(timezone: str) -> ZoneInfo:
    return ZoneInfo(timezone)


def local_date(moment: dt.datetime | str, timezone: str) -> dt.date:
    when = dt.datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return when.astimezone(_zone(timezone)).date()


def fee(amount: int, bps: int) -> int:
    return (amount * bps + 5_000) // 10_000


def booking_contribution(facts: BookingFacts, timezone: str | None, host_fee_bps: int) -> Contribution:
    """The metric values this booking adds per local date (nothing until its property's zone is known)."""
    rows: Contribution = {}
    if timezone is None:
        return rows

    def add(day: dt.date, column: int, value: int) -> None:
        if value:
            rows.setdefault(day, [0] * len(METRIC_COLUMNS))[column] += value

    state = facts.state
    check_in = dt.date.fromisoformat(state["check_in"])
    prices: list[int] = state["nightly_prices"]
    if state["status"] in BOOKED_STATUSES:
        for offset, price in enumerate(prices):
            night = check_in + dt.timedelta(days=offset)
            add(night, BOOKED, 1)
            add(night, REVENUE, price)
    if state["confirmed_at"] is None:
        if state["status"] == "EXPIRED" and facts.expired_at is not None:
            add(local_date(facts.expired_at, timezone), EXPIRED, 1)
        return rows
    gross = sum(prices) + state["cleaning_fee"]
    confirmed_on = local_date(state["confirmed_at"], timezone)
    add(confirmed_on, GROSS, gross)
    add(confirmed_on, FEES, fee(gross, host_fee_bps))
    add(confirmed_on, CONFIRMED, 1)
    add(confirmed_on, STAY, len(prices))
    if state["created_at"] is not None:
        add(confirmed_on, LEAD, (check_in - local_date(state["created_at"], timezone)).days)
    if state["status"] == "CANCELLED" and state["cancelled_at"] is not None:
        add(local_date(state["cancelled_at"], timezone), CANCELLED, 1)
    total = state["total_amount"]
    refunded = 0
    host_share = 0
    for day, amount in _refunds_by_date(facts, timezone):
        refunded = min(total, refunded + amount)
        share = refunded * gross // total if total else 0
        add(day, REFUNDS, share - host_share)
        add(day, FEES, fee(gross - share, host_fee_bps) - fee(gross - host_share, host_fee_bps))
        host_share = share
    return rows


def _refunds_by_date(facts: BookingFacts, timezone: str) -> list[tuple[dt.date, int]]:
    """Paid refunds in time order, then what is still due from the cancellation, on the cancellation date."""
    paid = sorted((refunded_at, refund_id, amount) for refund_id, (refunded_at, amount) in facts.refunds.items())
    entries = [(local_date(refunded_at, timezone), amount) for refunded_at, _, amount in paid]
    outstanding = (facts.refund_due or 0) - sum(amount for _, amount in entries)
    cancelled_at = facts.state["cancelled_at"]
    if outstanding > 0 and cancelled_at is not None:
        entries.append((local_date(cancelled_at, timezone), outstanding))
    return sorted(entries, key=lambda entry: entry[0])


def add_into(target: dict[dt.date, list[int]], contribution: Contribution, sign: int) -> None:
    for day, values in contribution.items():
        row = target.setdefault(day, [0] * len(METRIC_COLUMNS))
        for column, value in enumerate(values):
            row[column] += sign * value

"""The report figures, defined once: which bookings count, and how each amount is computed.

These are DESIGN.md's metric definitions as code. The reports compute every figure from `bookings` through this
module, so the metrics API (`GET /hosts/me/metrics`) can be checked against it. For a host and a window of
property-local dates `[start, end)`:

- payout view (by confirmation date): a booking CONFIRMED, COMPLETED or later CANCELLED whose `confirmed_at`
  falls in the window (its property's local date) earns `gross = accommodation - discount + cleaning fee`;
  `host_fee = round_half_up(gross * host_fee_bps / 10000)` per booking on its confirmation date; `refunds` are
  the host's share of what was refunded to the guest, dated by the cancellation: the guest's refund `R` also
  returns the service fee and taxes, which never were the host's, so the host's share is
  `R * (accommodation - discount + cleaning) // total_amount`; the refund also gives back the fee on that share
  (`fee(gross) - fee(gross - share)`), on the same date. `net = gross - refunds - host_fee`. These are the
  metrics pipeline's rules (`ingest/contributions.py`), so a report and `GET /hosts/me/metrics` agree.
  `paid_at` is `confirmed_at`: a booking is confirmed by its successful payment.
- occupancy view (spread over the nights): the nights inside the window of CONFIRMED or COMPLETED bookings
  (`booked_nights`) and the sum of their `nightly_prices` (`accommodation_revenue`; prices are after discount);
  `available_nights` = for each property, the window's nights while it was listed (from its creation to its
  deletion, property-local dates) not blocked by the host or an imported calendar, as the metrics pipeline
  counts; `occupancy_rate` = booked / available, `adr` = revenue / booked, `revpar` = revenue / available (0
  when the divisor is 0; money ratios rounded half up to a minor unit).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import polars as pl

MAX_WINDOW_DAYS = 3 * 366
LIVE_STATUSES = ("CONFIRMED", "COMPLETED")
BASIS_POINTS = 10_000


@dataclasses.dataclass(frozen=True)
class Window:
    """Property-local dates `[start, end)`."""

    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        return (self.end - self.start).days


# One row per booking that the window concerns: confirmed in it, cancelled in it after payment, or with a live
# stay overlapping it. Local dates are taken in each booking's property zone. Rows come grouped by currency.
BOOKINGS_SQL = """
SELECT b.id::text AS booking_id,
       b.property_id::text AS property_id,
       p.title AS property,
       g.name AS guest_name,
       b.check_in,
       b.check_out,
       b.status,
       b.currency,
       b.accommodation_amount - b.discount_amount AS accommodation,
       b.cleaning_fee,
       b.refunded_amount,
       b.total_amount,
       b.nightly_prices,
       b.confirmed_at,
       (b.confirmed_at AT TIME ZONE p.timezone)::date AS confirmed_on,
       (b.cancelled_at AT TIME ZONE p.timezone)::date AS cancelled_on
FROM bookings b
JOIN properties p ON p.id = b.property_id
JOIN users g ON g.id = b.guest_id
WHERE b.host_id = :host_id
  AND b.confirmed_at IS NOT NULL
  AND (
        (b.confirmed_at AT TIME ZONE p.timezone)::date >= :start
        AND (b.confirmed_at AT TIME ZONE p.timezone)::date < :end
     OR (b.cancelled_at AT TIME ZONE p.timezone)::date >= :start
        AND (b.cancelled_at AT TIME ZONE p.timezone)::date < :end
     OR b.status IN ('CONFIRMED', 'COMPLETED') AND b.check_in < :end AND b.check_out > :start
  )
ORDER BY b.currency, p.title, b.property_id, b.check_in, b.id
"""

# Per currency: the nights of the window while each of the host's properties was listed that no block closes.
AVAILABLE_NIGHTS_SQL = """
SELECT p.currency, count(*)::bigint AS available_nights
FROM properties p
CROSS JOIN LATERAL generate_series(
    greatest(CAST(:start AS date), (p.created_at AT TIME ZONE p.timezone)::date)::timestamp,
    (least(CAST(:end AS date), coalesce((p.deleted_at AT TIME ZONE p.timezone)::date, CAST(:end AS date))) - 1)
        ::timestamp,
    interval '1 day'
) AS night
WHERE p.host_id = :host_id
  AND NOT EXISTS (SELECT 1 FROM availability_blocks b WHERE b.property_id = p.id AND b.during @> night::date)
GROUP BY p.currency
"""

# Per currency: bookings cancelled and expired in the window (whether or not they were ever paid), and the nights
# and lead times (check-in minus the local date the booking was made) of the bookings confirmed in it, for the
# averages; as the metrics pipeline counts them.
BOOKING_COUNTS_SQL = """
SELECT p.currency,
       count(*) FILTER (WHERE b.status = 'CANCELLED'
                        AND (b.cancelled_at AT TIME ZONE p.timezone)::date >= :start
                        AND (b.cancelled_at AT TIME ZONE p.timezone)::date < :end) AS bookings_cancelled,
       count(*) FILTER (WHERE b.status = 'EXPIRED'
                        AND (b.ended_at AT TIME ZONE p.timezone)::date >= :start
                        AND (b.ended_at AT TIME ZONE p.timezone)::date < :end) AS bookings_expired,
       coalesce(sum(b.check_out - b.check_in) FILTER (WHERE {confirmed_in}), 0)::bigint AS stay_nights,
       coalesce(sum(b.check_in - (b.created_at AT TIME ZONE p.timezone)::date) FILTER (WHERE {confirmed_in}), 0)
           ::bigint AS lead_time_days
FROM bookings b
JOIN properties p ON p.id = b.property_id
WHERE b.host_id = :host_id
GROUP BY p.currency
""".format(
    confirmed_in="(b.confirmed_at AT TIME ZONE p.timezone)::date >= :start "
    "AND (b.confirmed_at AT TIME ZONE p.timezone)::date < :end"
)

RAW_SCHEMA: dict[str, pl.DataType] = {
    "booking_id": pl.String(),
    "property_id": pl.String(),
    "property": pl.String(),
    "guest_name": pl.String(),
    "check_in": pl.Date(),
    "check_out": pl.Date(),
    "status": pl.String(),
    "currency": pl.String(),
    "accommodation": pl.Int64(),
    "cleaning_fee": pl.Int64(),
    "refunded_amount": pl.Int64(),
    "total_amount": pl.Int64(),
    "nightly_prices": pl.List(pl.Int64()),
    "confirmed_at": pl.Datetime("us", "UTC"),
    "confirmed_on": pl.Date(),
    "cancelled_on": pl.Date(),
}


def ratio_half_up(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """`numerator / denominator` rounded half up to an integer (minor units), 0 when the denominator is 0."""
    return pl.when(denominator > 0).then((numerator * 2 + denominator) // (2 * denominator)).otherwise(0)


def _in_window(column: str, window: Window) -> pl.Expr:
    day = pl.col(column)
    return day.is_not_null() & (day >= pl.lit(window.start)) & (day < pl.lit(window.end))


def booking_figures(raw: pl.DataFrame, window: Window, host_fee_bps: int) -> pl.DataFrame:
    """Adds each booking's figures for the window to rows shaped like `RAW_SCHEMA`.

    Besides the published columns it adds the parts the reconciliation sums (`cancelled_accommodation`,
    `accommodation_outside`, `accommodation_from_others`), so every total is a plain column sum.
    """
    confirmed_in = _in_window("confirmed_on", window)
    cancelled_in = _in_window("cancelled_on", window)
    live = pl.col("status").is_in(LIVE_STATUSES)
    start, end = pl.lit(window.start), pl.lit(window.end)
    nights = (pl.col("check_out") - pl.col("check_in")).dt.total_days()
    first_inside = (start - pl.col("check_in")).dt.total_days().clip(lower_bound=0)
    inside = (
        (pl.min_horizontal(pl.col("check_out"), end) - pl.max_horizontal(pl.col("check_in"), start))
        .dt.total_days()
        .clip(lower_bound=0)
    )
    zero = pl.lit(0, dtype=pl.Int64)
    booking_gross = pl.col("accommodation") + pl.col("cleaning_fee")
    host_share = (
        pl.when(pl.col("total_amount") > 0)
        .then(pl.col("refunded_amount") * booking_gross // pl.col("total_amount"))
        .otherwise(zero)
    )

    def fee(amount: pl.Expr) -> pl.Expr:
        return (amount * host_fee_bps + BASIS_POINTS // 2) // BASIS_POINTS

    staged = raw.with_columns(
        nights=nights,
        confirmed_in_window=confirmed_in,
        cancelled_in_window=cancelled_in,
        gross_earnings=pl.when(confirmed_in).then(booking_gross).otherwise(zero),
        refunds=pl.when(cancelled_in).then(host_share).otherwise(zero),
        nights_in_window=pl.when(live).then(inside).otherwise(zero),
        accommodation_in_window=pl.when(live)
        .then(pl.col("nightly_prices").list.slice(first_inside, inside).list.sum())
        .otherwise(zero),
    )
    return staged.with_columns(
        host_fee=pl.when(confirmed_in).then(fee(booking_gross)).otherwise(zero)
        + pl.when(cancelled_in).then(fee(booking_gross - host_share) - fee(booking_gross)).otherwise(zero),
        cancelled_accommodation=pl.when(confirmed_in & ~live).then(pl.col("accommodation")).otherwise(zero),
        accommodation_outside=pl.when(confirmed_in & live)
        .then(pl.col("accommodation") - pl.col("accommodation_in_window"))
        .otherwise(zero),
        accommodation_from_others=pl.when(~confirmed_in & live).then(pl.col("accommodation_in_window")).otherwise(zero),
    ).with_columns(net_payout=pl.col("gross_earnings") - pl.col("refunds") - pl.col("host_fee"))


def nights_by_month(raw: pl.DataFrame, window: Window) -> pl.DataFrame:
    """The occupancy view per property and month: each live night inside the window, with its price."""
    live = raw.filter(pl.col("status").is_in(LIVE_STATUSES))
    nights = (
        live.select(
            "property_id",
            "property",
            "currency",
            "check_in",
            price=pl.col("nightly_prices"),
            offset=pl.int_ranges(0, pl.col("nightly_prices").list.len()),
        )
        .explode(["price", "offset"])
        .with_columns(night=pl.col("check_in") + pl.duration(days=pl.col("offset")))
        .filter((pl.col("night") >= pl.lit(window.start)) & (pl.col("night") < pl.lit(window.end)))
    )
    return nights.group_by("property_id", "property", "currency", month=pl.col("night").dt.truncate("1mo")).agg(
        booked_nights=pl.len().cast(pl.Int64), accommodation_revenue=pl.col("price").sum().cast(pl.Int64)
    )


def payouts_by_month(figures: pl.DataFrame) -> pl.DataFrame:
    """The payout view per property and month: gross and fees by confirmation month, refunds by cancellation month."""
    keys = ("property_id", "property", "currency")
    earned = figures.filter(pl.col("confirmed_in_window")).select(
        *keys,
        month=pl.col("confirmed_on").dt.truncate("1mo"),
        gross_earnings="gross_earnings",
        host_fees="host_fee",
        refunds=pl.lit(0, dtype=pl.Int64),
    )
    refunded = figures.filter(pl.col("cancelled_in_window")).select(
        *keys,
        month=pl.col("cancelled_on").dt.truncate("1mo"),
        gross_earnings=pl.lit(0, dtype=pl.Int64),
        host_fees=pl.lit(0, dtype=pl.Int64),
        refunds="refunds",
    )
    return pl.concat([earned, refunded]).group_by(*keys, "month").agg(pl.all().sum())

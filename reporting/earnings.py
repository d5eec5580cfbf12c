"""The earnings report, built chunk by chunk: bookings come from Postgres through a server-side cursor, each
chunk becomes polars rows for the writer and partial sums, and the partial sums become the report's totals.

Memory stays flat however many bookings a host has: only one chunk of rows and the small per-currency and
per-property-month sums are held at a time.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator

import polars as pl
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from reporting.definitions import (
    AVAILABLE_NIGHTS_SQL,
    BOOKING_COUNTS_SQL,
    BOOKINGS_SQL,
    RAW_SCHEMA,
    Window,
    booking_figures,
    nights_by_month,
    payouts_by_month,
    ratio_half_up,
)

CHUNK_ROWS = 20_000

# The Bookings table, in order: what a host reads, both views side by side.
BOOKING_COLUMNS = (
    "booking_id",
    "property",
    "guest_name",
    "check_in",
    "check_out",
    "nights",
    "status",
    "accommodation",
    "cleaning_fee",
    "gross_earnings",
    "host_fee",
    "refunds",
    "net_payout",
    "nights_in_window",
    "accommodation_in_window",
    "currency",
    "confirmed_at",
    "paid_at",
)
MONEY_COLUMNS = frozenset(
    {
        "accommodation",
        "cleaning_fee",
        "gross_earnings",
        "host_fee",
        "refunds",
        "net_payout",
        "accommodation_in_window",
    }
)
SUMMARY_SUMS = {
    "bookings_confirmed": pl.col("confirmed_in_window").cast(pl.Int64).sum(),
    "gross_earnings": pl.col("gross_earnings").sum(),
    "cleaning_fees": pl.when(pl.col("confirmed_in_window")).then(pl.col("cleaning_fee")).otherwise(0).sum(),
    "refunds": pl.col("refunds").sum(),
    "host_fees": pl.col("host_fee").sum(),
    "net_earnings": pl.col("net_payout").sum(),
    "booked_nights": pl.col("nights_in_window").sum(),
    "accommodation_revenue": pl.col("accommodation_in_window").sum(),
    "cancelled_accommodation": pl.col("cancelled_accommodation").sum(),
    "accommodation_outside": pl.col("accommodation_outside").sum(),
    "accommodation_from_others": pl.col("accommodation_from_others").sum(),
}
SUMMARY_COLUMNS = (
    "currency",
    "bookings_confirmed",
    "bookings_cancelled",
    "bookings_expired",
    "cancellation_rate",
    "average_length_of_stay",
    "average_lead_time_days",
    "gross_earnings",
    "refunds",
    "host_fees",
    "net_earnings",
    "booked_nights",
    "available_nights",
    "occupancy_rate",
    "accommodation_revenue",
    "adr",
    "revpar",
)
COUNT_COLUMNS = ("bookings_cancelled", "bookings_expired", "stay_nights", "lead_time_days")
SUMMARY_MONEY = frozenset(
    {"gross_earnings", "refunds", "host_fees", "net_earnings", "accommodation_revenue", "adr", "revpar"}
)
BY_PROPERTY_COLUMNS = (
    "property",
    "month",
    "currency",
    "gross_earnings",
    "refunds",
    "host_fees",
    "net_earnings",
    "booked_nights",
    "accommodation_revenue",
)
BY_PROPERTY_MONEY = frozenset({"gross_earnings", "refunds", "host_fees", "net_earnings", "accommodation_revenue"})


@dataclasses.dataclass(frozen=True)
class EarningsTotals:
    """Everything but the booking rows: small, whatever the number of bookings."""

    window: Window
    row_count: int
    summary: pl.DataFrame
    reconciliation: pl.DataFrame
    by_property: pl.DataFrame
    monthly_net: pl.DataFrame


def published(figures: pl.DataFrame) -> pl.DataFrame:
    """The Bookings table's columns of `booking_figures` rows; `paid_at` is `confirmed_at` (see definitions)."""
    return figures.with_columns(paid_at=pl.col("confirmed_at")).select(BOOKING_COLUMNS)


class EarningsAccumulator:
    """Turns raw booking chunks into published rows, keeping the partial sums for the totals."""

    def __init__(self, window: Window, host_fee_bps: int) -> None:
        self.window = window
        self.host_fee_bps = host_fee_bps
        self.row_count = 0
        self._summaries: list[pl.DataFrame] = []
        self._payouts: list[pl.DataFrame] = []
        self._nights: list[pl.DataFrame] = []

    def add(self, raw: pl.DataFrame) -> pl.DataFrame:
        """One chunk in, its Bookings rows out."""
        figures = booking_figures(raw, self.window, self.host_fee_bps)
        self.row_count += figures.height
        self._summaries.append(figures.group_by("currency").agg(**SUMMARY_SUMS))
        self._payouts.append(payouts_by_month(figures))
        self._nights.append(nights_by_month(raw, self.window))
        return published(figures)

    def finish(self, per_currency: pl.DataFrame) -> EarningsTotals:
        """The totals; `per_currency` holds what SQL counts per currency (`currency_figures`)."""
        booked, revenue, nights = pl.col("booked_nights"), pl.col("accommodation_revenue"), pl.col("available_nights")
        confirmed = pl.col("bookings_confirmed")
        sums = (
            _combine(self._summaries, ["currency"], empty=_empty_summary())
            .join(per_currency, on="currency", how="full", coalesce=True)
            .fill_null(0)
            .with_columns(
                cancellation_rate=_rounded_ratio(pl.col("bookings_cancelled"), confirmed, 4),
                average_length_of_stay=_rounded_ratio(pl.col("stay_nights"), confirmed, 2),
                average_lead_time_days=_rounded_ratio(pl.col("lead_time_days"), confirmed, 2),
                occupancy_rate=pl.when(nights > 0).then(booked / nights).otherwise(0.0),
                adr=ratio_half_up(revenue, booked),
                revpar=ratio_half_up(revenue, nights),
            )
            .sort("currency")
        )
        by_property = _by_property(self._payouts, self._nights)
        monthly_net = by_property.group_by("month", "currency").agg(pl.col("net_earnings").sum()).sort("month")
        return EarningsTotals(
            window=self.window,
            row_count=self.row_count,
            summary=sums.select(SUMMARY_COLUMNS),
            reconciliation=_reconciliation(sums),
            by_property=by_property,
            monthly_net=monthly_net,
        )


def _rounded_ratio(part: pl.Expr, whole: pl.Expr, digits: int) -> pl.Expr:
    """As the metrics API rounds its rates and averages; 0 when nothing was confirmed."""
    return pl.when(whole > 0).then((part / whole).round(digits)).otherwise(0.0)


def _combine(parts: list[pl.DataFrame], keys: list[str], empty: pl.DataFrame) -> pl.DataFrame:
    if not parts:
        return empty
    return pl.concat(parts).group_by(keys).agg(pl.all().sum())


def _empty_summary() -> pl.DataFrame:
    return pl.DataFrame(schema={"currency": pl.String, **dict.fromkeys(SUMMARY_SUMS, pl.Int64)})


def _by_property(payouts: list[pl.DataFrame], nights: list[pl.DataFrame]) -> pl.DataFrame:
    key_schema = {"property_id": pl.String, "property": pl.String, "currency": pl.String, "month": pl.Date}
    keys = list(key_schema)
    money = _combine(
        payouts,
        keys,
        empty=pl.DataFrame(
            schema={**key_schema, "gross_earnings": pl.Int64, "host_fees": pl.Int64, "refunds": pl.Int64}
        ),
    )
    stays = _combine(
        nights,
        keys,
        empty=pl.DataFrame(schema={**key_schema, "booked_nights": pl.Int64, "accommodation_revenue": pl.Int64}),
    )
    joined = money.join(stays, on=keys, how="full", coalesce=True).fill_null(0)
    return (
        joined.with_columns(net_earnings=pl.col("gross_earnings") - pl.col("refunds") - pl.col("host_fees"))
        .sort("property", "property_id", "month", "currency")
        .select(BY_PROPERTY_COLUMNS)
    )


RECONCILIATION_LINES = (
    ("Net earnings (payout view, by confirmation date)", "net_earnings", 1),
    ("+ host fees", "host_fees", 1),
    ("+ refunds dated in the window", "refunds", 1),
    ("= Gross earnings of bookings confirmed in the window", "gross_earnings", 1),
    ("- cleaning fees (not spread over nights)", "cleaning_fees", -1),
    ("- accommodation of bookings confirmed in the window and since cancelled", "cancelled_accommodation", -1),
    ("- nights of bookings confirmed in the window that fall outside it", "accommodation_outside", -1),
    ("+ nights in the window of bookings confirmed outside it", "accommodation_from_others", 1),
    ("= Accommodation revenue (occupancy view, by night stayed)", "accommodation_revenue", 1),
)


def _reconciliation(sums: pl.DataFrame) -> pl.DataFrame:
    """Per currency, the steps from the payout total to the occupancy total; each line is a column sum."""
    lines = [
        sums.select(
            "currency",
            step=pl.lit(order, dtype=pl.Int64),
            line=pl.lit(label),
            amount=pl.col(column) * sign,
        )
        for order, (label, column, sign) in enumerate(RECONCILIATION_LINES)
    ]
    return pl.concat(lines).sort("currency", "step").drop("step")


async def raw_chunks(
    session: AsyncSession, host_id: uuid.UUID, window: Window, chunk_rows: int = CHUNK_ROWS
) -> AsyncIterator[pl.DataFrame]:
    """The window's bookings of a host, `chunk_rows` at a time, through a server-side cursor."""
    params = {"host_id": host_id, "start": window.start, "end": window.end}
    result = await session.stream(text(BOOKINGS_SQL), params)
    async for rows in result.partitions(chunk_rows):
        yield pl.DataFrame(rows, schema=RAW_SCHEMA, orient="row")


async def currency_figures(session: AsyncSession, host_id: uuid.UUID, window: Window) -> pl.DataFrame:
    """Per currency of the host's properties: available nights, bookings cancelled and expired, and the sums the
    averages need."""
    params = {"host_id": host_id, "start": window.start, "end": window.end}
    nights = (await session.execute(text(AVAILABLE_NIGHTS_SQL), params)).all()
    counts = (await session.execute(text(BOOKING_COUNTS_SQL), params)).all()
    available = pl.DataFrame(nights, schema={"currency": pl.String, "available_nights": pl.Int64}, orient="row")
    counted = pl.DataFrame(
        counts,
        schema={"currency": pl.String, **dict.fromkeys(COUNT_COLUMNS, pl.Int64)},
        orient="row",
    )
    return available.join(counted, on="currency", how="full", coalesce=True).fill_null(0)

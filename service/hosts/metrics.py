"""Reading a host's metrics for a window `[start, end)` of local dates from the aggregators' tables.

Additive figures are sums of `metric_days` rows; available nights are counted from `metric_properties` (listed
and delisted dates in the property's zone) minus the nights of `metric_blocks` still in force. One statement sums
them per property and per day (the series a chart draws); nothing is recomputed from bookings per request, which
matters because the realtime gateway calls this on every update. Ratios are derived here, once, for the REST
route and anyone else.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.contributions import METRIC_COLUMNS
from ingest.streams import DayDifferences
from service.errors import NotFound
from service.hosts.schemas import DayMetricsOut, HostMetricsOut, MetricsOut, PropertyMetricsOut


@dataclass
class Sums:
    """A window's additive figures for one property (or a total)."""

    available_nights: int = 0
    booked_nights: int = 0
    accommodation_revenue: int = 0
    gross_earnings: int = 0
    refunds: int = 0
    host_fees: int = 0
    bookings_confirmed: int = 0
    bookings_cancelled: int = 0
    bookings_expired: int = 0
    stay_nights: int = 0
    lead_time_days: int = 0

    def add(self, differences: Sequence[int]) -> None:
        """Add one `metric_days` row's differences (in `METRIC_COLUMNS` order, the fields after available nights)."""
        for name, value in zip(METRIC_COLUMNS, differences, strict=True):
            setattr(self, name, getattr(self, name) + value)

    def __iadd__(self, other: Sums) -> Sums:
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))
        return self


# One statement for the window's sums per property and per day (GROUPING SETS) over two kinds of rows: an open
# night (listed, not delisted, not blocked) counts 1 available night, a `metric_days` row brings its figures.
# `GROUPING(day) = 1` marks a property's sums; the other rows are one day's sums over the properties.
WINDOW_SUMS = text(
    "WITH nights AS ("
    "  SELECT p.property_id, night::date AS day, 1 AS available, 0 AS booked_nights, 0 AS accommodation_revenue, "
    "  0 AS gross_earnings, 0 AS refunds, 0 AS host_fees, 0 AS bookings_confirmed, 0 AS bookings_cancelled, "
    "  0 AS bookings_expired, 0 AS stay_nights, 0 AS lead_time_days FROM metric_properties p "
    "  CROSS JOIN LATERAL generate_series("
    "    greatest(CAST(:start AS date), (p.listed_at AT TIME ZONE p.timezone)::date)::timestamp, "
    "    (least(CAST(:end AS date), coalesce((p.delisted_at AT TIME ZONE p.timezone)::date, CAST(:end AS date))) - 1)"
    "::timestamp, interval '1 day') AS night "
    "  WHERE p.property_id = ANY(:ids) AND p.timezone IS NOT NULL AND p.listed_at IS NOT NULL "
    "  AND NOT EXISTS (SELECT 1 FROM metric_blocks b WHERE b.property_id = p.property_id AND NOT b.removed "
    '  AND night::date >= b.start AND night::date < b."end")'
    "  UNION ALL "
    "  SELECT property_id, day, 0, booked_nights, accommodation_revenue, gross_earnings, refunds, host_fees, "
    "  bookings_confirmed, bookings_cancelled, bookings_expired, stay_nights, lead_time_days FROM metric_days "
    "  WHERE property_id = ANY(:ids) AND day >= :start AND day < :end"
    ") "
    "SELECT GROUPING(day) = 1 AS per_property, property_id, day, sum(available), sum(booked_nights), "
    "sum(accommodation_revenue), sum(gross_earnings), sum(refunds), sum(host_fees), sum(bookings_confirmed), "
    "sum(bookings_cancelled), sum(bookings_expired), sum(stay_nights), sum(lead_time_days) "
    "FROM nights GROUP BY GROUPING SETS ((property_id), (day))"
)


@dataclass
class WindowSums:
    """A window's additive figures per property (those in scope, in listing order, with their currencies) and
    per day: what `host_metrics` derives its answer from, and what the realtime gateway holds and adds each
    update's differences to (`add`) instead of reading them again."""

    start: dt.date
    end: dt.date
    currencies: dict[uuid.UUID, str]
    properties: dict[uuid.UUID, Sums]
    days: dict[dt.date, Sums]

    def add(self, differences: DayDifferences) -> None:
        """Add `metric_days` differences; those of properties out of scope or days out of the window are not
        the window's."""
        for property_id, by_day in differences.items():
            sums = self.properties.get(property_id)
            if sums is None:
                continue
            for day, values in by_day.items():
                if self.start <= day < self.end:
                    sums.add(values)
                    self.days.setdefault(day, Sums()).add(values)

    def metrics(self) -> HostMetricsOut:
        """Totals and ratios, per property and per day of the window."""
        total = Sums()
        for figures in self.properties.values():
            total += figures
        currencies = set(self.currencies.values())
        currency = currencies.pop() if len(currencies) == 1 else None
        with_money = currency is not None or not self.currencies
        return HostMetricsOut(
            start=self.start,
            end=self.end,
            currency=currency,
            total=metrics_out(total, with_money=with_money),
            properties=[
                PropertyMetricsOut(pid, currency_code, metrics_out(self.properties[pid], with_money=True))
                for pid, currency_code in self.currencies.items()
            ],
            days=[
                day_out(day, self.days.get(day, Sums()), with_money=with_money)
                for day in (self.start + dt.timedelta(days=offset) for offset in range((self.end - self.start).days))
            ],
        )


async def host_metrics(
    session: AsyncSession, host_id: uuid.UUID, start: dt.date, end: dt.date, property_ids: Sequence[uuid.UUID]
) -> HostMetricsOut:
    """The host's metrics, total, per property (all of theirs, or those asked for: 404 if one is not theirs) and
    per day of the window."""
    return (await window_sums(session, host_id, start, end, property_ids)).metrics()


async def window_sums(
    session: AsyncSession, host_id: uuid.UUID, start: dt.date, end: dt.date, property_ids: Sequence[uuid.UUID]
) -> WindowSums:
    """The window's sums as the metrics tables hold them now (404 if a property asked for is not the host's)."""
    scope = await _properties_in_scope(session, host_id, property_ids)
    sums = WindowSums(start, end, scope, {property_id: Sums() for property_id in scope}, {})
    rows = await session.execute(WINDOW_SUMS, {"ids": list(scope), "start": start, "end": end})
    for per_property, property_id, day, *values in rows:
        figures = Sums(*(int(value) for value in values))  # columns in Sums' order
        if per_property:
            sums.properties[property_id] = figures
        else:
            sums.days[day] = figures
    return sums


async def _properties_in_scope(
    session: AsyncSession, host_id: uuid.UUID, property_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """Property id -> currency, ordered by listing; deleted properties keep their history, so they count."""
    statement = "SELECT id, currency FROM properties WHERE host_id = :host"
    params: dict[str, object] = {"host": host_id}
    if property_ids:
        statement += " AND id = ANY(:ids)"
        params["ids"] = list(property_ids)
    rows = await session.execute(text(statement + " ORDER BY created_at, id"), params)
    scope = {row[0]: row[1] for row in rows}
    missing = [str(pid) for pid in property_ids if pid not in scope]
    if missing:
        raise NotFound(f"No property {', '.join(missing)} among yours.")
    return scope


def _ratio(part: int, whole: int, digits: int) -> float:
    return round(part / whole, digits) if whole else 0.0


def _money_ratio(part: int, whole: int) -> int:
    """Minor units per unit (per night), rounded half up; 0 when there is nothing to divide by."""
    return (2 * part + whole) // (2 * whole) if whole else 0


def metrics_out(sums: Sums, *, with_money: bool) -> MetricsOut:
    def money(value: int) -> int | None:
        return value if with_money else None

    return MetricsOut(
        available_nights=sums.available_nights,
        booked_nights=sums.booked_nights,
        occupancy_rate=_ratio(sums.booked_nights, sums.available_nights, 4),
        accommodation_revenue=money(sums.accommodation_revenue),
        adr=money(_money_ratio(sums.accommodation_revenue, sums.booked_nights)),
        revpar=money(_money_ratio(sums.accommodation_revenue, sums.available_nights)),
        gross_earnings=money(sums.gross_earnings),
        refunds=money(sums.refunds),
        host_fees=money(sums.host_fees),
        net_earnings=money(sums.gross_earnings - sums.refunds - sums.host_fees),
        bookings_confirmed=sums.bookings_confirmed,
        bookings_cancelled=sums.bookings_cancelled,
        bookings_expired=sums.bookings_expired,
        cancellation_rate=_ratio(sums.bookings_cancelled, sums.bookings_confirmed, 4),
        average_length_of_stay=_ratio(sums.stay_nights, sums.bookings_confirmed, 2),
        average_lead_time_days=_ratio(sums.lead_time_days, sums.bookings_confirmed, 2),
    )


def day_out(day: dt.date, sums: Sums, *, with_money: bool) -> DayMetricsOut:
    return DayMetricsOut(
        date=day,
        available_nights=sums.available_nights,
        booked_nights=sums.booked_nights,
        gross_earnings=sums.gross_earnings if with_money else None,
        net_earnings=sums.gross_earnings - sums.refunds - sums.host_fees if with_money else None,
    )

"""Bodies of the host metrics route."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec


class MetricsOut(msgspec.Struct):
    """The metrics of DESIGN.md for one window. Money in minor units; in a total over properties of different
    currencies the money fields are null (they cannot be added), counts and nights still are."""

    available_nights: int
    booked_nights: int
    occupancy_rate: float
    accommodation_revenue: int | None
    adr: int | None
    revpar: int | None
    gross_earnings: int | None
    refunds: int | None
    host_fees: int | None
    net_earnings: int | None
    bookings_confirmed: int
    bookings_cancelled: int
    bookings_expired: int
    cancellation_rate: float
    average_length_of_stay: float
    average_lead_time_days: float


class PropertyMetricsOut(msgspec.Struct):
    property_id: uuid.UUID
    currency: str
    metrics: MetricsOut


class DayMetricsOut(msgspec.Struct):
    """One local date of the window over the properties in scope, for charts: nights on that date, earnings of
    bookings confirmed (refunds and fees: paid) on it. Money is null when the properties mix currencies."""

    date: dt.date
    available_nights: int
    booked_nights: int
    gross_earnings: int | None
    net_earnings: int | None


class HostMetricsOut(msgspec.Struct):
    start: dt.date = msgspec.field(name="from")
    end: dt.date = msgspec.field(name="to")
    currency: str | None  # the properties' one currency; null when they mix currencies
    total: MetricsOut
    properties: list[PropertyMetricsOut]
    days: list[DayMetricsOut]  # every date of the window, in order

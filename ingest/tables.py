"""The metrics tables the aggregators keep, one row per thing an event can change.

`metric_properties` and `metric_blocks` hold what available nights are counted from; `metric_bookings` holds each
booking's latest known state (the newest outbox id wins), from which its contribution to `metric_days` is derived.
Keeping the state, not just the sums, is what makes applying an event twice or out of order harmless.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import BigInteger, Boolean, Date, DateTime, Index, Integer, String, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base


class MetricProperty(Base):
    """A property as the events describe it: its zone, its currency, and when it was listed and delisted."""

    __tablename__ = "metric_properties"

    property_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    host_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    # Unknown (NULL) until a property event arrives; bookings seen before that contribute nothing yet.
    timezone: Mapped[str | None] = mapped_column(String(64))
    currency: Mapped[str | None] = mapped_column(String(3))
    listed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    delisted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_seq: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


class MetricHost(Base):
    """A host's metrics version: each aggregator transaction that changes the host's rows adds one, under the row's
    lock, so versions commit in order and a read that sees version V sees exactly the changes up to V (what lets
    the realtime gateway add later changes to figures it holds, see `realtime.figures`)."""

    __tablename__ = "metric_hosts"

    host_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class MetricBlock(Base):
    """A block of nights; `removed` once its `availability.unblocked` event has been seen (in any order)."""

    __tablename__ = "metric_blocks"

    block_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    property_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    start: Mapped[dt.date] = mapped_column(Date)
    end: Mapped[dt.date] = mapped_column(Date)
    removed: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class MetricBooking(Base):
    """A booking's latest state (`booking_event_fields` of the event with the highest outbox id) plus the facts
    that only some events carry: the refund granted at cancellation, refunds paid, and when the hold expired."""

    __tablename__ = "metric_bookings"

    booking_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    property_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    host_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    last_seq: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[dict[str, Any]] = mapped_column(JSONB)
    refund_due: Mapped[int | None] = mapped_column(Integer)
    refunds: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    expired_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class MetricDay(Base):
    """The additive metrics of one property on one local date; a window's figures are sums of these rows."""

    __tablename__ = "metric_days"
    __table_args__ = (Index("ix_metric_days_host_id_day", "host_id", "day"),)

    property_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    host_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    booked_nights: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    accommodation_revenue: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    gross_earnings: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    refunds: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    host_fees: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    bookings_confirmed: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    bookings_cancelled: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    bookings_expired: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    stay_nights: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    lead_time_days: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))

"""Tables of the host side: properties, pricing rules, blocked dates and imported calendar feeds."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, SmallInteger, String, Text, func, text
from sqlalchemy.dialects.postgresql import DATERANGE, UUID, Range
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, Timestamps

CANCELLATION_POLICIES = ("flexible", "moderate", "strict")


def new_calendar_token() -> str:
    return secrets.token_urlsafe(24)


class Property(Timestamps, Base):
    """A place to stay. Deleting one only sets `deleted_at`, so past bookings and metrics keep their property."""

    __tablename__ = "properties"
    __table_args__ = (
        CheckConstraint("nightly_price >= 0", name="nightly_price_non_negative"),
        CheckConstraint("cleaning_fee >= 0", name="cleaning_fee_non_negative"),
        CheckConstraint("max_guests >= 1", name="max_guests_positive"),
        CheckConstraint("min_nights >= 1 AND min_nights <= max_nights", name="nights_bounds"),
        CheckConstraint("tax_rate_bps >= 0 AND tax_rate_bps <= 5000", name="tax_rate_range"),
        CheckConstraint(f"cancellation_policy IN {CANCELLATION_POLICIES}", name="cancellation_policy_known"),
        # Search: city (case-insensitive) then price range, live properties only.
        Index(
            "ix_properties_search",
            func.lower(text("city")),
            "nightly_price",
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    host_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    city: Mapped[str] = mapped_column(String(120))
    country: Mapped[str] = mapped_column(String(2))
    timezone: Mapped[str] = mapped_column(String(64))
    max_guests: Mapped[int] = mapped_column(SmallInteger)
    currency: Mapped[str] = mapped_column(String(3))
    nightly_price: Mapped[int] = mapped_column(Integer)
    cleaning_fee: Mapped[int] = mapped_column(Integer, default=0)
    tax_rate_bps: Mapped[int] = mapped_column(Integer, default=0)
    min_nights: Mapped[int] = mapped_column(SmallInteger, default=1)
    max_nights: Mapped[int] = mapped_column(SmallInteger, default=365)
    cancellation_policy: Mapped[str] = mapped_column(String(16), default="moderate")
    calendar_token: Mapped[str] = mapped_column(String(64), unique=True, default=new_calendar_token)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class DatePriceOverride(Base):
    """A nightly price for every night in `during`; overrides of one property never overlap."""

    __tablename__ = "date_price_overrides"
    __table_args__ = (CheckConstraint("nightly_price >= 0", name="nightly_price_non_negative"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    property_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("properties.id", ondelete="CASCADE"))
    during: Mapped[Range[dt.date]] = mapped_column(DATERANGE)
    nightly_price: Mapped[int] = mapped_column(Integer)


class WeekdayPrice(Base):
    """A nightly price for one weekday (0 = Monday ... 6 = Sunday), e.g. the weekend price."""

    __tablename__ = "weekday_prices"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        CheckConstraint("nightly_price >= 0", name="nightly_price_non_negative"),
    )

    property_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("properties.id", ondelete="CASCADE"), primary_key=True)
    weekday: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    nightly_price: Mapped[int] = mapped_column(Integer)


class StayDiscount(Base):
    """`percent` off the accommodation of stays of at least `min_nights` (weekly, monthly...)."""

    __tablename__ = "stay_discounts"
    __table_args__ = (
        CheckConstraint("min_nights >= 2", name="min_nights_range"),
        CheckConstraint("percent BETWEEN 1 AND 90", name="percent_range"),
    )

    property_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("properties.id", ondelete="CASCADE"), primary_key=True)
    min_nights: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    percent: Mapped[int] = mapped_column(SmallInteger)


class CalendarFeed(Timestamps, Base):
    """Another channel's iCal calendar, imported into blocks by the worker."""

    __tablename__ = "calendar_feeds"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    property_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("properties.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    next_sync_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_synced_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)


class AvailabilityBlock(Base):
    """Nights closed to bookings: by the host (`source='host'`) or by an imported calendar (`'ical'`)."""

    __tablename__ = "availability_blocks"
    __table_args__ = (
        CheckConstraint("source IN ('host', 'ical')", name="source_known"),
        Index("ix_availability_blocks_property_during", "property_id", "during", postgresql_using="gist"),
        # An imported calendar blocks each date range once, however often (and under whichever UIDs) it repeats.
        Index(
            "uq_availability_blocks_feed_during",
            "feed_id",
            "during",
            unique=True,
            postgresql_where=text("feed_id IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    property_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("properties.id", ondelete="CASCADE"))
    during: Mapped[Range[dt.date]] = mapped_column(DATERANGE)
    reason: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[str] = mapped_column(String(8), default="host")
    feed_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("calendar_feeds.id", ondelete="CASCADE"))
    ical_uid: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

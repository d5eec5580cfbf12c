"""The `bookings`, `idempotency_keys` and `reviews` tables.

No two PENDING or CONFIRMED bookings of one property overlap: the exclusion constraint `no_overlapping_stays`
(migration 0002) enforces it, whatever happens in front of it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from sqlalchemy import (
    ARRAY,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, Timestamps


class BookingStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    COMPLETED = "COMPLETED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"


LIVE_STATUSES = (BookingStatus.PENDING, BookingStatus.CONFIRMED)
# The name Postgres reports when an insert or a move to a live status would overlap another live booking.
OVERLAP_CONSTRAINT = "ex_bookings_no_overlapping_stays"


class Booking(Timestamps, Base):
    __tablename__ = "bookings"
    __table_args__ = (
        CheckConstraint("check_out > check_in", name="stay_not_empty"),
        CheckConstraint("guests >= 1", name="guests_positive"),
        CheckConstraint("status IN ('PENDING', 'CONFIRMED', 'COMPLETED', 'EXPIRED', 'CANCELLED')", name="status_known"),
        CheckConstraint("total_amount >= 0 AND refunded_amount >= 0", name="money_non_negative"),
        CheckConstraint("cardinality(nightly_prices) = check_out - check_in", name="one_price_per_night"),
        Index("ix_bookings_pending_hold", "hold_expires_at", postgresql_where=text("status = 'PENDING'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    property_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("properties.id"), index=True)
    guest_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    host_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    check_in: Mapped[dt.date] = mapped_column(Date)
    check_out: Mapped[dt.date] = mapped_column(Date)
    guests: Mapped[int] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(String(16), default=BookingStatus.PENDING)
    currency: Mapped[str] = mapped_column(String(3))
    # What each night earns the host after any length-of-stay discount; sums to accommodation - discount.
    nightly_prices: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    accommodation_amount: Mapped[int] = mapped_column(Integer)
    discount_amount: Mapped[int] = mapped_column(Integer)
    cleaning_fee: Mapped[int] = mapped_column(Integer)
    service_fee: Mapped[int] = mapped_column(Integer)
    taxes: Mapped[int] = mapped_column(Integer)
    total_amount: Mapped[int] = mapped_column(Integer)
    refunded_amount: Mapped[int] = mapped_column(Integer, default=0)
    hold_expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_by: Mapped[str | None] = mapped_column(String(8))
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def nights(self) -> int:
        return (self.check_out - self.check_in).days


class IdempotencyKey(Base):
    """A client's `Idempotency-Key` for `POST /bookings`, with a fingerprint of the request it first came with."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    booking_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bookings.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Review(Base):
    __tablename__ = "reviews"
    __table_args__ = (CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    booking_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bookings.id"), unique=True)
    property_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("properties.id"), index=True)
    guest_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    rating: Mapped[int] = mapped_column(SmallInteger)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

"""The `payments`, `stripe_webhook_events` and `refunds` tables.

One PaymentIntent per booking (`payments.booking_id` is unique). Each webhook event id is stored once, in the
transaction that applies it, so a replay changes nothing. A refund row is unique per booking and reason, and is
written before Stripe is called: that row, not Stripe's idempotency key, is what stops a second refund.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, Timestamps


class Payment(Timestamps, Base):
    """A booking's Stripe PaymentIntent and the last state we applied from it."""

    __tablename__ = "payments"
    __table_args__ = (CheckConstraint("amount >= 0", name="amount_non_negative"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    booking_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bookings.id"), unique=True)
    payment_intent_id: Mapped[str] = mapped_column(String(255), unique=True)
    client_secret: Mapped[str] = mapped_column(Text)
    amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    # Stripe's PaymentIntent status: requires_payment_method, processing, succeeded, canceled, ...
    status: Mapped[str] = mapped_column(String(32))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    succeeded_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class StripeWebhookEvent(Base):
    """A Stripe event id we have applied; the primary key makes a replay a no-op."""

    __tablename__ = "stripe_webhook_events"

    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RefundStatus(StrEnum):
    REQUESTED = "requested"  # committed, Stripe not called yet
    SENDING = "sending"  # claimed by one process that is calling Stripe
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # Stripe refused it; needs a person


class RefundReason(StrEnum):
    CANCELLATION = "cancellation"  # guest or host cancelled a paid booking; amount by policy
    BOOKING_UNAVAILABLE = "booking_unavailable"  # paid after the hold ran out and the dates were taken


class Refund(Timestamps, Base):
    __tablename__ = "refunds"
    __table_args__ = (
        UniqueConstraint("booking_id", "reason", name="uq_refunds_booking_id_reason"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("status IN ('requested', 'sending', 'succeeded', 'failed')", name="status_known"),
        Index("ix_refunds_unsettled", "updated_at", postgresql_where=text("status IN ('requested', 'sending')")),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    booking_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bookings.id"))
    payment_intent_id: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=RefundStatus.REQUESTED)
    stripe_refund_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    refunded_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

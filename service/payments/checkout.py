"""Checkout: the booking's guest gets the Stripe PaymentIntent for the booking's total, created once.

The read transaction is committed before Stripe is called, so no database transaction waits on the network. Two
concurrent checkouts send the same idempotency key, so Stripe answers both with one PaymentIntent, and the
unique `payments.booking_id` keeps whichever insert lands first.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.tokens import CurrentUser
from service.bookings.models import Booking, BookingStatus
from service.bookings.service import get_visible_booking
from service.errors import Conflict, NotFound
from service.payments.gateway import StripeGateway
from service.payments.models import Payment


def _ensure_payable(booking: Booking, payment: Payment | None) -> None:
    if booking.status != BookingStatus.PENDING:
        raise Conflict(f"A {booking.status} booking cannot be paid.", booking_status=booking.status)
    if payment is not None and payment.status == "canceled":
        raise Conflict("This booking's payment was cancelled; book the stay again.")
    if payment is None and booking.hold_expires_at <= dt.datetime.now(dt.UTC):
        raise Conflict("The hold on these dates ran out; book the stay again.")


async def _payment_of(session: AsyncSession, booking_id: uuid.UUID) -> Payment | None:
    payment: Payment | None = await session.scalar(
        select(Payment).where(Payment.booking_id == booking_id).execution_options(populate_existing=True)
    )
    return payment


async def checkout(session: AsyncSession, gateway: StripeGateway, booking_id: uuid.UUID, guest: CurrentUser) -> Payment:
    """The booking's PaymentIntent, created on first call; 404 to anyone but its guest, 409 unless PENDING."""
    booking = await get_visible_booking(session, booking_id, guest)
    if booking.guest_id != guest.id:
        raise NotFound(f"No booking {booking_id}.")
    payment = await _payment_of(session, booking.id)
    _ensure_payable(booking, payment)
    if payment is not None:
        return payment
    await session.commit()
    intent = await gateway.create_payment_intent(booking.id, booking.total_amount, booking.currency)
    await session.execute(
        insert(Payment)
        .values(
            id=uuid.uuid4(),
            booking_id=booking.id,
            payment_intent_id=intent.id,
            client_secret=intent.client_secret or "",
            amount=intent.amount,
            currency=booking.currency,
            status=intent.status,
        )
        .on_conflict_do_nothing(index_elements=[Payment.booking_id])
    )
    created = await _payment_of(session, booking.id)
    if created is None:
        raise Conflict("The booking changed during checkout; try again.")
    return created

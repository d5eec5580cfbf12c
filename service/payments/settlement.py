"""Applying a PaymentIntent's state to its booking: the one code path behind the webhook and reconciliation.

It is idempotent and order-independent: `succeeded` is terminal for a payment, so a late `payment_failed` or a
repeated `succeeded` changes nothing, and whichever of the webhook and the reconciliation job comes second finds
the work done. The booking row is locked (`SELECT ... FOR UPDATE`) before the payment row, everywhere.

What a successful payment does to its booking:

| booking            | result                                                                         |
| ------------------ | ------------------------------------------------------------------------------ |
| PENDING            | CONFIRMED (even past `hold_expires_at`: the exclusion constraint still held)   |
| EXPIRED            | `lifecycle.settle_late_payment`: CONFIRMED if the dates are free, else         |
|                    | CANCELLED by the system with a full refund                                     |
| CANCELLED          | (cancelled while paying) full refund                                           |
| CONFIRMED or later | nothing more                                                                   |

Refunds decided here are only recorded; the caller sends them after its commit (`refunds.issue_refund`).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.bookings import lifecycle
from service.bookings.models import Booking, BookingStatus
from service.notifications.messages import Kind, notify_booking
from service.payments.events import record_payment_event
from service.payments.gateway import ChargeState, PaymentIntentState
from service.payments.models import Payment, Refund, RefundReason
from service.payments.refunds import record_refund_succeeded, request_refund

log = logging.getLogger(__name__)

SUCCEEDED = "succeeded"
FINAL_STATUSES = frozenset({SUCCEEDED, "canceled"})
T = TypeVar("T")


def _locked(statement: Select[tuple[T]]) -> Select[tuple[T]]:
    """`SELECT ... FOR UPDATE`, reloading the row even if this session already holds it."""
    return statement.with_for_update().execution_options(populate_existing=True)


async def _payment_and_booking(session: AsyncSession, intent: PaymentIntentState) -> tuple[Payment, Booking] | None:
    """Our rows for this PaymentIntent, locked; the payment row is created if checkout's insert never landed."""
    known = await session.scalar(select(Payment.booking_id).where(Payment.payment_intent_id == intent.id))
    booking_id = known or intent.booking_id
    booking = await session.scalar(_locked(select(Booking).where(Booking.id == booking_id))) if booking_id else None
    if booking is None:
        log.warning("PaymentIntent for no booking of ours ignored", extra={"payment_intent_id": intent.id})
        return None
    payment = await session.scalar(_locked(select(Payment).where(Payment.booking_id == booking.id)))
    if payment is None:
        payment = Payment(
            id=uuid.uuid4(),
            booking_id=booking.id,
            payment_intent_id=intent.id,
            client_secret=intent.client_secret or "",
            amount=intent.amount,
            currency=intent.currency.upper(),
            status=intent.status,
        )
        session.add(payment)
        await session.flush()
    elif payment.payment_intent_id != intent.id:
        log.error(
            "a second PaymentIntent for one booking; refund it by hand",
            extra={"payment_intent_id": intent.id, "booking_id": str(booking.id)},
        )
        return None
    return payment, booking


async def apply_payment_intent(session: AsyncSession, intent: PaymentIntentState) -> list[uuid.UUID]:
    """Bring the booking in line with the PaymentIntent (caller's transaction); answers refunds to send."""
    found = await _payment_and_booking(session, intent)
    if found is None:
        return []
    payment, booking = found
    if payment.status == SUCCEEDED:
        return []
    if intent.status == SUCCEEDED:
        return await _payment_succeeded(session, payment, booking, intent)
    if payment.status in FINAL_STATUSES:
        return []
    reason = intent.failure_reason
    failed_again = reason is not None and reason != payment.failure_reason
    payment.status = intent.status
    payment.failure_reason = reason if reason is not None else payment.failure_reason
    await session.flush()
    if failed_again:
        await record_payment_event(session, "payment.failed", booking, intent.id, intent.amount, failure_reason=reason)
    return []


async def _payment_succeeded(
    session: AsyncSession, payment: Payment, booking: Booking, intent: PaymentIntentState
) -> list[uuid.UUID]:
    payment.status = SUCCEEDED
    payment.succeeded_at = dt.datetime.now(dt.UTC)
    payment.failure_reason = None
    refund_ids: list[uuid.UUID] = []
    status = BookingStatus(booking.status)
    if status is BookingStatus.PENDING:
        await lifecycle.confirm(session, booking)
        await notify_booking(session, booking, Kind.BOOKING_CONFIRMED)
    elif status is BookingStatus.EXPIRED:
        if await lifecycle.settle_late_payment(session, booking):
            await notify_booking(session, booking, Kind.BOOKING_CONFIRMED)
        else:
            await notify_booking(session, booking, Kind.BOOKING_CANCELLED, refund=intent.amount)
    if BookingStatus(booking.status) is BookingStatus.CANCELLED:
        refund_id = await request_refund(session, booking, intent.id, intent.amount, RefundReason.BOOKING_UNAVAILABLE)
        refund_ids += [refund_id] if refund_id else []
    await session.flush()
    await record_payment_event(session, "payment.succeeded", booking, intent.id, intent.amount)
    return refund_ids


async def apply_charge_refunds(session: AsyncSession, charge: ChargeState) -> None:
    """`charge.refunded`: our refunds that Stripe reports done are recorded, if a crash kept us from it.

    Refunds made outside StayPulse (no `refund_id` in their metadata) are logged, not counted: the booking's
    refunded amount only ever counts refunds StayPulse decided.
    """
    for stripe_refund in charge.refunds.data:
        try:
            refund_id = uuid.UUID(stripe_refund.metadata.get("refund_id", ""))
        except ValueError:
            log.warning("refund made outside StayPulse", extra={"stripe_refund_id": stripe_refund.id})
            continue
        if await session.get(Refund, refund_id) is not None:
            await record_refund_succeeded(session, refund_id, stripe_refund.id)

"""Refunds: recorded first, sent to Stripe after the commit, counted once.

Why a double refund cannot happen (localstripe, unlike Stripe, ignores idempotency keys, so our rows must hold):
1. A refund is a `refunds` row, unique per (booking, reason), inserted in the transaction that decides it (the
   cancellation, or the late payment that found its dates taken). A retried request finds the booking already
   CANCELLED and the row already there.
2. Stripe is called only by the process that moved the row from `requested` to `sending` in a committed
   update, so two processes never both send it. No transaction is open during the call.
3. Success moves it to `succeeded` and adds its amount to `bookings.refunded_amount` under the booking's row
   lock, once. A transient failure puts it back to `requested` for the worker; a refusal marks it `failed`.
4. A row stuck in `sending` (process died during the call) is only re-sent after asking Stripe whether a refund
   carrying its id in the metadata already exists; the idempotency key `refund-<id>` covers the rest on Stripe.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.bookings.models import Booking
from service.payments.events import record_payment_event
from service.payments.gateway import PaymentProviderUnavailable, RefundRefused, StripeGateway
from service.payments.models import Payment, Refund, RefundReason, RefundStatus

log = logging.getLogger(__name__)

STALE_SENDING = dt.timedelta(minutes=10)


async def request_refund(
    session: AsyncSession, booking: Booking, payment_intent_id: str, amount: int, reason: RefundReason
) -> uuid.UUID | None:
    """Record a refund to send (caller's transaction); None when this booking already has one for `reason`."""
    refund_id: uuid.UUID | None = await session.scalar(
        insert(Refund)
        .values(
            id=uuid.uuid4(),
            booking_id=booking.id,
            payment_intent_id=payment_intent_id,
            reason=reason,
            amount=amount,
            status=RefundStatus.REQUESTED,
        )
        .on_conflict_do_nothing(constraint="uq_refunds_booking_id_reason")
        .returning(Refund.id)
    )
    return refund_id


async def request_cancellation_refund(session: AsyncSession, booking: Booking, amount: int) -> uuid.UUID | None:
    """The policy's refund for a cancelled booking, if it was paid through Stripe and anything is due."""
    payment = await session.scalar(
        select(Payment).where(Payment.booking_id == booking.id, Payment.status == "succeeded")
    )
    if payment is None or amount <= 0:
        return None
    return await request_refund(session, booking, payment.payment_intent_id, amount, RefundReason.CANCELLATION)


async def record_refund_succeeded(session: AsyncSession, refund_id: uuid.UUID, stripe_refund_id: str) -> None:
    """Mark the refund done and count it in the booking's `refunded_amount`, once (caller's transaction)."""
    booking_id = await session.scalar(select(Refund.booking_id).where(Refund.id == refund_id))
    booking = await session.scalar(
        select(Booking).where(Booking.id == booking_id).with_for_update().execution_options(populate_existing=True)
    )
    refund = await session.scalar(
        select(Refund).where(Refund.id == refund_id).with_for_update().execution_options(populate_existing=True)
    )
    if booking is None or refund is None or refund.status == RefundStatus.SUCCEEDED:
        return
    refund.status = RefundStatus.SUCCEEDED
    refund.stripe_refund_id = stripe_refund_id
    refund.refunded_at = dt.datetime.now(dt.UTC)
    refund.last_error = None
    booking.refunded_amount += refund.amount
    await session.flush()
    await record_payment_event(
        session,
        "payment.refunded",
        booking,
        refund.payment_intent_id,
        refund.amount,
        refund_id=str(refund.id),
        refunded_at=refund.refunded_at.isoformat(),
    )


async def _set_status(session: AsyncSession, refund_id: uuid.UUID, status: RefundStatus, error: str) -> None:
    async with session.begin():
        await session.execute(update(Refund).where(Refund.id == refund_id).values(status=status, last_error=error))


async def issue_refund(session: AsyncSession, gateway: StripeGateway, refund_id: uuid.UUID) -> None:
    """Send a committed `requested` refund to Stripe; `session` must have no transaction open.

    Does nothing when another process has already claimed or finished it.
    """
    async with session.begin():
        claimed = (
            await session.execute(
                update(Refund)
                .where(Refund.id == refund_id, Refund.status == RefundStatus.REQUESTED)
                .values(status=RefundStatus.SENDING)
                .returning(Refund.payment_intent_id, Refund.amount)
            )
        ).one_or_none()
    if claimed is None:
        return
    payment_intent_id, amount = claimed
    try:
        sent = await gateway.refund(payment_intent_id, amount, refund_id)
    except RefundRefused as exc:
        log.error("refund refused by Stripe", extra={"refund_id": str(refund_id), "error": str(exc)})
        await _set_status(session, refund_id, RefundStatus.FAILED, str(exc))
        return
    except PaymentProviderUnavailable as exc:
        log.warning("refund not sent; the worker retries it", extra={"refund_id": str(refund_id)})
        await _set_status(session, refund_id, RefundStatus.REQUESTED, str(exc.__cause__ or exc))
        return
    async with session.begin():
        await record_refund_succeeded(session, refund_id, sent.id)


async def retry_unsettled_refunds(sessions: async_sessionmaker[AsyncSession], gateway: StripeGateway) -> int:
    """One worker round: send refunds still `requested`, and recover those stuck in `sending`; answers how many."""
    stale_before = dt.datetime.now(dt.UTC) - STALE_SENDING
    async with sessions.begin() as session:
        unsettled = (
            await session.execute(
                select(Refund.id, Refund.status, Refund.payment_intent_id).where(
                    or_(
                        Refund.status == RefundStatus.REQUESTED,
                        (Refund.status == RefundStatus.SENDING) & (Refund.updated_at < stale_before),
                    )
                )
            )
        ).all()
    for refund_id, status, payment_intent_id in unsettled:
        async with sessions() as session:
            if status == RefundStatus.SENDING:
                found = await gateway.find_refund(payment_intent_id, refund_id)
                if found is not None:
                    async with session.begin():
                        await record_refund_succeeded(session, refund_id, found.id)
                    continue
                await _set_status(session, refund_id, RefundStatus.REQUESTED, "resent after an interrupted attempt")
            await issue_refund(session, gateway, refund_id)
    return len(unsettled)

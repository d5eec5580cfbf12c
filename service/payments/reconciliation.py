"""Reconciliation: ask Stripe about payments whose webhook has not come, and apply what it says.

A webhook can be lost (an outage longer than Stripe's retries, a misconfigured endpoint). For bookings still
PENDING, or EXPIRED within the last hour (a payment in flight when the hold ran out), whose PaymentIntent is
not final and has not changed for `quiet_for`, the job reads the PaymentIntent and applies it through
`settlement.apply_payment_intent`, the same code the webhook runs; it also retries refunds left unsent.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.bookings.models import Booking, BookingStatus
from service.payments.gateway import StripeGateway
from service.payments.models import Payment
from service.payments.refunds import issue_refund, retry_unsettled_refunds
from service.payments.settlement import FINAL_STATUSES, apply_payment_intent
from service.rounds import run_rounds
from service.settings import Settings

log = logging.getLogger(__name__)

QUIET_FOR = dt.timedelta(minutes=2)
LATE_PAYMENT_WINDOW = dt.timedelta(hours=1)
BATCH = 100
ROUND_INTERVAL_S = 30.0


async def reconcile_payments(
    sessions: async_sessionmaker[AsyncSession], gateway: StripeGateway, quiet_for: dt.timedelta = QUIET_FOR
) -> int:
    """One round over unsettled PaymentIntents; answers how many were looked up."""
    now = dt.datetime.now(dt.UTC)
    async with sessions.begin() as session:
        unsettled = list(
            await session.scalars(
                select(Payment.payment_intent_id)
                .join(Booking, Booking.id == Payment.booking_id)
                .where(
                    Payment.status.not_in(FINAL_STATUSES),
                    Payment.updated_at <= now - quiet_for,
                    or_(
                        Booking.status == BookingStatus.PENDING,
                        (Booking.status == BookingStatus.EXPIRED)
                        & (Booking.hold_expires_at > now - LATE_PAYMENT_WINDOW),
                    ),
                )
                .order_by(Payment.updated_at)
                .limit(BATCH)
            )
        )
    for payment_intent_id in unsettled:
        intent = await gateway.retrieve_payment_intent(payment_intent_id)
        async with sessions.begin() as session:
            refund_ids = await apply_payment_intent(session, intent)
        async with sessions() as session:
            for refund_id in refund_ids:
                await issue_refund(session, gateway, refund_id)
    return len(unsettled)


async def settle_payments(settings: Settings) -> None:
    """The worker job: reconcile and retry refunds each round until cancelled; a failed round is retried."""
    gateway = StripeGateway(settings)

    async def one_round(sessions: async_sessionmaker[AsyncSession]) -> float:
        looked_up = await reconcile_payments(sessions, gateway)
        retried = await retry_unsettled_refunds(sessions, gateway)
        if looked_up or retried:
            log.info("payments reconciled", extra={"looked_up": looked_up, "refunds_retried": retried})
        return ROUND_INTERVAL_S

    await run_rounds(settings, "payment reconciliation", one_round, after_failure=ROUND_INTERVAL_S)

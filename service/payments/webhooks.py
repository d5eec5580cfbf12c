"""Stripe webhooks: verified, stored once by event id, applied through `settlement`, refunds sent after commit.

The event id is inserted in the same transaction that applies the event: a replay (Stripe retries, or an
attacker resending a captured request within the signature tolerance) finds it and changes nothing, and an event
whose application failed was not stored, so Stripe's retry applies it.
"""

from __future__ import annotations

import logging

import msgspec
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.errors import Problem
from service.payments.gateway import ChargeState, PaymentIntentState, StripeGateway, from_stripe
from service.payments.models import StripeWebhookEvent
from service.payments.refunds import issue_refund
from service.payments.settlement import apply_charge_refunds, apply_payment_intent

log = logging.getLogger(__name__)

PAYMENT_INTENT_EVENTS = frozenset(
    {"payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled"}
)


async def handle_webhook(session: AsyncSession, gateway: StripeGateway, payload: bytes, signature: str | None) -> None:
    """Verify and apply one delivery; commits, then sends any refund it decided."""
    event = gateway.verify_event(payload, signature)
    first_time = await session.scalar(
        insert(StripeWebhookEvent)
        .values(event_id=event.id, type=event.type)
        .on_conflict_do_nothing()
        .returning(StripeWebhookEvent.event_id)
    )
    if first_time is None:
        log.info("stripe event replayed; ignored", extra={"event_id": event.id})
        return
    refund_ids = []
    try:
        if event.type in PAYMENT_INTENT_EVENTS:
            refund_ids = await apply_payment_intent(session, from_stripe(event.data.object, PaymentIntentState))
        elif event.type == "charge.refunded":
            await apply_charge_refunds(session, from_stripe(event.data.object, ChargeState))
    except msgspec.ValidationError as exc:
        raise Problem(f"The {event.type} event's object is not what Stripe sends: {exc}") from None
    await session.commit()
    for refund_id in refund_ids:
        await issue_refund(session, gateway, refund_id)

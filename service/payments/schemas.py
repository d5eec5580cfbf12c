"""Response bodies of the payment routes."""

from __future__ import annotations

import uuid

import msgspec


class CheckoutOut(msgspec.Struct):
    """What the client needs to confirm the payment with Stripe.js; `failure_reason` says why a try failed."""

    payment_intent_id: str
    client_secret: str
    publishable_key: str
    amount: int
    currency: str
    status: str
    failure_reason: str | None


class WebhookAck(msgspec.Struct):
    received: bool


class RefundOut(msgspec.Struct):
    id: uuid.UUID
    amount: int
    status: str

"""Checkout for a booking's guest, and the Stripe webhook endpoint."""

from __future__ import annotations

import uuid

from litestar import Controller, Request, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.security.jwt import Token
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.tokens import CurrentUser
from service.payments import checkout, webhooks
from service.payments.gateway import StripeGateway
from service.payments.schemas import CheckoutOut, WebhookAck
from service.settings import Settings


class CheckoutController(Controller):
    path = "/bookings/{booking_id:uuid}/checkout"
    tags = ["payments"]

    @post(status_code=200, summary="Create or return the booking's Stripe PaymentIntent (its guest; PENDING only)")
    async def start(
        self,
        db_session: NamedDependency[AsyncSession],
        stripe_gateway: NamedDependency[StripeGateway],
        settings: NamedDependency[Settings],
        request: Request[CurrentUser, Token, State],
        booking_id: FromPath[uuid.UUID],
    ) -> CheckoutOut:
        payment = await checkout.checkout(db_session, stripe_gateway, booking_id, request.user)
        return CheckoutOut(
            payment_intent_id=payment.payment_intent_id,
            client_secret=payment.client_secret,
            publishable_key=settings.stripe_publishable_key,
            amount=payment.amount,
            currency=payment.currency,
            status=payment.status,
            failure_reason=payment.failure_reason,
        )


class StripeWebhookController(Controller):
    path = "/webhooks/stripe"
    tags = ["payments"]

    @post(exclude_from_auth=True, status_code=200, summary="Stripe events, verified by their Stripe-Signature")
    async def receive(
        self,
        db_session: NamedDependency[AsyncSession],
        stripe_gateway: NamedDependency[StripeGateway],
        request: Request[None, None, State],
    ) -> WebhookAck:
        payload = await request.body()
        await webhooks.handle_webhook(db_session, stripe_gateway, payload, request.headers.get("Stripe-Signature"))
        return WebhookAck(received=True)

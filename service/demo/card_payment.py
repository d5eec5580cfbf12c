"""Paying a booking as the guest's browser does with Stripe.js: a test card attached to the PaymentIntent that
checkout answered, then confirmed. Stripe test mode (or localstripe) only; the demo's guests and the tests pay
this way."""

from __future__ import annotations

from typing import Any

import stripe

from service.settings import Settings

TEST_CARD = "4242424242424242"


class PaymentNotSucceeded(RuntimeError):
    """Stripe confirmed the PaymentIntent but did not answer `succeeded`."""


def stripe_client(settings: Settings) -> stripe.StripeClient:
    return stripe.StripeClient(
        settings.stripe_api_key,
        base_addresses={"api": settings.stripe_api_base},
        http_client=stripe.HTTPXClient(),
    )


async def pay(settings: Settings, payment_intent_id: str) -> dict[str, Any]:
    """Attach a test card and confirm; answers the succeeded PaymentIntent. (localstripe 1.15 confirms only once
    a PaymentMethod is attached: `confirm(id, payment_method=...)` answers "Not implemented".)"""
    sdk = stripe_client(settings)
    # Raw card numbers are for test mode only, which the SDK's types do not describe.
    card: Any = {"number": TEST_CARD, "exp_month": 12, "exp_year": 2040, "cvc": "123"}
    method = await sdk.v1.payment_methods.create_async(params={"type": "card", "card": card})
    await sdk.v1.payment_intents.update_async(payment_intent_id, params={"payment_method": method.id})
    intent = await sdk.v1.payment_intents.confirm_async(payment_intent_id)
    if intent.status != "succeeded":
        raise PaymentNotSucceeded(f"{payment_intent_id} is {intent.status} after confirming")
    return intent.to_dict()

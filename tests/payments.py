"""Steps of a payment story: checkout, the Stripe refunds of a payment and delivering signed Stripe events (paying
by test card on localstripe is `service.demo.card_payment.pay`, shared with the demo)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

from httpx import Response

from service.demo.card_payment import stripe_client
from service.settings import Settings
from tests.api import Client


async def checkout(client: Client, headers: dict[str, str], booking_id: str) -> dict[str, Any]:
    response = await client.post(f"/api/v1/bookings/{booking_id}/checkout", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def stripe_refunds(settings: Settings, payment_intent_id: str) -> list[int]:
    """The amounts Stripe has refunded on this payment, as Stripe itself reports them."""
    found = await stripe_client(settings).v1.refunds.list_async(params={"payment_intent": payment_intent_id})
    return [refund.amount for refund in found.data]


def signature(secret: str, payload: bytes, timestamp: int | None = None) -> str:
    """Stripe's scheme: `t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<payload>">`."""
    moment = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{moment}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={moment},v1={digest}"


def event(event_type: str, obj: dict[str, Any], event_id: str | None = None) -> bytes:
    body = {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "data": {"object": obj},
    }
    return json.dumps(body).encode()


async def deliver(client: Client, settings: Settings, payload: bytes) -> Response:
    """POST one event to the webhook, signed with the service's secret."""
    headers = {"Stripe-Signature": signature(settings.stripe_webhook_secret, payload)}
    return await client.post("/api/v1/webhooks/stripe", content=payload, headers=headers)

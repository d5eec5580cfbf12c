"""Stripe as StayPulse uses it: a thin async wrapper over the official SDK, pointed at `STRIPE_API_BASE`.

The SDK's `StripeClient` with its httpx client makes every call awaitable, so no request or job blocks the event
loop on the network. Objects coming back from Stripe, or in a webhook, are converted to the typed structs below
in one place, so the webhook and reconciliation apply exactly the same thing.
"""

from __future__ import annotations

import uuid
from http import HTTPStatus
from typing import Annotated, Any, TypeVar

import msgspec
import stripe

from service.errors import Problem
from service.settings import Settings

# Stripe's own default: a signature older than five minutes is refused, so a captured request cannot be replayed.
SIGNATURE_TOLERANCE_S = 300


class PaymentProviderUnavailable(Problem):
    """Stripe could not be reached or failed; nothing was changed, the client may retry."""

    status_code = HTTPStatus.SERVICE_UNAVAILABLE
    title_text = "Payment provider unavailable"


class InvalidSignature(Problem):
    status_code = HTTPStatus.BAD_REQUEST
    title_text = "Invalid webhook signature"


class RefundRefused(Exception):
    """Stripe answered that this refund cannot be made (not a transient failure); a person must look at it."""


# Lengths of the columns these values are stored in (service.payments.models): a longer value, which Stripe never
# sends, is refused as a malformed object (400) instead of failing in Postgres.
StripeId = Annotated[str, msgspec.Meta(max_length=255)]


class PaymentError(msgspec.Struct):
    message: str | None = None
    code: str | None = None


class PaymentIntentState(msgspec.Struct):
    """The fields of a Stripe PaymentIntent that decide what happens to its booking."""

    id: StripeId
    status: Annotated[str, msgspec.Meta(max_length=32)]
    amount: int
    currency: Annotated[str, msgspec.Meta(min_length=3, max_length=3)]
    client_secret: str | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    last_payment_error: PaymentError | None = None

    @property
    def booking_id(self) -> uuid.UUID | None:
        try:
            return uuid.UUID(self.metadata.get("booking_id", ""))
        except ValueError:
            return None

    @property
    def failure_reason(self) -> str | None:
        error = self.last_payment_error
        return (error.message or error.code or "payment failed") if error else None


class StripeRefundState(msgspec.Struct):
    id: StripeId
    amount: int
    status: str | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


class RefundList(msgspec.Struct):
    data: list[StripeRefundState] = msgspec.field(default_factory=list)


class ChargeState(msgspec.Struct):
    id: str
    payment_intent: str | None = None
    refunds: RefundList = msgspec.field(default_factory=RefundList)


class EventData(msgspec.Struct):
    object: dict[str, Any]


class StripeEvent(msgspec.Struct):
    id: StripeId
    type: Annotated[str, msgspec.Meta(max_length=128)]
    data: EventData


T = TypeVar("T")


def from_stripe(value: dict[str, Any], into: type[T]) -> T:
    """A Stripe object (webhook payload or API answer) as one of the structs above."""
    return msgspec.convert(value, into, strict=False)


class StripeGateway:
    """The Stripe calls StayPulse makes; failures become `PaymentProviderUnavailable` or `RefundRefused`."""

    def __init__(self, settings: Settings) -> None:
        self._client = stripe.StripeClient(
            settings.stripe_api_key,
            base_addresses={"api": settings.stripe_api_base},
            http_client=stripe.HTTPXClient(),
            max_network_retries=2,
        )
        self._webhook_secret = settings.stripe_webhook_secret

    async def create_payment_intent(self, booking_id: uuid.UUID, amount: int, currency: str) -> PaymentIntentState:
        """Stripe answers the same PaymentIntent to a repeated call with the same idempotency key."""
        try:
            intent = await self._client.v1.payment_intents.create_async(
                params={
                    "amount": amount,
                    "currency": currency.lower(),
                    "metadata": {"booking_id": str(booking_id)},
                },
                options={"idempotency_key": f"booking-{booking_id}-payment-intent"},
            )
        except stripe.StripeError as exc:
            raise PaymentProviderUnavailable("Could not start the payment; try again shortly.") from exc
        return from_stripe(intent.to_dict(), PaymentIntentState)

    async def retrieve_payment_intent(self, payment_intent_id: str) -> PaymentIntentState:
        try:
            intent = await self._client.v1.payment_intents.retrieve_async(payment_intent_id)
        except stripe.StripeError as exc:
            raise PaymentProviderUnavailable(f"Could not read {payment_intent_id} from Stripe.") from exc
        return from_stripe(intent.to_dict(), PaymentIntentState)

    async def refund(self, payment_intent_id: str, amount: int, refund_id: uuid.UUID) -> StripeRefundState:
        """Refund part or all of a payment; our refund id travels in the metadata so it can be found again."""
        try:
            refund = await self._client.v1.refunds.create_async(
                params={
                    "payment_intent": payment_intent_id,
                    "amount": amount,
                    "metadata": {"refund_id": str(refund_id)},
                },
                options={"idempotency_key": f"refund-{refund_id}"},
            )
        except (stripe.InvalidRequestError, stripe.CardError) as exc:
            raise RefundRefused(str(exc)) from exc
        except stripe.StripeError as exc:
            raise PaymentProviderUnavailable("Could not reach Stripe to refund.") from exc
        return from_stripe(refund.to_dict(), StripeRefundState)

    async def find_refund(self, payment_intent_id: str, refund_id: uuid.UUID) -> StripeRefundState | None:
        """The Stripe refund made for our refund id, if an earlier attempt got that far."""
        try:
            found = await self._client.v1.refunds.list_async(params={"payment_intent": payment_intent_id})
        except stripe.StripeError as exc:
            raise PaymentProviderUnavailable("Could not list refunds on Stripe.") from exc
        for refund in from_stripe(found.to_dict(), RefundList).data:
            if refund.metadata.get("refund_id") == str(refund_id):
                return refund
        return None

    def verify_event(self, payload: bytes, signature: str | None) -> StripeEvent:
        """The event, once the `Stripe-Signature` header proves Stripe sent this very body."""
        try:
            stripe.WebhookSignature.verify_header(
                payload, signature, self._webhook_secret, tolerance=SIGNATURE_TOLERANCE_S
            )
        # Stripe signs the body's text: a body that is not UTF-8 cannot carry a valid signature (the SDK's decode
        # would raise before checking anything).
        except (stripe.SignatureVerificationError, UnicodeDecodeError):
            raise InvalidSignature("The Stripe-Signature header is missing or does not match the body.") from None
        try:
            return msgspec.json.decode(payload, type=StripeEvent)
        except msgspec.DecodeError as exc:  # not JSON, or JSON of another shape (ValidationError)
            raise Problem(f"A signed body that is not a Stripe event: {exc}") from None

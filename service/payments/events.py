"""The payload shape of `payment.*` outbox events (a contract with the metrics pipeline; keep it exact).

Payload = `lifecycle.booking_event_fields(booking)` after the change (so `refunded_amount` is the running total)
plus `payment_intent_id` and `amount` (minor units of this payment or this refund), plus what the caller adds
(`refund_id` and `refunded_at` for refunds). The event names are written at their one producer each.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from service.bookings.lifecycle import booking_event_fields
from service.bookings.models import Booking
from service.outbox import record_event


async def record_payment_event(
    session: AsyncSession, event_type: str, booking: Booking, payment_intent_id: str, amount: int, **extra: Any
) -> None:
    await record_event(
        session,
        event_type,
        host_id=booking.host_id,
        property_id=booking.property_id,
        **booking_event_fields(booking),
        payment_intent_id=payment_intent_id,
        amount=amount,
        **extra,
    )

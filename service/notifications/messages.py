"""What guests and hosts are told, queued in the caller's transaction: booking changes, and hosts' reports.

Each message goes by e-mail and, when the user gave a phone number, by SMS; a booking change goes to the guest
and to the host. Writing
the rows with the state change means a message is never sent for a change that rolled back, and never lost
for one that committed.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.bookings.models import Booking
from service.notifications.models import Channel, Notification
from service.properties.models import Property
from service.users.models import User


class Kind(StrEnum):
    BOOKING_CONFIRMED = "booking.confirmed"
    BOOKING_CANCELLED = "booking.cancelled"
    REPORT_READY = "report.ready"
    REPORT_SCHEDULE_STOPPED = "report.schedule_stopped"


def _money(amount: int, currency: str) -> str:
    return f"{amount / 100:.2f} {currency}"


def _text(kind: Kind, booking: Booking, title: str, refund: int) -> tuple[str, str]:
    """(subject, body) for one booking change."""
    stay = f"{title}, {booking.check_in.isoformat()} to {booking.check_out.isoformat()}"
    if kind is Kind.BOOKING_CONFIRMED:
        return (
            f"Booking confirmed: {title}",
            f"Booking {booking.id} is confirmed: {stay}, {_money(booking.total_amount, booking.currency)} paid.",
        )
    refund_line = f" A refund of {_money(refund, booking.currency)} is on its way." if refund else ""
    return f"Booking cancelled: {title}", f"Booking {booking.id} is cancelled: {stay}.{refund_line}"


async def notify_booking(session: AsyncSession, booking: Booking, kind: Kind, *, refund: int = 0) -> None:
    """Queue `kind` for the booking's guest and host on every channel they can be reached on."""
    title = await session.scalar(select(Property.title).where(Property.id == booking.property_id))
    subject, body = _text(kind, booking, title or "your stay", refund)
    await _queue(session, [booking.guest_id, booking.host_id], kind, subject, body, booking_id=booking.id)


async def notify_user(session: AsyncSession, user_id: uuid.UUID, kind: Kind, subject: str, body: str) -> None:
    """Queue a message for one person on every channel they can be reached on."""
    await _queue(session, [user_id], kind, subject, body, booking_id=None)


async def _queue(
    session: AsyncSession,
    user_ids: list[uuid.UUID],
    kind: Kind,
    subject: str,
    body: str,
    booking_id: uuid.UUID | None,
) -> None:
    rows = []
    for person in await session.scalars(select(User).where(User.id.in_(user_ids))):
        common = {"user_id": person.id, "booking_id": booking_id, "kind": kind, "subject": subject, "body": body}
        rows.append({**common, "channel": Channel.EMAIL, "recipient": person.email})
        if person.phone:
            rows.append({**common, "channel": Channel.SMS, "recipient": person.phone})
    await session.execute(insert(Notification), rows)

"""A property's taken dates as an iCalendar (RFC 5545) feed that other channels poll.

The feed lives at a secret URL (`properties.calendar_token`): knowing it is the only permission needed, so the
host can rotate it to cut off whoever has it. Events carry no guest data, and each keeps the same UID for as
long as its booking or block exists, so a channel that imports the feed updates its own copy in place.
"""

from __future__ import annotations

import datetime as dt

from icalendar import Calendar, Event
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.bookings.models import Booking
from service.errors import NotFound
from service.properties.availability import booking_takes_nights
from service.properties.models import AvailabilityBlock, Property, new_calendar_token
from service.stays import local_today

PRODID = "-//StayPulse//Property calendar//EN"
FEED_PATH = "/api/v1/calendars/{token}.ics"


def feed_path(prop: Property) -> str:
    return FEED_PATH.format(token=prop.calendar_token)


async def rotate_token(session: AsyncSession, prop: Property) -> None:
    """A new secret; the old URL stops answering at once."""
    prop.calendar_token = new_calendar_token()
    await session.flush()


async def export_calendar(session: AsyncSession, token: str) -> bytes:
    """The feed behind `token`: every live booking and block that has not ended where the property is."""
    prop = await session.scalar(select(Property).where(Property.calendar_token == token, Property.deleted_at.is_(None)))
    if prop is None:
        raise NotFound("No calendar at this address; the link may have been replaced by a new one.")
    today = local_today(prop.timezone)
    calendar = Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    calendar.add("CALSCALE", "GREGORIAN")
    calendar.add("X-WR-CALNAME", prop.title)
    bookings = await session.execute(
        select(Booking.id, Booking.check_in, Booking.check_out, Booking.updated_at)
        .where(Booking.property_id == prop.id, Booking.check_out > today, booking_takes_nights())
        .order_by(Booking.check_in)
    )
    for booking_id, check_in, check_out, changed_at in bookings:
        calendar.add_component(
            _all_day_event(f"booking-{booking_id}@staypulse", "Reserved", check_in, check_out, changed_at)
        )
    blocks = await session.scalars(
        select(AvailabilityBlock)
        .where(AvailabilityBlock.property_id == prop.id, func.upper(AvailabilityBlock.during) > today)
        .order_by(AvailabilityBlock.during)
    )
    for block in blocks:
        assert block.during.lower is not None and block.during.upper is not None  # noqa: PT018 - blocks are bounded
        calendar.add_component(
            _all_day_event(
                f"block-{block.id}@staypulse", "Blocked", block.during.lower, block.during.upper, block.created_at
            )
        )
    body: bytes = calendar.to_ical()
    return body


def _all_day_event(uid: str, summary: str, start: dt.date, end: dt.date, stamp: dt.datetime) -> Event:
    """DTEND is exclusive, like a stay's check-out day; DTSTAMP is when the row last changed, so an unchanged
    booking exports byte for byte the same."""
    event = Event()
    event.add("UID", uid)
    event.add("DTSTAMP", stamp.astimezone(dt.UTC))
    event.add("DTSTART", start)
    event.add("DTEND", end)
    event.add("SUMMARY", summary)
    event.add("TRANSP", "OPAQUE")
    return event

"""Which nights of a property are free: host and imported blocks, live bookings, the past, too-short gaps.

A PENDING booking whose hold has run out no longer takes its nights, even before the expiry job has marked it
EXPIRED; `bookings.holds.expire_stale_holds` clears such rows before a new booking is inserted.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from sqlalchemy import ColumnElement, and_, delete, func, literal, or_, select
from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.ext.asyncio import AsyncSession

from service.bookings.models import Booking, BookingStatus
from service.errors import Conflict, InvalidRequest, NotFound
from service.outbox import record_event
from service.pricing import PricingRules, nightly_price
from service.properties.models import AvailabilityBlock, Property
from service.properties.schemas import BlockIn, Day
from service.stays import local_today


def stay_range(start: dt.date, end: dt.date) -> ColumnElement[Range[dt.date]]:
    return func.daterange(literal(start), literal(end))


def booking_takes_nights() -> ColumnElement[bool]:
    """A booking holds its nights while CONFIRMED, or PENDING with its hold still running."""
    return or_(
        Booking.status == BookingStatus.CONFIRMED,
        and_(Booking.status == BookingStatus.PENDING, Booking.hold_expires_at > func.now()),
    )


def overlapping_booking(property_id: ColumnElement[uuid.UUID], start: dt.date, end: dt.date) -> ColumnElement[bool]:
    """Matches the exclusion constraint's expression, so Postgres answers it from that GiST index."""
    return and_(
        Booking.property_id == property_id,
        Booking.status.in_((BookingStatus.PENDING, BookingStatus.CONFIRMED)),
        func.daterange(Booking.check_in, Booking.check_out).op("&&")(stay_range(start, end)),
        booking_takes_nights(),
    )


def overlapping_block(property_id: ColumnElement[uuid.UUID], start: dt.date, end: dt.date) -> ColumnElement[bool]:
    return and_(AvailabilityBlock.property_id == property_id, AvailabilityBlock.during.op("&&")(stay_range(start, end)))


async def taken_nights(session: AsyncSession, prop: Property, start: dt.date, end: dt.date) -> dict[dt.date, str]:
    """Each taken night in `[start, end)` with why: "blocked" or "booked"."""
    taken: dict[dt.date, str] = {}
    blocks = await session.scalars(
        select(AvailabilityBlock.during).where(overlapping_block(literal(prop.id), start, end))
    )
    for during in blocks:
        assert during.lower is not None and during.upper is not None  # noqa: PT018 - blocks are bounded
        _mark(taken, during.lower, during.upper, start, end, "blocked")
    stays = await session.execute(
        select(Booking.check_in, Booking.check_out).where(overlapping_booking(literal(prop.id), start, end))
    )
    for check_in, check_out in stays:
        _mark(taken, check_in, check_out, start, end, "booked")
    return taken


def _mark(taken: dict[dt.date, str], first: dt.date, stop: dt.date, start: dt.date, end: dt.date, why: str) -> None:
    night = max(first, start)
    while night < min(stop, end):
        taken[night] = why
        night += dt.timedelta(days=1)


async def calendar(
    session: AsyncSession, prop: Property, rules: PricingRules, start: dt.date, end: dt.date
) -> list[Day]:
    """Each day of `[start, end)` with its price and whether a stay can include that night."""
    # Look beyond the window so that a free gap crossing its edge is measured whole.
    margin = dt.timedelta(days=prop.min_nights)
    first, stop = start - margin, end + margin
    taken = await taken_nights(session, prop, first, stop)
    today = local_today(prop.timezone)
    nights = [first + dt.timedelta(days=offset) for offset in range((stop - first).days)]
    reasons = {night: "past" if night < today else taken[night] for night in nights if night < today or night in taken}
    for run in _free_runs(nights, reasons):
        # A gap shorter than the minimum stay cannot be booked; a run touching the look-ahead's edge may be longer.
        if len(run) < prop.min_nights and run[0] != first and run[-1] != nights[-1]:
            reasons.update(dict.fromkeys(run, "min_nights"))
    return [
        Day(date=day, available=day not in reasons, price=nightly_price(rules, day).price, reason=reasons.get(day))
        for day in nights
        if start <= day < end
    ]


def _free_runs(nights: list[dt.date], reasons: dict[dt.date, str]) -> list[list[dt.date]]:
    runs: list[list[dt.date]] = [[]]
    for night in nights:
        if night in reasons:
            runs.append([])
        else:
            runs[-1].append(night)
    return [run for run in runs if run]


async def add_block(session: AsyncSession, prop: Property, data: BlockIn) -> AvailabilityBlock:
    """Close dates; refused (409) where a live booking already holds them."""
    if data.end <= data.start:
        raise InvalidRequest("end must be after start.", field="end")
    if data.end <= local_today(prop.timezone):
        raise InvalidRequest("These dates are already past where the property is.", field="end")
    if (data.end - data.start).days > 731:
        raise InvalidRequest("A block spans at most 731 days.", field="end")
    booked = await session.scalar(
        select(Booking.id).where(overlapping_booking(literal(prop.id), data.start, data.end)).limit(1)
    )
    if booked is not None:
        raise Conflict(f"Booking {booked} holds some of these dates.", booking_id=str(booked))
    block = AvailabilityBlock(
        property_id=prop.id, during=Range(data.start, data.end, bounds="[)"), reason=data.reason.strip(), source="host"
    )
    session.add(block)
    await session.flush()
    await record_block_change(session, prop, "availability.blocked", block.id, block.during, block.source)
    return block


async def remove_block(session: AsyncSession, prop: Property, block_id: uuid.UUID) -> None:
    removed = await session.execute(
        delete(AvailabilityBlock)
        .where(AvailabilityBlock.id == block_id, AvailabilityBlock.property_id == prop.id)
        .returning(AvailabilityBlock.during, AvailabilityBlock.source)
    )
    row = removed.one_or_none()
    if row is None:
        raise NotFound(f"No block {block_id} on this property.")
    during, source = row
    await record_block_change(session, prop, "availability.unblocked", block_id, during, source)


async def record_block_change(
    session: AsyncSession,
    prop: Property,
    event_type: Literal["availability.blocked", "availability.unblocked"],
    block_id: uuid.UUID,
    during: Range[dt.date],
    source: str,
) -> None:
    """The one producer of block events, for host blocks and imported calendars alike, so both look the same."""
    assert during.lower is not None and during.upper is not None  # noqa: PT018 - blocks are bounded
    await record_event(
        session,
        event_type,
        host_id=prop.host_id,
        property_id=prop.id,
        block_id=str(block_id),
        start=during.lower.isoformat(),
        end=during.upper.isoformat(),
        source=source,
    )


async def list_blocks(session: AsyncSession, prop: Property, start: dt.date, end: dt.date) -> list[AvailabilityBlock]:
    rows = await session.scalars(
        select(AvailabilityBlock)
        .where(overlapping_block(literal(prop.id), start, end))
        .order_by(AvailabilityBlock.during)
    )
    return list(rows)

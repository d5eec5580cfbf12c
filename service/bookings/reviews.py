"""Reviews: one per stay, by its guest, once the stay is over."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.tokens import CurrentUser
from service.bookings.models import Booking, BookingStatus, Review
from service.bookings.schemas import ReviewIn
from service.errors import Conflict, NotFound
from service.properties.models import Property
from service.stays import local_today


async def add_review(session: AsyncSession, booking_id: uuid.UUID, guest: CurrentUser, data: ReviewIn) -> Review:
    booking = await session.scalar(select(Booking).where(Booking.id == booking_id, Booking.guest_id == guest.id))
    if booking is None:
        raise NotFound(f"No booking {booking_id} of yours.")
    if booking.status not in (BookingStatus.CONFIRMED, BookingStatus.COMPLETED):
        raise Conflict(f"A {booking.status} booking cannot be reviewed.")
    prop = await session.get_one(Property, booking.property_id)
    if booking.check_out > local_today(prop.timezone):
        raise Conflict(f"Reviews open on the check-out day, {booking.check_out}.")
    review = await session.scalar(
        insert(Review)
        .values(
            booking_id=booking.id,
            property_id=booking.property_id,
            guest_id=guest.id,
            rating=data.rating,
            comment=data.comment.strip(),
        )
        .on_conflict_do_nothing(index_elements=[Review.booking_id])
        .returning(Review)
    )
    if review is None:
        raise Conflict("This stay has already been reviewed.")
    return review


async def property_reviews(
    session: AsyncSession, property_id: uuid.UUID, limit: int, offset: int
) -> tuple[int, float | None, list[Review]]:
    count, average = (
        await session.execute(select(func.count(), func.avg(Review.rating)).where(Review.property_id == property_id))
    ).one()
    page = await session.scalars(
        select(Review)
        .where(Review.property_id == property_id)
        .order_by(Review.created_at.desc(), Review.id)
        .limit(limit)
        .offset(offset)
    )
    return int(count), round(float(average), 2) if average is not None else None, list(page)

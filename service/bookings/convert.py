"""Shapes booking and review rows into their public form."""

from __future__ import annotations

from service.bookings.models import Booking, Review
from service.bookings.schemas import BookingOut, PriceOut, ReviewOut


def booking_out(booking: Booking) -> BookingOut:
    return BookingOut(
        id=booking.id,
        property_id=booking.property_id,
        guest_id=booking.guest_id,
        host_id=booking.host_id,
        check_in=booking.check_in,
        check_out=booking.check_out,
        nights=booking.nights,
        guests=booking.guests,
        status=booking.status,  # type: ignore[arg-type]  # the table's check constraint admits only these
        price=PriceOut(
            currency=booking.currency,
            accommodation=booking.accommodation_amount,
            discount=booking.discount_amount,
            cleaning_fee=booking.cleaning_fee,
            service_fee=booking.service_fee,
            taxes=booking.taxes,
            total=booking.total_amount,
            nightly=list(booking.nightly_prices),
        ),
        refunded_amount=booking.refunded_amount,
        hold_expires_at=booking.hold_expires_at,
        created_at=booking.created_at,
        confirmed_at=booking.confirmed_at,
        cancelled_at=booking.cancelled_at,
        cancelled_by=booking.cancelled_by,
    )


def review_out(review: Review) -> ReviewOut:
    return ReviewOut(
        id=review.id,
        booking_id=review.booking_id,
        property_id=review.property_id,
        rating=review.rating,
        comment=review.comment,
        created_at=review.created_at,
    )

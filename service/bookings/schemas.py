"""Request and response bodies of bookings and reviews."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

import msgspec

from service.payments.schemas import RefundOut

Status = Literal["PENDING", "CONFIRMED", "COMPLETED", "EXPIRED", "CANCELLED"]


class BookingCreate(msgspec.Struct, forbid_unknown_fields=True):
    property_id: uuid.UUID
    check_in: dt.date
    check_out: dt.date
    guests: Annotated[int, msgspec.Meta(ge=1, le=50)] = 1


class PriceOut(msgspec.Struct):
    currency: str
    accommodation: int
    discount: int
    cleaning_fee: int
    service_fee: int
    taxes: int
    total: int
    nightly: list[int]


class BookingOut(msgspec.Struct):
    id: uuid.UUID
    property_id: uuid.UUID
    guest_id: uuid.UUID
    host_id: uuid.UUID
    check_in: dt.date
    check_out: dt.date
    nights: int
    guests: int
    status: Status
    price: PriceOut
    refunded_amount: int
    hold_expires_at: dt.datetime
    created_at: dt.datetime
    confirmed_at: dt.datetime | None
    cancelled_at: dt.datetime | None
    cancelled_by: str | None


class BookingPage(msgspec.Struct):
    items: list[BookingOut]
    limit: int
    offset: int
    has_more: bool


class CancellationOut(msgspec.Struct):
    booking: BookingOut
    refund_due: int
    refund: RefundOut | None = None  # the Stripe refund and its status, when the booking was paid


class ReviewIn(msgspec.Struct, forbid_unknown_fields=True):
    rating: Annotated[int, msgspec.Meta(ge=1, le=5)]
    comment: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class ReviewOut(msgspec.Struct):
    id: uuid.UUID
    booking_id: uuid.UUID
    property_id: uuid.UUID
    rating: int
    comment: str
    created_at: dt.datetime


class ReviewsOut(msgspec.Struct):
    property_id: uuid.UUID
    count: int
    average_rating: float | None
    items: list[ReviewOut]
    limit: int
    offset: int

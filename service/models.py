"""Imports every table so `Base.metadata` is complete (Alembic's autogenerate compares against it)."""

from ingest.tables import MetricBlock, MetricBooking, MetricDay, MetricProperty
from service.bookings.models import Booking, IdempotencyKey, Review
from service.db import Base
from service.outbox import OutboxEvent
from service.properties.models import (
    AvailabilityBlock,
    CalendarFeed,
    DatePriceOverride,
    Property,
    StayDiscount,
    WeekdayPrice,
)
from service.users.models import User

__all__ = [
    "AvailabilityBlock",
    "Base",
    "Booking",
    "CalendarFeed",
    "DatePriceOverride",
    "IdempotencyKey",
    "MetricBlock",
    "MetricBooking",
    "MetricDay",
    "MetricProperty",
    "OutboxEvent",
    "Property",
    "Review",
    "StayDiscount",
    "User",
    "WeekdayPrice",
]

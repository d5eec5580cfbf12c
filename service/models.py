"""Imports every table so `Base.metadata` is complete (Alembic's autogenerate compares against it)."""

from ingest.tables import MetricBlock, MetricBooking, MetricDay, MetricProperty
from reporting.models import Report, ReportFile, ReportSchedule
from service.bookings.models import Booking, IdempotencyKey, Review
from service.db import Base
from service.notifications.models import Notification
from service.outbox import OutboxEvent
from service.payments.models import Payment, Refund, StripeWebhookEvent
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
    "Notification",
    "OutboxEvent",
    "Payment",
    "Property",
    "Refund",
    "Report",
    "ReportFile",
    "ReportSchedule",
    "Review",
    "StayDiscount",
    "StripeWebhookEvent",
    "User",
    "WeekdayPrice",
]

"""Shapes a `Property` row into its public form (never the calendar export token)."""

from __future__ import annotations

from service.properties.models import Property
from service.properties.schemas import PropertyOut


def property_out(prop: Property) -> PropertyOut:
    return PropertyOut(
        id=prop.id,
        host_id=prop.host_id,
        title=prop.title,
        description=prop.description,
        city=prop.city,
        country=prop.country,
        timezone=prop.timezone,
        max_guests=prop.max_guests,
        currency=prop.currency,
        nightly_price=prop.nightly_price,
        cleaning_fee=prop.cleaning_fee,
        min_nights=prop.min_nights,
        max_nights=prop.max_nights,
        cancellation_policy=prop.cancellation_policy,
        tax_rate_bps=prop.tax_rate_bps,
        created_at=prop.created_at,
        updated_at=prop.updated_at,
    )

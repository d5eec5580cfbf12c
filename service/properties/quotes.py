"""Quoting a stay: every rule a booking must meet, then the price. `POST /bookings` calls the same function."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from service.errors import Conflict, InvalidRequest
from service.pricing import PricingRules, Quote, quote_stay
from service.properties.availability import stay_is_free
from service.properties.models import Property
from service.properties.pricing_rules import load_rules
from service.properties.schemas import NightOut, QuoteOut
from service.stays import check_stay_dates


def check_stay_fits(prop: Property, check_in: dt.date, check_out: dt.date, guests: int) -> None:
    """The rules of the stay itself, before any database lookup."""
    nights = check_stay_dates(check_in, check_out, prop.timezone)
    if guests > prop.max_guests:
        raise InvalidRequest(f"This property sleeps at most {prop.max_guests} guests.", field="guests")
    if nights < prop.min_nights:
        raise InvalidRequest(f"This property's minimum stay is {prop.min_nights} nights.", field="check_out")
    if nights > prop.max_nights:
        raise InvalidRequest(f"This property's maximum stay is {prop.max_nights} nights.", field="check_out")


async def quote_available_stay(
    session: AsyncSession,
    prop: Property,
    check_in: dt.date,
    check_out: dt.date,
    guests: int,
    service_fee_bps: int,
    rules: PricingRules | None = None,
) -> Quote:
    """Price a stay that is allowed and free; 422 for a stay that breaks a rule, 409 when nights are taken."""
    check_stay_fits(prop, check_in, check_out, guests)
    if not await stay_is_free(session, prop, check_in, check_out):
        raise Conflict("Some of these nights are not available.")
    return quote_stay(rules or await load_rules(session, prop), check_in, check_out, service_fee_bps)


def quote_out(prop: Property, check_in: dt.date, check_out: dt.date, guests: int, quote: Quote) -> QuoteOut:
    return QuoteOut(
        property_id=prop.id,
        check_in=check_in,
        check_out=check_out,
        guests=guests,
        nights=len(quote.nights),
        currency=prop.currency,
        nightly=[NightOut(night.date, night.price, night.rule) for night in quote.nights],
        accommodation=quote.accommodation,
        discount_percent=quote.discount_percent,
        discount=quote.discount,
        cleaning_fee=quote.cleaning_fee,
        service_fee=quote.service_fee,
        taxes=quote.taxes,
        total=quote.total,
    )

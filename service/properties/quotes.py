"""Quoting a stay: every rule a booking must meet, then the price. `POST /bookings` calls the same function.

Everything a stay needs from the database (the property's terms, its pricing rules for those nights, and
whether any of the nights is taken) comes from one statement, because this is the booking hot path. It runs on
the asyncpg connection (`service.db.pooled`), prepared once per connection, without SQLAlchemy's statement
compilation and result typing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import asyncpg

from service.errors import Conflict, InvalidRequest, NotFound
from service.pricing import DateOverride, PricingRules, Quote, quote_stay
from service.properties.schemas import NightOut, QuoteOut
from service.stays import check_stay_dates, check_stay_length

# A PENDING booking holds its nights until its hold runs out; `stale_hold` finds those that ran out but still
# sit in the exclusion constraint until marked EXPIRED. $1 is the property, [$2, $3) the stay; the JSON columns
# arrive decoded (SQLAlchemy's asyncpg dialect installs the codec on every connection of the pool).
STAY_TERMS = """
SELECT p.id, p.host_id, p.timezone, p.currency, p.max_guests, p.min_nights, p.max_nights,
       p.nightly_price, p.cleaning_fee, p.tax_rate_bps,
       (SELECT coalesce(json_agg(json_build_array(lower(o.during), upper(o.during), o.nightly_price)), '[]')
          FROM date_price_overrides o
         WHERE o.property_id = p.id AND o.during && daterange($2, $3)) AS overrides,
       (SELECT coalesce(json_object_agg(w.weekday, w.nightly_price), '{}')
          FROM weekday_prices w WHERE w.property_id = p.id) AS weekdays,
       (SELECT coalesce(json_object_agg(d.min_nights, d.percent), '{}')
          FROM stay_discounts d WHERE d.property_id = p.id) AS discounts,
       EXISTS (SELECT 1 FROM availability_blocks b
                WHERE b.property_id = p.id AND b.during && daterange($2, $3)) AS blocked,
       EXISTS (SELECT 1 FROM bookings k
                WHERE k.property_id = p.id AND k.status IN ('PENDING', 'CONFIRMED')
                  AND daterange(k.check_in, k.check_out) && daterange($2, $3)
                  AND (k.status = 'CONFIRMED' OR k.hold_expires_at > now())) AS booked,
       EXISTS (SELECT 1 FROM bookings k
                WHERE k.property_id = p.id AND k.status IN ('PENDING', 'CONFIRMED')
                  AND daterange(k.check_in, k.check_out) && daterange($2, $3)
                  AND k.status = 'PENDING' AND k.hold_expires_at <= now()) AS stale_hold
  FROM properties p
 WHERE p.id = $1 AND p.deleted_at IS NULL
"""


@dataclass(frozen=True)
class StayTerms:
    """A live property's terms for one stay."""

    property_id: uuid.UUID
    host_id: uuid.UUID
    timezone: str
    currency: str
    max_guests: int
    min_nights: int
    max_nights: int
    rules: PricingRules
    taken: bool
    stale_hold: bool


async def load_stay_terms(
    db: asyncpg.Connection, property_id: uuid.UUID, check_in: dt.date, check_out: dt.date
) -> StayTerms:
    row = await db.fetchrow(STAY_TERMS, property_id, check_in, check_out)
    if row is None:
        raise NotFound(f"No property {property_id}.")
    rules = PricingRules(
        base_nightly_price=row["nightly_price"],
        cleaning_fee=row["cleaning_fee"],
        tax_rate_bps=row["tax_rate_bps"],
        date_overrides=[
            DateOverride(dt.date.fromisoformat(start), dt.date.fromisoformat(end), price)
            for start, end, price in row["overrides"]
        ],
        weekday_prices={int(day): price for day, price in row["weekdays"].items()},
        stay_discounts={int(nights): percent for nights, percent in row["discounts"].items()},
    )
    return StayTerms(
        property_id=row["id"],
        host_id=row["host_id"],
        timezone=row["timezone"],
        currency=row["currency"],
        max_guests=row["max_guests"],
        min_nights=row["min_nights"],
        max_nights=row["max_nights"],
        rules=rules,
        taken=row["blocked"] or row["booked"],
        stale_hold=row["stale_hold"],
    )


def check_stay_fits(terms: StayTerms, check_in: dt.date, check_out: dt.date, guests: int) -> None:
    """The rules of the stay itself: dates, party size, minimum and maximum nights."""
    nights = check_stay_dates(check_in, check_out, terms.timezone)
    if guests > terms.max_guests:
        raise InvalidRequest(f"This property sleeps at most {terms.max_guests} guests.", field="guests")
    if nights < terms.min_nights:
        raise InvalidRequest(f"This property's minimum stay is {terms.min_nights} nights.", field="check_out")
    if nights > terms.max_nights:
        raise InvalidRequest(f"This property's maximum stay is {terms.max_nights} nights.", field="check_out")


async def quote_available_stay(
    db: asyncpg.Connection,
    property_id: uuid.UUID,
    check_in: dt.date,
    check_out: dt.date,
    guests: int,
    service_fee_bps: int,
) -> tuple[StayTerms, Quote]:
    """Price a stay that is allowed and free; 404 for no such property, 422 for a stay that breaks a rule,
    409 when nights are taken."""
    check_stay_length(check_in, check_out)
    terms = await load_stay_terms(db, property_id, check_in, check_out)
    check_stay_fits(terms, check_in, check_out, guests)
    if terms.taken:
        raise Conflict("Some of these nights are not available.")
    return terms, quote_stay(terms.rules, check_in, check_out, service_fee_bps)


def quote_out(
    property_id: uuid.UUID, currency: str, check_in: dt.date, check_out: dt.date, guests: int, quote: Quote
) -> QuoteOut:
    return QuoteOut(
        property_id=property_id,
        check_in=check_in,
        check_out=check_out,
        guests=guests,
        nights=len(quote.nights),
        currency=currency,
        nightly=[NightOut(night.date, night.price, night.rule) for night in quote.nights],
        accommodation=quote.accommodation,
        discount_percent=quote.discount_percent,
        discount=quote.discount,
        cleaning_fee=quote.cleaning_fee,
        service_fee=quote.service_fee,
        taxes=quote.taxes,
        total=quote.total,
    )

"""`GET /properties`: live properties in a city, big enough, free for the whole stay, with their quote.

One SQL statement filters; its plan uses `ix_properties_search` (city, price), the blocks' GiST index and the
bookings' exclusion-constraint index for the two NOT EXISTS checks (see docs/search.md for the EXPLAIN).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, exists, func, literal_column, not_, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.bookings.models import Booking
from service.pricing import Quote, quote_stay
from service.properties.availability import overlapping_block, overlapping_booking
from service.properties.models import AvailabilityBlock, Property
from service.properties.pricing_rules import load_rules_by_property
from service.stays import check_stay_dates

# The zone where a date begins last (UTC-12): a check-in before today there is past everywhere.
LATEST_ZONE = "Etc/GMT+12"


@dataclass(frozen=True)
class SearchCriteria:
    city: str | None
    check_in: dt.date | None
    check_out: dt.date | None
    guests: int
    min_price: int | None
    max_price: int | None
    limit: int
    offset: int

    @property
    def nights(self) -> int | None:
        if self.check_in is None or self.check_out is None:
            return None
        return (self.check_out - self.check_in).days


def search_statement(criteria: SearchCriteria) -> Select[tuple[Property]]:
    statement = select(Property).where(Property.deleted_at.is_(None), Property.max_guests >= criteria.guests)
    if criteria.city:
        statement = statement.where(func.lower(Property.city) == criteria.city.strip().lower())
    if criteria.min_price is not None:
        statement = statement.where(Property.nightly_price >= criteria.min_price)
    if criteria.max_price is not None:
        statement = statement.where(Property.nightly_price <= criteria.max_price)
    if criteria.check_in is not None and criteria.check_out is not None and criteria.nights is not None:
        property_id: ColumnElement[uuid.UUID] = literal_column("properties.id")
        statement = statement.where(
            Property.min_nights <= criteria.nights,
            Property.max_nights >= criteria.nights,
            not_(exists(select(AvailabilityBlock.id).where(
                overlapping_block(property_id, criteria.check_in, criteria.check_out)
            ))),
            not_(exists(select(Booking.id).where(
                overlapping_booking(property_id, criteria.check_in, criteria.check_out)
            ))),
        )  # fmt: skip
    return statement.order_by(Property.nightly_price, Property.id).limit(criteria.limit + 1).offset(criteria.offset)


async def search_properties(
    session: AsyncSession, criteria: SearchCriteria, service_fee_bps: int
) -> tuple[list[tuple[Property, Quote | None]], bool]:
    """One page of results, each with its quote when dates were given; and whether more pages follow."""
    if criteria.check_in is not None and criteria.check_out is not None:
        check_stay_dates(criteria.check_in, criteria.check_out, LATEST_ZONE)
    found = list(await session.scalars(search_statement(criteria)))
    page, has_more = found[: criteria.limit], len(found) > criteria.limit
    if criteria.check_in is None or criteria.check_out is None:
        return [(prop, None) for prop in page], has_more
    rules = await load_rules_by_property(session, page)
    quoted: list[tuple[Property, Quote | None]] = [
        (prop, quote_stay(rules[prop.id], criteria.check_in, criteria.check_out, service_fee_bps)) for prop in page
    ]
    return quoted, has_more

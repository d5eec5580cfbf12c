"""Request and response bodies of the host side; constraints are declared here, checks needing data in
`properties.validation`."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

import msgspec

Money = Annotated[int, msgspec.Meta(ge=0, le=100_000_000, description="Minor units of the property's currency")]
Nights = Annotated[int, msgspec.Meta(ge=1, le=365)]
CancellationPolicy = Literal["flexible", "moderate", "strict"]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S")]
City = Annotated[str, msgspec.Meta(min_length=1, max_length=120, pattern=r"\S")]
CountryCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$", examples=["PT"])]
CurrencyCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$", examples=["EUR"])]
TimeZone = Annotated[str, msgspec.Meta(min_length=1, max_length=64, examples=["Europe/Lisbon"])]
Description = Annotated[str, msgspec.Meta(max_length=5000)]
Guests = Annotated[int, msgspec.Meta(ge=1, le=50)]
TaxRate = Annotated[int, msgspec.Meta(ge=0, le=5000, description="Taxes in basis points (1000 = 10%)")]


class PropertyCreate(msgspec.Struct, forbid_unknown_fields=True):
    title: Title
    city: City
    country: CountryCode
    timezone: TimeZone
    max_guests: Guests
    currency: CurrencyCode
    nightly_price: Money
    cleaning_fee: Money = 0
    min_nights: Nights = 1
    max_nights: Nights = 365
    cancellation_policy: CancellationPolicy = "moderate"
    tax_rate_bps: TaxRate = 0
    description: Description = ""


class PropertyUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Only the fields sent change."""

    title: Title | msgspec.UnsetType = msgspec.UNSET
    city: City | msgspec.UnsetType = msgspec.UNSET
    country: CountryCode | msgspec.UnsetType = msgspec.UNSET
    timezone: TimeZone | msgspec.UnsetType = msgspec.UNSET
    max_guests: Guests | msgspec.UnsetType = msgspec.UNSET
    currency: CurrencyCode | msgspec.UnsetType = msgspec.UNSET
    nightly_price: Money | msgspec.UnsetType = msgspec.UNSET
    cleaning_fee: Money | msgspec.UnsetType = msgspec.UNSET
    min_nights: Nights | msgspec.UnsetType = msgspec.UNSET
    max_nights: Nights | msgspec.UnsetType = msgspec.UNSET
    cancellation_policy: CancellationPolicy | msgspec.UnsetType = msgspec.UNSET
    tax_rate_bps: TaxRate | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET


class PropertyOut(msgspec.Struct):
    id: uuid.UUID
    host_id: uuid.UUID
    title: str
    description: str
    city: str
    country: str
    timezone: str
    max_guests: int
    currency: str
    nightly_price: int
    cleaning_fee: int
    min_nights: int
    max_nights: int
    cancellation_policy: str
    tax_rate_bps: int
    created_at: dt.datetime
    updated_at: dt.datetime


class PropertyPage(msgspec.Struct):
    items: list[PropertyOut]
    limit: int
    offset: int
    has_more: bool


class DateOverrideIn(msgspec.Struct, forbid_unknown_fields=True):
    start: dt.date
    end: dt.date
    nightly_price: Money


class WeekdayPriceIn(msgspec.Struct, forbid_unknown_fields=True):
    weekday: Annotated[
        int, msgspec.Meta(ge=0, le=6, description="0 = Monday ... 6 = Sunday; the night starting that day")
    ]
    nightly_price: Money


class StayDiscountIn(msgspec.Struct, forbid_unknown_fields=True):
    min_nights: Annotated[int, msgspec.Meta(ge=2, le=365)]
    percent: Annotated[int, msgspec.Meta(ge=1, le=90)]


class PricingRulesIn(msgspec.Struct, forbid_unknown_fields=True):
    """The complete set of rules; what is not listed is removed."""

    date_overrides: Annotated[list[DateOverrideIn], msgspec.Meta(max_length=500)] = msgspec.field(default_factory=list)
    weekday_prices: Annotated[list[WeekdayPriceIn], msgspec.Meta(max_length=7)] = msgspec.field(default_factory=list)
    stay_discounts: Annotated[list[StayDiscountIn], msgspec.Meta(max_length=20)] = msgspec.field(default_factory=list)


class PricingRulesOut(msgspec.Struct):
    date_overrides: list[DateOverrideIn]
    weekday_prices: list[WeekdayPriceIn]
    stay_discounts: list[StayDiscountIn]


class PricingRulesUpdated(msgspec.Struct):
    changed: int
    rules: PricingRulesOut


class BlockIn(msgspec.Struct, forbid_unknown_fields=True):
    start: dt.date
    end: dt.date
    reason: Annotated[str, msgspec.Meta(max_length=200)] = ""


class BlockOut(msgspec.Struct):
    id: uuid.UUID
    start: dt.date
    end: dt.date
    reason: str
    source: str


class Day(msgspec.Struct):
    date: dt.date
    available: bool
    price: int
    # Why a day is not available: "past", "blocked", "booked" or "min_nights" (a gap too short to book).
    reason: str | None = None


class AvailabilityOut(msgspec.Struct):
    property_id: uuid.UUID
    currency: str
    min_nights: int
    max_nights: int
    days: list[Day]


class NightOut(msgspec.Struct):
    date: dt.date
    price: int
    rule: str


class QuoteOut(msgspec.Struct):
    property_id: uuid.UUID
    check_in: dt.date
    check_out: dt.date
    guests: int
    nights: int
    currency: str
    nightly: list[NightOut]
    accommodation: int
    discount_percent: int
    discount: int
    cleaning_fee: int
    service_fee: int
    taxes: int
    total: int


class SearchResult(msgspec.Struct):
    property: PropertyOut
    quote: QuoteOut | None


class SearchPage(msgspec.Struct):
    items: list[SearchResult]
    limit: int
    offset: int
    has_more: bool


class CalendarExportOut(msgspec.Struct):
    """Where other channels fetch this property's taken dates; whoever knows the URL can read them."""

    url: str


class CalendarImportIn(msgspec.Struct, forbid_unknown_fields=True):
    url: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=2000,
            description="Another channel's iCal export (http or https)",
            examples=["https://www.airbnb.com/calendar/ical/123.ics?s=abc"],
        ),
    ]


class CalendarImportOut(msgspec.Struct):
    id: uuid.UUID
    url: str
    last_synced_at: dt.datetime | None
    last_error: str | None
    next_sync_at: dt.datetime


class CalendarSyncOut(msgspec.Struct):
    """What one sync changed: blocks added, removed and left as they were; `error` when the feed was unusable
    (then nothing changed)."""

    added: int
    removed: int
    unchanged: int
    error: str | None

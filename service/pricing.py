"""Prices a stay. Quotes and bookings call the same function, so they always agree.

Precedence, per night (documented in docs/pricing.md):
1. a date-range override covering that night (overrides of one property never overlap);
2. else the weekday price for that night's weekday (the night of Friday to Saturday is a Friday night);
3. else the property's base nightly price.
Then the largest length-of-stay discount whose `min_nights` the stay reaches takes `percent` off the
accommodation (never off the cleaning fee). The guest service fee is a share of accommodation after discount
plus cleaning; taxes are the property's rate on that same amount. All amounts are integers in minor units,
rounded half up once per line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class DateOverride:
    start: dt.date
    end: dt.date  # exclusive
    nightly_price: int

    def covers(self, night: dt.date) -> bool:
        return self.start <= night < self.end


@dataclass(frozen=True)
class PricingRules:
    base_nightly_price: int
    cleaning_fee: int
    tax_rate_bps: int
    date_overrides: Sequence[DateOverride] = ()
    weekday_prices: dict[int, int] | None = None
    stay_discounts: dict[int, int] | None = None  # min_nights -> percent


@dataclass(frozen=True)
class Night:
    date: dt.date
    price: int
    rule: str  # "date_override", "weekday" or "base": which rule set the price


@dataclass(frozen=True)
class Quote:
    nights: list[Night]
    accommodation: int
    discount_percent: int
    discount: int
    cleaning_fee: int
    service_fee: int
    taxes: int
    total: int

    @property
    def net_nightly_prices(self) -> list[int]:
        """What each night earns after the discount, spread so the nights sum to accommodation - discount."""
        if self.discount == 0:
            return [night.price for night in self.nights]
        shares = [night.price * self.discount // self.accommodation for night in self.nights]
        # Flooring leaves fewer than one unit per night; the dearest nights take it.
        by_price = sorted(range(len(self.nights)), key=lambda index: -self.nights[index].price)
        for index in by_price[: self.discount - sum(shares)]:
            shares[index] += 1
        return [night.price - share for night, share in zip(self.nights, shares, strict=True)]


def percent_of(amount: int, percent: int) -> int:
    return (amount * percent + 50) // 100


def bps_of(amount: int, bps: int) -> int:
    return (amount * bps + 5_000) // 10_000


def nightly_price(rules: PricingRules, night: dt.date) -> Night:
    for override in rules.date_overrides:
        if override.covers(night):
            return Night(night, override.nightly_price, "date_override")
    weekday_price = (rules.weekday_prices or {}).get(night.weekday())
    if weekday_price is not None:
        return Night(night, weekday_price, "weekday")
    return Night(night, rules.base_nightly_price, "base")


def stay_discount_percent(rules: PricingRules, nights: int) -> int:
    eligible = [percent for min_nights, percent in (rules.stay_discounts or {}).items() if nights >= min_nights]
    return max(eligible, default=0)


def quote_stay(rules: PricingRules, check_in: dt.date, check_out: dt.date, service_fee_bps: int) -> Quote:
    count = (check_out - check_in).days
    nights = [nightly_price(rules, check_in + dt.timedelta(days=offset)) for offset in range(count)]
    accommodation = sum(night.price for night in nights)
    discount_percent = stay_discount_percent(rules, count)
    discount = percent_of(accommodation, discount_percent)
    fee_base = accommodation - discount + rules.cleaning_fee
    service_fee = bps_of(fee_base, service_fee_bps)
    taxes = bps_of(fee_base, rules.tax_rate_bps)
    return Quote(
        nights=nights,
        accommodation=accommodation,
        discount_percent=discount_percent,
        discount=discount,
        cleaning_fee=rules.cleaning_fee,
        service_fee=service_fee,
        taxes=taxes,
        total=fee_base + service_fee + taxes,
    )

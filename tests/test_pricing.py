"""The pricing function's precedence, worked out by hand the way a host would check an invoice."""

from __future__ import annotations

import datetime as dt

from service.pricing import DateOverride, PricingRules, quote_stay

# 2027-03-01 is a Monday.
MONDAY = dt.date(2027, 3, 1)
RULES = PricingRules(
    base_nightly_price=10_000,
    cleaning_fee=3_000,
    tax_rate_bps=600,
    date_overrides=[DateOverride(MONDAY + dt.timedelta(days=5), MONDAY + dt.timedelta(days=7), 20_000)],
    weekday_prices={4: 15_000, 5: 15_000},  # Friday and Saturday nights
    stay_discounts={7: 10, 28: 25},
)


def test_weekday_price_applies_to_friday_and_saturday_nights() -> None:
    quote = quote_stay(RULES, MONDAY + dt.timedelta(days=3), MONDAY + dt.timedelta(days=5), service_fee_bps=0)
    assert [(n.price, n.rule) for n in quote.nights] == [(10_000, "base"), (15_000, "weekday")]


def test_date_override_beats_weekday_across_a_rule_boundary() -> None:
    # Thu, Fri (weekday), Sat + Sun (override 20_000, although Saturday has a weekday price), Mon (base).
    quote = quote_stay(RULES, MONDAY + dt.timedelta(days=3), MONDAY + dt.timedelta(days=8), service_fee_bps=1_000)
    assert [n.price for n in quote.nights] == [10_000, 15_000, 20_000, 20_000, 10_000]
    assert [n.rule for n in quote.nights] == ["base", "weekday", "date_override", "date_override", "base"]
    assert quote.accommodation == 75_000
    assert quote.discount == 0
    assert quote.service_fee == 7_800  # 10% of 75_000 + 3_000
    assert quote.taxes == 4_680  # 6% of 78_000
    assert quote.total == 78_000 + 7_800 + 4_680


def test_the_largest_reached_stay_discount_applies_to_accommodation_only() -> None:
    week = quote_stay(RULES, MONDAY, MONDAY + dt.timedelta(days=7), service_fee_bps=0)
    # Mon-Thu 4 x 10_000, Fri 15_000, Sat + Sun override 2 x 20_000
    assert week.accommodation == 95_000
    assert week.discount_percent == 10
    assert week.discount == 9_500
    assert week.total == 95_000 - 9_500 + 3_000 + 5_310  # taxes: 6% of 88_500
    month = quote_stay(RULES, MONDAY, MONDAY + dt.timedelta(days=28), service_fee_bps=0)
    assert month.discount_percent == 25


def test_net_nightly_prices_sum_to_the_discounted_accommodation() -> None:
    quote = quote_stay(RULES, MONDAY, MONDAY + dt.timedelta(days=9), service_fee_bps=0)
    net = quote.net_nightly_prices
    assert sum(net) == quote.accommodation - quote.discount
    assert all(0 <= price <= night.price for price, night in zip(net, quote.nights, strict=True))


def test_rounding_is_half_up_in_minor_units() -> None:
    rules = PricingRules(base_nightly_price=1_005, cleaning_fee=0, tax_rate_bps=0)
    quote = quote_stay(rules, MONDAY, MONDAY + dt.timedelta(days=1), service_fee_bps=1_000)
    assert quote.service_fee == 101  # 100.5 rounds up

"""A property's pricing rules: loading them for the pricing function and replacing them as one set."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.ext.asyncio import AsyncSession

from service.errors import InvalidField
from service.outbox import record_event
from service.pricing import DateOverride, PricingRules
from service.properties.models import DatePriceOverride, Property, StayDiscount, WeekdayPrice
from service.properties.schemas import (
    DateOverrideIn,
    PricingRulesIn,
    PricingRulesOut,
    StayDiscountIn,
    WeekdayPriceIn,
)
from service.properties.service import property_event_fields


async def load_rules_by_property(session: AsyncSession, properties: list[Property]) -> dict[uuid.UUID, PricingRules]:
    """Every listed property's rules in three queries, whatever the number of properties."""
    ids = [prop.id for prop in properties]
    overrides: dict[uuid.UUID, list[DateOverride]] = {pid: [] for pid in ids}
    weekdays: dict[uuid.UUID, dict[int, int]] = {pid: {} for pid in ids}
    discounts: dict[uuid.UUID, dict[int, int]] = {pid: {} for pid in ids}
    for row in await session.scalars(select(DatePriceOverride).where(DatePriceOverride.property_id.in_(ids))):
        assert row.during.lower is not None and row.during.upper is not None  # noqa: PT018 - bounded by the API
        overrides[row.property_id].append(DateOverride(row.during.lower, row.during.upper, row.nightly_price))
    for weekday in await session.scalars(select(WeekdayPrice).where(WeekdayPrice.property_id.in_(ids))):
        weekdays[weekday.property_id][weekday.weekday] = weekday.nightly_price
    for discount in await session.scalars(select(StayDiscount).where(StayDiscount.property_id.in_(ids))):
        discounts[discount.property_id][discount.min_nights] = discount.percent
    return {
        prop.id: PricingRules(
            base_nightly_price=prop.nightly_price,
            cleaning_fee=prop.cleaning_fee,
            tax_rate_bps=prop.tax_rate_bps,
            date_overrides=sorted(overrides[prop.id], key=lambda override: override.start),
            weekday_prices=weekdays[prop.id],
            stay_discounts=discounts[prop.id],
        )
        for prop in properties
    }


async def load_rules(session: AsyncSession, prop: Property) -> PricingRules:
    return (await load_rules_by_property(session, [prop]))[prop.id]


def rules_out(rules: PricingRules) -> PricingRulesOut:
    return PricingRulesOut(
        date_overrides=[DateOverrideIn(o.start, o.end, o.nightly_price) for o in rules.date_overrides],
        weekday_prices=[WeekdayPriceIn(day, price) for day, price in sorted((rules.weekday_prices or {}).items())],
        stay_discounts=[
            StayDiscountIn(nights, percent) for nights, percent in sorted((rules.stay_discounts or {}).items())
        ],
    )


def _check_rules(data: PricingRulesIn) -> None:
    previous_end = None
    for index, override in enumerate(sorted(data.date_overrides, key=lambda o: o.start)):
        if override.end <= override.start:
            raise InvalidField(f"date_overrides[{index}].end", "must be after start")
        if previous_end is not None and override.start < previous_end:
            raise InvalidField("date_overrides", "date ranges overlap; each night may have one override")
        previous_end = override.end
    if len({w.weekday for w in data.weekday_prices}) != len(data.weekday_prices):
        raise InvalidField("weekday_prices", "a weekday appears twice")
    if len({d.min_nights for d in data.stay_discounts}) != len(data.stay_discounts):
        raise InvalidField("stay_discounts", "a min_nights appears twice")


async def replace_rules(session: AsyncSession, prop: Property, data: PricingRulesIn) -> tuple[int, PricingRules]:
    """Make the stored rules equal `data`; answers how many rows were added or removed (0 when unchanged)."""
    _check_rules(data)
    current = rules_out(await load_rules(session, prop))
    changed = 0
    for table, have, want in (
        (DatePriceOverride, current.date_overrides, data.date_overrides),
        (WeekdayPrice, current.weekday_prices, data.weekday_prices),
        (StayDiscount, current.stay_discounts, data.stay_discounts),
    ):
        removed = [rule for rule in have if rule not in want]
        added = [rule for rule in want if rule not in have]
        changed += len(removed) + len(added)
        if removed:
            await session.execute(delete(table).where(table.property_id == prop.id))
            added = list(want)
        session.add_all(_row(prop.id, rule) for rule in added)
    await session.flush()
    if changed:
        await record_event(
            session,
            "property.updated",
            host_id=prop.host_id,
            property_id=prop.id,
            changed=["pricing_rules"],
            **property_event_fields(prop),
        )
    return changed, await load_rules(session, prop)


def _row(property_id: uuid.UUID, rule: DateOverrideIn | WeekdayPriceIn | StayDiscountIn) -> object:
    if isinstance(rule, DateOverrideIn):
        return DatePriceOverride(
            property_id=property_id, during=Range(rule.start, rule.end, bounds="[)"), nightly_price=rule.nightly_price
        )
    if isinstance(rule, WeekdayPriceIn):
        return WeekdayPrice(property_id=property_id, weekday=rule.weekday, nightly_price=rule.nightly_price)
    return StayDiscount(property_id=property_id, min_nights=rule.min_nights, percent=rule.percent)

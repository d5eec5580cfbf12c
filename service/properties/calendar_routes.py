"""Pricing rules, blocks, the availability calendar and quotes of one property."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from litestar import Controller, Request, delete, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.security.jwt import Token
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.guards import host_only
from service.auth.tokens import CurrentUser
from service.db import pooled
from service.properties import availability
from service.properties.models import AvailabilityBlock
from service.properties.pricing_rules import load_rules, replace_rules, rules_out
from service.properties.quotes import quote_available_stay, quote_out
from service.properties.schemas import (
    AvailabilityOut,
    BlockIn,
    BlockOut,
    PricingRulesIn,
    PricingRulesOut,
    PricingRulesUpdated,
    QuoteOut,
)
from service.properties.service import get_owned_property, get_property
from service.settings import Settings
from service.stays import check_date_window

AuthRequest = Request[CurrentUser, Token, State]
From = Annotated[dt.date, QueryParameter(name="from", description="First day, inclusive")]
To = Annotated[dt.date, QueryParameter(name="to", description="Last day, exclusive")]


class PropertyCalendarController(Controller):
    path = "/properties/{property_id:uuid}"
    tags = ["availability and pricing"]

    @get("/pricing-rules", exclude_from_auth=True, summary="The property's pricing rules")
    async def pricing_rules(
        self, db_session: NamedDependency[AsyncSession], property_id: FromPath[uuid.UUID]
    ) -> PricingRulesOut:
        return rules_out(await load_rules(db_session, await get_property(db_session, property_id)))

    @put("/pricing-rules", guards=[host_only], summary="Replace all pricing rules (owner); answers rows changed")
    async def replace_pricing_rules(
        self,
        db_session: NamedDependency[AsyncSession],
        request: AuthRequest,
        property_id: FromPath[uuid.UUID],
        data: JSONBody[PricingRulesIn],
    ) -> PricingRulesUpdated:
        prop = await get_owned_property(db_session, property_id, request.user, for_update=True)
        changed, rules = await replace_rules(db_session, prop, data)
        return PricingRulesUpdated(changed=changed, rules=rules_out(rules))

    @get("/blocks", guards=[host_only], summary="Blocked dates in a window (owner)")
    async def blocks(
        self,
        db_session: NamedDependency[AsyncSession],
        request: AuthRequest,
        property_id: FromPath[uuid.UUID],
        start: From,
        end: To,
    ) -> list[BlockOut]:
        check_date_window(start, end)
        prop = await get_owned_property(db_session, property_id, request.user)
        return [block_out(block) for block in await availability.list_blocks(db_session, prop, start, end)]

    @post("/blocks", guards=[host_only], summary="Close dates (owner)")
    async def add_block(
        self,
        db_session: NamedDependency[AsyncSession],
        request: AuthRequest,
        property_id: FromPath[uuid.UUID],
        data: JSONBody[BlockIn],
    ) -> BlockOut:
        prop = await get_owned_property(db_session, property_id, request.user, for_update=True)
        return block_out(await availability.add_block(db_session, prop, data))

    @delete("/blocks/{block_id:uuid}", guards=[host_only], summary="Reopen blocked dates (owner)")
    async def remove_block(
        self,
        db_session: NamedDependency[AsyncSession],
        request: AuthRequest,
        property_id: FromPath[uuid.UUID],
        block_id: FromPath[uuid.UUID],
    ) -> None:
        prop = await get_owned_property(db_session, property_id, request.user)
        await availability.remove_block(db_session, prop, block_id)

    @get("/availability", exclude_from_auth=True, summary="Each day: available, price")
    async def availability(
        self, db_session: NamedDependency[AsyncSession], property_id: FromPath[uuid.UUID], start: From, end: To
    ) -> AvailabilityOut:
        check_date_window(start, end)
        prop = await get_property(db_session, property_id)
        days = await availability.calendar(db_session, prop, await load_rules(db_session, prop), start, end)
        return AvailabilityOut(
            property_id=prop.id,
            currency=prop.currency,
            min_nights=prop.min_nights,
            max_nights=prop.max_nights,
            days=days,
        )

    @get("/quote", exclude_from_auth=True, summary="Price breakdown of a stay")
    async def quote(
        self,
        state: State,
        settings: NamedDependency[Settings],
        property_id: FromPath[uuid.UUID],
        check_in: FromQuery[dt.date],
        check_out: FromQuery[dt.date],
        guests: Annotated[int, QueryParameter(ge=1, le=50)] = 1,
    ) -> QuoteOut:
        async with pooled(state.engine) as db:
            terms, quote = await quote_available_stay(
                db.driver, property_id, check_in, check_out, guests, settings.guest_service_fee_bps
            )
        return quote_out(terms.property_id, terms.currency, check_in, check_out, guests, quote)


def block_out(block: AvailabilityBlock) -> BlockOut:
    assert block.during.lower is not None and block.during.upper is not None  # noqa: PT018 - blocks are bounded
    return BlockOut(
        id=block.id, start=block.during.lower, end=block.during.upper, reason=block.reason, source=block.source
    )

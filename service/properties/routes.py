"""Properties: create, read, update, delete, search, and a host's own list."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from litestar import Controller, Request, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.security.jwt import Token
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.guards import host_only
from service.auth.tokens import CurrentUser
from service.errors import InvalidField
from service.properties import service
from service.properties.convert import property_out
from service.properties.quotes import quote_out
from service.properties.schemas import (
    PropertyCreate,
    PropertyOut,
    PropertyPage,
    PropertyUpdate,
    SearchPage,
    SearchResult,
)
from service.properties.search import SearchCriteria, search_properties
from service.settings import Settings

Limit = Annotated[int, QueryParameter(ge=1, le=100, description="Page size")]
Offset = Annotated[int, QueryParameter(ge=0, le=10_000)]
# `nightly_price` is a 32-bit integer column: a filter beyond its range reached Postgres and answered 500.
PRICE_FILTER_MAX = 2**31 - 1
AuthRequest = Request[CurrentUser, Token, State]


class PropertyController(Controller):
    path = "/properties"
    tags = ["properties"]

    @post(guards=[host_only], summary="List a new property (host)")
    async def create(
        self, db_session: NamedDependency[AsyncSession], request: AuthRequest, data: JSONBody[PropertyCreate]
    ) -> PropertyOut:
        return property_out(await service.create_property(db_session, request.user, data))

    @get(exclude_from_auth=True, summary="Search properties free for a stay")
    async def search(
        self,
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        city: Annotated[str | None, QueryParameter(max_length=120)] = None,
        check_in: FromQuery[dt.date | None] = None,
        check_out: FromQuery[dt.date | None] = None,
        guests: Annotated[int, QueryParameter(ge=1, le=50)] = 1,
        min_price: Annotated[
            int | None, QueryParameter(ge=0, le=PRICE_FILTER_MAX, description="Lowest base nightly price")
        ] = None,
        max_price: Annotated[
            int | None, QueryParameter(ge=0, le=PRICE_FILTER_MAX, description="Highest base nightly price")
        ] = None,
        limit: Limit = 20,
        offset: Offset = 0,
    ) -> SearchPage:
        if (check_in is None) != (check_out is None):
            raise InvalidField("check_out" if check_out is None else "check_in", "give both dates or neither", "query")
        criteria = SearchCriteria(city, check_in, check_out, guests, min_price, max_price, limit, offset)
        found, has_more = await search_properties(db_session, criteria, settings.guest_service_fee_bps)
        items = [
            SearchResult(
                property=property_out(prop),
                quote=quote_out(prop.id, prop.currency, check_in, check_out, guests, quote)
                if quote and check_in and check_out
                else None,
            )
            for prop, quote in found
        ]
        return SearchPage(items=items, limit=limit, offset=offset, has_more=has_more)

    @get("/{property_id:uuid}", exclude_from_auth=True, summary="A property")
    async def read(self, db_session: NamedDependency[AsyncSession], property_id: FromPath[uuid.UUID]) -> PropertyOut:
        return property_out(await service.get_property(db_session, property_id))

    @patch("/{property_id:uuid}", guards=[host_only], summary="Change some fields (owner)")
    async def update(
        self,
        db_session: NamedDependency[AsyncSession],
        request: AuthRequest,
        property_id: FromPath[uuid.UUID],
        data: JSONBody[PropertyUpdate],
    ) -> PropertyOut:
        return property_out(await service.update_property(db_session, property_id, request.user, data))

    @delete("/{property_id:uuid}", guards=[host_only], summary="Delete (owner); past bookings are kept")
    async def remove(
        self, db_session: NamedDependency[AsyncSession], request: AuthRequest, property_id: FromPath[uuid.UUID]
    ) -> None:
        await service.delete_property(db_session, property_id, request.user)


class HostPropertiesController(Controller):
    path = "/hosts/me/properties"
    tags = ["properties"]

    @get(guards=[host_only], summary="The caller's properties")
    async def mine(
        self, db_session: NamedDependency[AsyncSession], request: AuthRequest, limit: Limit = 20, offset: Offset = 0
    ) -> PropertyPage:
        found, has_more = await service.list_host_properties(db_session, request.user.id, limit, offset)
        return PropertyPage(items=[property_out(p) for p in found], limit=limit, offset=offset, has_more=has_more)

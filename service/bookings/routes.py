"""Bookings and reviews over HTTP."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter
from litestar.security.jwt import Token
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from service.auth.guards import require_role
from service.auth.tokens import CurrentUser
from service.bookings import reviews, service
from service.bookings.convert import booking_out, review_out
from service.bookings.idempotency import check_key
from service.bookings.locks import PropertyLocks
from service.bookings.schemas import (
    BookingCreate,
    BookingOut,
    BookingPage,
    CancellationOut,
    ReviewIn,
    ReviewOut,
    ReviewsOut,
    Status,
)
from service.payments.gateway import StripeGateway
from service.payments.schemas import RefundOut
from service.properties.service import get_property
from service.settings import Settings

AuthRequest = Request[CurrentUser, Token, State]
Limit = Annotated[int, QueryParameter(ge=1, le=100)]
Offset = Annotated[int, QueryParameter(ge=0, le=10_000)]


class BookingController(Controller):
    path = "/bookings"
    tags = ["bookings"]

    @post(summary="Hold a stay (PENDING until paid); guest role; Idempotency-Key makes retries safe")
    async def create(
        self,
        state: State,
        request: AuthRequest,
        data: JSONBody[BookingCreate],
        idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key", max_length=255)] = None,
    ) -> Response[BookingOut]:
        require_role(request.user, "guest")  # not a guard: see service.auth.guards
        # The engine, the property locks and the settings come from the app state (`service.app`), not as
        # dependencies: Litestar resolves two or more dependencies of a handler in an anyio task group per request
        # (litestar#4563), which cost this hot path about 6% of its CPU; and no session is made for the request
        # (`service.bookings.service` says why).
        engine: AsyncEngine = state.engine
        locks: PropertyLocks = state.property_locks
        settings: Settings = state.settings
        key = check_key(idempotency_key) if idempotency_key is not None else None
        created = await service.create_booking(engine, locks, settings, request.user, data, key)
        headers = {"Idempotent-Replayed": "true"} if created.replayed else {}
        return Response(booking_out(created.booking), status_code=201, headers=headers)

    @get(summary="My bookings as a guest, or with as=host the bookings of my properties")
    async def list_bookings(
        self,
        db_session: NamedDependency[AsyncSession],
        request: AuthRequest,
        as_role: Annotated[str, QueryParameter(name="as", pattern="^(guest|host)$")] = "guest",
        property_id: FromQuery[uuid.UUID | None] = None,
        status: FromQuery[Status | None] = None,
        start: Annotated[dt.date | None, QueryParameter(name="from")] = None,
        end: Annotated[dt.date | None, QueryParameter(name="to")] = None,
        limit: Limit = 20,
        offset: Offset = 0,
    ) -> BookingPage:
        criteria = service.BookingFilter(as_role == "host", property_id, status, start, end, limit, offset)
        found, has_more = await service.list_bookings(db_session, request.user, criteria)
        return BookingPage(items=[booking_out(b) for b in found], limit=limit, offset=offset, has_more=has_more)

    @get("/{booking_id:uuid}", summary="A booking of mine (as guest or host)")
    async def read(
        self, db_session: NamedDependency[AsyncSession], request: AuthRequest, booking_id: FromPath[uuid.UUID]
    ) -> BookingOut:
        return booking_out(await service.get_visible_booking(db_session, booking_id, request.user))

    @post("/{booking_id:uuid}/cancel", status_code=200, summary="Cancel (guest or host); answers the refund due")
    async def cancel(
        self,
        db_session: NamedDependency[AsyncSession],
        stripe_gateway: NamedDependency[StripeGateway],
        request: AuthRequest,
        booking_id: FromPath[uuid.UUID],
    ) -> CancellationOut:
        cancelled = await service.cancel_and_refund(db_session, stripe_gateway, booking_id, request.user)
        refund = cancelled.refund
        return CancellationOut(
            booking=booking_out(cancelled.booking),
            refund_due=cancelled.refund_due,
            refund=RefundOut(id=refund.id, amount=refund.amount, status=refund.status) if refund else None,
        )

    @post("/{booking_id:uuid}/review", summary="Review a stay after check-out (its guest, once)")
    async def review(
        self,
        db_session: NamedDependency[AsyncSession],
        request: AuthRequest,
        booking_id: FromPath[uuid.UUID],
        data: JSONBody[ReviewIn],
    ) -> ReviewOut:
        return review_out(await reviews.add_review(db_session, booking_id, request.user, data))


class PropertyReviewsController(Controller):
    path = "/properties/{property_id:uuid}/reviews"
    tags = ["bookings"]

    @get(exclude_from_auth=True, summary="A property's reviews and average rating")
    async def list_reviews(
        self,
        db_session: NamedDependency[AsyncSession],
        property_id: FromPath[uuid.UUID],
        limit: Limit = 20,
        offset: Offset = 0,
    ) -> ReviewsOut:
        await get_property(db_session, property_id)
        count, average, page = await reviews.property_reviews(db_session, property_id, limit, offset)
        return ReviewsOut(
            property_id=property_id,
            count=count,
            average_rating=average,
            items=[review_out(r) for r in page],
            limit=limit,
            offset=offset,
        )

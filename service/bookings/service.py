"""Creating, reading and cancelling bookings.

Creating one follows the order the invariant needs: take the property's Redis lock (fast path), clear holds that
ran out, check the stay and price it with the quote function, insert under the exclusion constraint (the final
guarantee) with the `booking.created` event, and commit before the lock is released.

It is the hot path of the API, so it runs on a pooled asyncpg connection (`service.db.pooled`) rather than the
request's session. Without an Idempotency-Key it needs no transaction: the stay's terms are read, and the booking
and its event are stored by one statement, atomic by itself; the lock and the constraint do what a transaction
around both would not (a read does not lock the nights). With a key, the key's lock, its row and the booking
commit together.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from service.auth.tokens import CurrentUser
from service.bookings import idempotency, lifecycle
from service.bookings.cancellation import refund_due
from service.bookings.locks import PropertyLocks
from service.bookings.models import Booking, BookingStatus
from service.bookings.schemas import BookingCreate
from service.db import pooled
from service.errors import Conflict, Forbidden, InvalidRequest, NotFound
from service.notifications.messages import Kind, notify_booking
from service.payments.gateway import StripeGateway
from service.payments.models import Refund
from service.payments.refunds import issue_refund, request_cancellation_refund
from service.properties.models import Property
from service.properties.quotes import quote_available_stay
from service.settings import Settings
from service.stays import local_today


@dataclass(frozen=True)
class Created:
    booking: Booking
    replayed: bool  # True when an Idempotency-Key matched an earlier request


async def create_booking(
    engine: AsyncEngine,
    locks: PropertyLocks,
    settings: Settings,
    guest: CurrentUser,
    data: BookingCreate,
    idempotency_key: str | None,
) -> Created:
    async with locks.hold(data.property_id), pooled(engine) as db:
        transaction = db.driver.transaction() if idempotency_key is not None else contextlib.nullcontext()
        async with transaction:
            if idempotency_key is not None:
                body_fingerprint = idempotency.fingerprint(data)
                previous = await idempotency.find_previous(db.driver, guest.id, idempotency_key, body_fingerprint)
                if previous is not None:
                    return Created(await lifecycle.stored_booking(db.driver, previous), replayed=True)
            terms, quote = await quote_available_stay(
                db.driver,
                data.property_id,
                data.check_in,
                data.check_out,
                data.guests,
                settings.guest_service_fee_bps,
            )
            if terms.host_id == guest.id:
                raise InvalidRequest("You cannot book your own property.", field="property_id")
            if terms.stale_hold:
                await _expire_stale_holds(db.connection, terms.property_id)
            booking = lifecycle.pending_booking(
                property_id=terms.property_id,
                guest_id=guest.id,
                host_id=terms.host_id,
                check_in=data.check_in,
                check_out=data.check_out,
                guests=data.guests,
                currency=terms.currency,
                quote=quote,
                at=dt.datetime.now(dt.UTC),
                hold=dt.timedelta(seconds=settings.booking_hold_seconds),
            )
            await lifecycle.insert_created(db.driver, booking)
            if idempotency_key is not None:
                await idempotency.remember(db.driver, guest.id, idempotency_key, body_fingerprint, booking.id)
    return Created(booking, replayed=False)


async def _expire_stale_holds(connection: AsyncConnection, property_id: uuid.UUID) -> None:
    """Mark the property's run-out holds EXPIRED (through the state machine, on the booking's connection) before
    its insert, which their rows would otherwise refuse. Inside the booking's transaction (with a key) this is a
    savepoint of it; otherwise a transaction of its own."""
    async with AsyncSession(bind=connection, expire_on_commit=False) as session:
        await lifecycle.expire_stale_holds(session, property_id)
        await session.commit()


async def _get(session: AsyncSession, booking_id: uuid.UUID, *, for_update: bool = False) -> Booking:
    statement = select(Booking).where(Booking.id == booking_id)
    booking = await session.scalar(statement.with_for_update() if for_update else statement)
    if booking is None:
        raise NotFound(f"No booking {booking_id}.")
    return booking


async def get_visible_booking(
    session: AsyncSession, booking_id: uuid.UUID, user: CurrentUser, *, for_update: bool = False
) -> Booking:
    """The booking if the caller is its guest or its property's host; 404 otherwise (its existence is private)."""
    booking = await _get(session, booking_id, for_update=for_update)
    if user.id not in (booking.guest_id, booking.host_id):
        raise NotFound(f"No booking {booking_id}.")
    return booking


@dataclass(frozen=True)
class BookingFilter:
    as_host: bool
    property_id: uuid.UUID | None
    status: str | None
    start: dt.date | None
    end: dt.date | None
    limit: int
    offset: int


def _list_statement(user: CurrentUser, criteria: BookingFilter) -> Select[tuple[Booking]]:
    owner = Booking.host_id if criteria.as_host else Booking.guest_id
    statement = select(Booking).where(owner == user.id)
    if criteria.property_id is not None:
        statement = statement.where(Booking.property_id == criteria.property_id)
    if criteria.status is not None:
        statement = statement.where(Booking.status == criteria.status)
    if criteria.start is not None:
        statement = statement.where(Booking.check_out > criteria.start)
    if criteria.end is not None:
        statement = statement.where(Booking.check_in < criteria.end)
    return statement.order_by(Booking.check_in.desc(), Booking.id).limit(criteria.limit + 1).offset(criteria.offset)


async def list_bookings(
    session: AsyncSession, user: CurrentUser, criteria: BookingFilter
) -> tuple[list[Booking], bool]:
    if criteria.as_host and not user.has_role("host"):
        raise Forbidden("Listing bookings as a host needs the host role.")
    found = list(await session.scalars(_list_statement(user, criteria)))
    return found[: criteria.limit], len(found) > criteria.limit


@dataclass(frozen=True)
class Cancellation:
    booking: Booking
    refund_due: int
    refund: Refund | None  # the Stripe refund, when the booking was paid through Stripe and anything is due


async def cancel_booking(
    session: AsyncSession, booking_id: uuid.UUID, user: CurrentUser
) -> tuple[Booking, int, uuid.UUID | None]:
    """Cancel as the guest or the host (caller's transaction); answers the booking, the refund the policy grants,
    and the refund row to send to Stripe once committed, if it was paid."""
    booking = await get_visible_booking(session, booking_id, user, for_update=True)
    prop = await session.get_one(Property, booking.property_id)
    today = local_today(prop.timezone)
    cancelled_by = "guest" if user.id == booking.guest_id else "host"
    refund = 0
    if booking.status == BookingStatus.CONFIRMED:
        if booking.check_out <= today:
            raise Conflict("This stay is over; it can no longer be cancelled.")
        paid = booking.total_amount - booking.refunded_amount
        refund = refund_due(paid, prop.cancellation_policy, cancelled_by, today, booking.check_in)
    await lifecycle.cancel(session, booking, cancelled_by, refund)
    refund_id = await request_cancellation_refund(session, booking, refund)
    await notify_booking(session, booking, Kind.BOOKING_CANCELLED, refund=refund)
    return booking, refund, refund_id


async def cancel_and_refund(
    session: AsyncSession, gateway: StripeGateway, booking_id: uuid.UUID, user: CurrentUser
) -> Cancellation:
    """Cancel, commit, then send the refund to Stripe, so no transaction waits on the network. If Stripe cannot
    be reached the cancellation stands and the refund stays `requested` for the worker to send."""
    booking, refund_due_amount, refund_id = await cancel_booking(session, booking_id, user)
    await session.commit()
    if refund_id is None:
        return Cancellation(booking, refund_due_amount, None)
    await issue_refund(session, gateway, refund_id)
    refund = await session.get_one(Refund, refund_id, populate_existing=True)
    await session.refresh(booking)
    return Cancellation(booking, refund_due_amount, refund)

"""The booking state machine, in one place.

    PENDING -> CONFIRMED (payment succeeded) -> COMPLETED (after check-out, property-local)
    PENDING -> EXPIRED (hold ran out) | CANCELLED
    CONFIRMED -> CANCELLED
    EXPIRED -> CONFIRMED | CANCELLED   only through `settle_late_payment` (a payment that came after the hold)

Any other move is refused with 409. Every move goes through `_move`, which also writes the outbox event
`booking.<new status>` in the caller's transaction; `booking.created` is written by `insert_created`. Grep for an
event name and you find its only producer.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.bookings.models import OVERLAP_CONSTRAINT, Booking, BookingStatus
from service.errors import Conflict, NotFound
from service.outbox import event_parameters, event_row, insert_with_event_sql, record_event
from service.pricing import Quote

ALLOWED_MOVES: dict[BookingStatus, frozenset[BookingStatus]] = {
    BookingStatus.PENDING: frozenset({BookingStatus.CONFIRMED, BookingStatus.EXPIRED, BookingStatus.CANCELLED}),
    BookingStatus.CONFIRMED: frozenset({BookingStatus.COMPLETED, BookingStatus.CANCELLED}),
    BookingStatus.COMPLETED: frozenset(),
    BookingStatus.EXPIRED: frozenset(),
    BookingStatus.CANCELLED: frozenset(),
}

# The one exception to ALLOWED_MOVES. DESIGN: "a payment that succeeds after its hold expired confirms the booking
# if the dates are still free, and is refunded in full otherwise". Money has been taken, so an EXPIRED booking
# must end CONFIRMED or CANCELLED (refunded); `settle_late_payment` is the only function that uses these moves,
# and the exclusion constraint, not a prior check, decides which one.
LATE_PAYMENT_MOVES: dict[BookingStatus, frozenset[BookingStatus]] = {
    BookingStatus.EXPIRED: frozenset({BookingStatus.CONFIRMED, BookingStatus.CANCELLED}),
}


def booking_event_fields(booking: Booking) -> dict[str, Any]:
    """Everything an aggregator needs to apply the event without reading the database."""

    def iso(moment: dt.datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "booking_id": str(booking.id),
        "guest_id": str(booking.guest_id),
        "status": booking.status,
        "check_in": booking.check_in.isoformat(),
        "check_out": booking.check_out.isoformat(),
        "nights": booking.nights,
        "guests": booking.guests,
        "currency": booking.currency,
        "nightly_prices": list(booking.nightly_prices),
        "accommodation_amount": booking.accommodation_amount,
        "discount_amount": booking.discount_amount,
        "cleaning_fee": booking.cleaning_fee,
        "service_fee": booking.service_fee,
        "taxes": booking.taxes,
        "total_amount": booking.total_amount,
        "refunded_amount": booking.refunded_amount,
        "created_at": iso(booking.created_at),
        "confirmed_at": iso(booking.confirmed_at),
        "cancelled_at": iso(booking.cancelled_at),
        "cancelled_by": booking.cancelled_by,
    }


NIGHTS_TAKEN = "Some of these nights were just booked by someone else."
BOOKING_COLUMNS = tuple(column.key for column in Booking.__table__.columns)
INSERT_CREATED = insert_with_event_sql(Booking.__tablename__, BOOKING_COLUMNS)
SELECT_BOOKING = f"SELECT {', '.join(BOOKING_COLUMNS)} FROM {Booking.__tablename__} WHERE id = $1"  # noqa: S608


def pending_booking(
    *,
    property_id: uuid.UUID,
    guest_id: uuid.UUID,
    host_id: uuid.UUID,
    check_in: dt.date,
    check_out: dt.date,
    guests: int,
    currency: str,
    quote: Quote,
    at: dt.datetime,
    hold: dt.timedelta,
) -> Booking:
    """A new PENDING booking at the quoted price, made `at` and holding its nights for `hold`. Every column is set
    here, since `insert_created` writes the row with one statement and the ORM's defaults never run."""
    return Booking(
        id=uuid.uuid4(),
        property_id=property_id,
        guest_id=guest_id,
        host_id=host_id,
        check_in=check_in,
        check_out=check_out,
        guests=guests,
        status=BookingStatus.PENDING,
        currency=currency,
        nightly_prices=quote.net_nightly_prices,
        accommodation_amount=quote.accommodation,
        discount_amount=quote.discount,
        cleaning_fee=quote.cleaning_fee,
        service_fee=quote.service_fee,
        taxes=quote.taxes,
        total_amount=quote.total,
        refunded_amount=0,
        hold_expires_at=at + hold,
        confirmed_at=None,
        cancelled_at=None,
        cancelled_by=None,
        ended_at=None,
        created_at=at,
        updated_at=at,
    )


async def insert_created(db: asyncpg.Connection, booking: Booking) -> None:
    """Store a new PENDING booking (every column set by the caller) with its `booking.created` event in one
    statement, so both or neither are stored even outside a transaction: this is the booking hot path, so it runs
    prepared on the asyncpg connection (`service.db.pooled`, or the session's with `service.db.driver_connection`).
    409 when the exclusion constraint finds the nights taken."""
    event = event_row(
        "booking.created", host_id=booking.host_id, property_id=booking.property_id, **booking_event_fields(booking)
    )
    try:
        await db.execute(
            INSERT_CREATED, *(getattr(booking, column) for column in BOOKING_COLUMNS), *event_parameters(event)
        )
    except asyncpg.ExclusionViolationError as exc:
        if exc.constraint_name != OVERLAP_CONSTRAINT:
            raise
        raise Conflict(NIGHTS_TAKEN) from None
    except asyncpg.DeadlockDetectedError:
        # Two overlapping stays inserted at the same moment can each wait for the other's outcome in the exclusion
        # check (the only wait this statement has: its ids are fresh); Postgres then aborts one of them and the
        # other goes on to take the nights, so the aborted one lost the race like any other overlap.
        raise Conflict(NIGHTS_TAKEN) from None


async def stored_booking(db: asyncpg.Connection, booking_id: uuid.UUID) -> Booking:
    """A stored booking read on the asyncpg connection, as an object outside any session (to answer with)."""
    row = await db.fetchrow(SELECT_BOOKING, booking_id)
    if row is None:
        raise NotFound(f"No booking {booking_id}.")
    return Booking(**dict(row))


async def _move(
    session: AsyncSession,
    booking: Booking,
    to: BookingStatus,
    moves: dict[BookingStatus, frozenset[BookingStatus]] = ALLOWED_MOVES,
    at: dt.datetime | None = None,
    **event_fields: Any,
) -> None:
    current = BookingStatus(booking.status)
    if to not in moves.get(current, frozenset()):
        raise Conflict(f"A {current} booking cannot become {to}.", booking_status=current)
    now = at or dt.datetime.now(dt.UTC)
    booking.status = to
    if to is BookingStatus.CONFIRMED:
        booking.confirmed_at = now
    elif to is BookingStatus.CANCELLED:
        booking.cancelled_at = now
    else:
        booking.ended_at = now
    await session.flush()
    await record_event(
        session,
        f"booking.{to.lower()}",
        host_id=booking.host_id,
        property_id=booking.property_id,
        **booking_event_fields(booking),
        **event_fields,
    )


# `at` (default: now) says when a move happened; only a record of past stays (the demo's history,
# service/demo/history.py) passes an earlier moment, so that its metrics fall on the days they happened.


async def confirm(session: AsyncSession, booking: Booking, at: dt.datetime | None = None) -> None:
    await _move(session, booking, BookingStatus.CONFIRMED, at=at)


async def cancel(
    session: AsyncSession, booking: Booking, cancelled_by: str, refund_due: int, at: dt.datetime | None = None
) -> None:
    booking.cancelled_by = cancelled_by
    await _move(session, booking, BookingStatus.CANCELLED, at=at, refund_due=refund_due)


async def settle_late_payment(session: AsyncSession, booking: Booking) -> bool:
    """An EXPIRED booking was paid: CONFIRMED when its dates are still free, else CANCELLED by the system with a
    full refund due. Answers whether it was confirmed.

    The move to CONFIRMED runs in a savepoint; the exclusion constraint refusing it is what "dates taken" means,
    so two late payments for the same nights can never both win.
    """
    try:
        async with session.begin_nested():
            await _move(session, booking, BookingStatus.CONFIRMED, LATE_PAYMENT_MOVES)
    except IntegrityError as exc:
        if OVERLAP_CONSTRAINT not in str(exc.orig):
            raise
        await session.refresh(booking)
        booking.cancelled_by = "system"
        refund_due = booking.total_amount - booking.refunded_amount
        await _move(session, booking, BookingStatus.CANCELLED, LATE_PAYMENT_MOVES, refund_due=refund_due)
        return False
    return True


async def expire(session: AsyncSession, booking: Booking) -> None:
    await _move(session, booking, BookingStatus.EXPIRED)


async def complete(session: AsyncSession, booking: Booking, at: dt.datetime | None = None) -> None:
    await _move(session, booking, BookingStatus.COMPLETED, at=at)


async def expire_stale_holds(session: AsyncSession, property_id: uuid.UUID | None = None, batch: int = 500) -> int:
    """Move PENDING bookings past their hold to EXPIRED (one property's, or any); answers how many.

    Rows another transaction is already moving are skipped, so several workers and the booking path can run
    this at once.
    """
    statement = (
        select(Booking)
        .where(Booking.status == BookingStatus.PENDING, Booking.hold_expires_at <= text("now()"))
        .order_by(Booking.hold_expires_at)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    if property_id is not None:
        statement = statement.where(Booking.property_id == property_id)
    stale = list(await session.scalars(statement))
    for booking in stale:
        await expire(session, booking)
    return len(stale)


async def complete_finished_stays(session: AsyncSession, batch: int = 500) -> int:
    """Move CONFIRMED bookings whose check-out day has come where the property is to COMPLETED."""
    finished = text(
        "SELECT b.id FROM bookings b JOIN properties p ON p.id = b.property_id "
        "WHERE b.status = 'CONFIRMED' AND b.check_out <= (now() AT TIME ZONE p.timezone)::date "
        "ORDER BY b.check_out LIMIT :batch FOR UPDATE OF b SKIP LOCKED"
    )
    ids = list(await session.scalars(finished, {"batch": batch}))
    for booking in await session.scalars(select(Booking).where(Booking.id.in_(ids))):
        await complete(session, booking)
    return len(ids)

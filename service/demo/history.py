"""The demo's starting point: a host with four properties in Lisbon and Porto, five guests, and 60 days of past
stays, so that the dashboard has a history before the live traffic (service.demo.traffic) adds to it.

Past stays cannot go through the API (a check-in must lie ahead), so they are recorded with the same domain
functions the API and the payment webhook use: `lifecycle.insert_created`, `confirm`, `cancel` and `complete`,
each writing its outbox event in this one transaction, and each told *when* it happened (`at`), so the stays
count on the days they happened. The event pipeline then turns those events into metrics exactly as it does for
live ones, which is why `staypulse metrics verify` agrees with them. The one thing written directly is the listing
date: the properties' `created_at` and their `property.created` events are moved 60 days back in the same
transaction, before any relay can read them, so their past nights count as available.

Nothing here touches Stripe: past stays have no payment rows, only the amounts the events carry.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.tokens import CurrentUser
from service.bookings import lifecycle
from service.bookings.cancellation import refund_due
from service.bookings.models import Booking
from service.db import create_engine, driver_connection, session_factory
from service.pricing import quote_stay
from service.properties.models import Property
from service.properties.quotes import load_stay_terms
from service.properties.schemas import PropertyCreate
from service.properties.service import create_property
from service.settings import Settings
from service.users.models import User
from service.users.schemas import RegisterRequest
from service.users.service import register

# Printed by `staypulse demo`; development data only (the demo refuses to run in production).
HOST_EMAIL = "demo-host@staypulse.test"
PASSWORD = "staypulse-demo"  # noqa: S105 - a published demo password
GUEST_EMAILS = tuple(f"demo-guest-{n}@staypulse.test" for n in range(1, 6))
CITIES = ("Lisbon", "Porto")
TIMEZONE = "Europe/Lisbon"
CURRENCY = "EUR"
HISTORY_DAYS = 60

PROPERTIES = (
    PropertyCreate(
        title="Alfama rooftop flat",
        city="Lisbon",
        country="PT",
        timezone=TIMEZONE,
        max_guests=4,
        currency=CURRENCY,
        nightly_price=9_500,
        cleaning_fee=3_000,
        cancellation_policy="moderate",
    ),
    PropertyCreate(
        title="Belem garden studio",
        city="Lisbon",
        country="PT",
        timezone=TIMEZONE,
        max_guests=2,
        currency=CURRENCY,
        nightly_price=7_000,
        cleaning_fee=2_500,
        cancellation_policy="flexible",
    ),
    PropertyCreate(
        title="Ribeira river loft",
        city="Porto",
        country="PT",
        timezone=TIMEZONE,
        max_guests=4,
        currency=CURRENCY,
        nightly_price=11_000,
        cleaning_fee=3_500,
        cancellation_policy="strict",
    ),
    PropertyCreate(
        title="Foz beach house",
        city="Porto",
        country="PT",
        timezone=TIMEZONE,
        max_guests=6,
        currency=CURRENCY,
        nightly_price=16_000,
        cleaning_fee=5_000,
        cancellation_policy="moderate",
    ),
)
CANCELLED_SHARE = 0.15  # of past stays, cancelled by their guest some days after booking


@dataclass(frozen=True)
class Seeded:
    properties: int
    past_stays: int  # bookings recorded, cancelled ones included


async def seed_demo(settings: Settings, today: dt.date | None = None) -> Seeded | None:
    """Create the demo host, guests, properties and history in one transaction; None when the demo host already
    exists (a second `staypulse demo` on the same data carries on from the first)."""
    engine = create_engine(settings, pool_size=1)
    try:
        async with session_factory(engine).begin() as session:
            if await session.scalar(select(User.id).where(User.email == HOST_EMAIL)) is not None:
                return None
            return await _seed(session, settings, today or dt.datetime.now(ZoneInfo(TIMEZONE)).date())
    finally:
        await engine.dispose()


async def _seed(session: AsyncSession, settings: Settings, today: dt.date) -> Seeded:
    host = await register(
        session, RegisterRequest(email=HOST_EMAIL, password=PASSWORD, name="Demo Host", roles=["guest", "host"])
    )
    guests = [
        await register(session, RegisterRequest(email=email, password=PASSWORD, name=f"Demo Guest {n}"))
        for n, email in enumerate(GUEST_EMAILS, start=1)
    ]
    owner = CurrentUser(id=host.id, roles=frozenset(host.roles))
    properties = [await create_property(session, owner, data) for data in PROPERTIES]
    listed_at = _moment(today - dt.timedelta(days=HISTORY_DAYS), hour=9)
    await _backdate_listing(session, [prop.id for prop in properties], listed_at)
    stays = 0
    for prop in properties:
        rng = random.Random(prop.title)  # noqa: S311 - made-up stays, the same for every run
        for check_in, check_out in _past_stays(rng, listed_at.date(), today):
            guest = rng.choice(guests)
            await _record_stay(session, settings, rng, prop, guest.id, check_in, check_out, listed_at, today)
            stays += 1
    return Seeded(properties=len(properties), past_stays=stays)


async def _backdate_listing(session: AsyncSession, property_ids: list[uuid.UUID], listed_at: dt.datetime) -> None:
    params = {"ids": property_ids, "at": listed_at}
    await session.execute(text("UPDATE properties SET created_at = :at WHERE id = ANY(:ids)"), params)
    await session.execute(
        text("UPDATE outbox_events SET occurred_at = :at WHERE type = 'property.created' AND property_id = ANY(:ids)"),
        params,
    )


def _past_stays(rng: random.Random, first_day: dt.date, today: dt.date) -> list[tuple[dt.date, dt.date]]:
    """Stays of 2-5 nights with gaps of 0-3 days, from the listing until a check-in would be today or later."""
    stays = []
    day = first_day + dt.timedelta(days=rng.randint(0, 3))
    while day < today:
        check_out = day + dt.timedelta(days=rng.randint(2, 5))
        stays.append((day, check_out))
        day = check_out + dt.timedelta(days=rng.randint(0, 3))
    return stays


def _moment(day: dt.date, hour: int) -> dt.datetime:
    """That local date and hour in the demo's zone, as aware UTC."""
    return dt.datetime.combine(day, dt.time(hour), ZoneInfo(TIMEZONE)).astimezone(dt.UTC)


async def _record_stay(
    session: AsyncSession,
    settings: Settings,
    rng: random.Random,
    prop: Property,
    guest_id: uuid.UUID,
    check_in: dt.date,
    check_out: dt.date,
    listed_at: dt.datetime,
    today: dt.date,
) -> None:
    """One past stay, booked 1-30 days ahead and paid a few minutes later; then cancelled, completed after
    check-out, or (checked in but not out yet) still CONFIRMED."""
    now = dt.datetime.now(dt.UTC)
    booked_at = max(_moment(check_in - dt.timedelta(days=rng.randint(1, 30)), hour=rng.randint(8, 22)), listed_at)
    terms = await load_stay_terms(await driver_connection(session), prop.id, check_in, check_out)
    quote = quote_stay(terms.rules, check_in, check_out, settings.guest_service_fee_bps)
    created = lifecycle.pending_booking(
        property_id=prop.id,
        guest_id=guest_id,
        host_id=prop.host_id,
        check_in=check_in,
        check_out=check_out,
        guests=rng.randint(1, prop.max_guests),
        currency=prop.currency,
        quote=quote,
        at=booked_at,
        hold=dt.timedelta(seconds=settings.booking_hold_seconds),
    )
    await lifecycle.insert_created(await driver_connection(session), created)
    # insert_created writes with one Core statement; the moves below need the row in the session.
    booking = await session.get_one(Booking, created.id)
    paid_at = booked_at + dt.timedelta(minutes=rng.randint(1, 10))
    await lifecycle.confirm(session, booking, at=paid_at)
    cancel_on = check_in - dt.timedelta(days=rng.randint(0, (check_in - paid_at.date()).days))
    if rng.random() < CANCELLED_SHARE and cancel_on < today:
        cancelled_at = max(_moment(cancel_on, hour=rng.randint(8, 22)), paid_at + dt.timedelta(minutes=1))
        due = refund_due(quote.total, prop.cancellation_policy, "guest", cancel_on, check_in)
        await lifecycle.cancel(session, booking, "guest", due, at=min(cancelled_at, now))
    elif check_out <= today:
        await lifecycle.complete(session, booking, at=min(_moment(check_out, hour=11), now))

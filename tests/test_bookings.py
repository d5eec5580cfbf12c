"""A guest holds a stay, the host sees it, either cancels it; holds run out; stays end and get reviewed."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.bookings import lifecycle
from service.bookings.jobs import advance_bookings_once
from service.bookings.models import Booking, BookingStatus
from service.db import create_engine, driver_connection, session_factory
from service.errors import Conflict
from service.pricing import PricingRules, quote_stay
from service.settings import Settings
from tests.api import (
    Client,
    assert_problem,
    book,
    create_property,
    days_ahead,
    signed_up,
    signed_up_host,
)
from tests.db import confirm, event_types, execute, run
from tests.waiting import eventually


@pytest.fixture
async def listing(client: Client) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """A property, its host's headers and a guest's headers."""
    host = await signed_up_host(client)
    prop = await create_property(client, host, max_guests=3, cancellation_policy="moderate")
    _, guest = await signed_up(client)
    return prop, host, guest


Listing = tuple[dict[str, Any], dict[str, str], dict[str, str]]


async def move_stay_to_the_past(settings: Settings, booking_id: str) -> None:
    """Time passing: the stay keeps its length and ends yesterday."""
    await execute(
        settings,
        "UPDATE bookings SET check_in = current_date - 1 - (check_out - check_in), check_out = current_date - 1 "
        "WHERE id = :id",
        id=booking_id,
    )


async def test_booking_holds_the_quoted_price(client: Client, listing: Listing, settings: Settings) -> None:
    prop, _, guest = listing
    start = days_ahead(20)
    quote = (
        await client.get(
            f"/api/v1/properties/{prop['id']}/quote",
            params={"check_in": start.isoformat(), "check_out": (start + dt.timedelta(days=3)).isoformat()},
        )
    ).json()
    response = await book(client, guest, prop, start, 3, guests=2)
    assert response.status_code == 201, response.text
    booking = response.json()
    assert booking["status"] == "PENDING"
    assert booking["nights"] == 3
    assert booking["price"]["total"] == quote["total"]
    assert booking["price"]["service_fee"] == quote["service_fee"]
    assert booking["price"]["nightly"] == [n["price"] for n in quote["nightly"]]
    hold = dt.datetime.fromisoformat(booking["hold_expires_at"])
    assert dt.timedelta(minutes=14) < hold - dt.datetime.now(dt.UTC) <= dt.timedelta(minutes=15)
    assert await event_types(settings, booking["id"]) == ["booking.created"]


async def test_overlapping_stay_is_409_and_adjacent_is_fine(client: Client, listing: Listing) -> None:
    prop, _, guest = listing
    _, other_guest = await signed_up(client)
    start = days_ahead(30)
    assert (await book(client, guest, prop, start, 4)).status_code == 201
    assert_problem(await book(client, other_guest, prop, start + dt.timedelta(days=3), 2), 409)
    assert_problem(await book(client, other_guest, prop, start - dt.timedelta(days=1), 2), 409)
    assert (await book(client, other_guest, prop, start + dt.timedelta(days=4), 2)).status_code == 201
    assert (await book(client, other_guest, prop, start - dt.timedelta(days=2), 2)).status_code == 201
    days = (
        await client.get(
            f"/api/v1/properties/{prop['id']}/availability",
            params={"from": start.isoformat(), "to": (start + dt.timedelta(days=1)).isoformat()},
        )
    ).json()["days"]
    assert days[0]["reason"] == "booked"


async def test_two_transactions_waiting_on_each_others_stays_get_one_409_not_a_500(
    client: Client, listing: Listing, settings: Settings
) -> None:
    """The exclusion check waits for a conflicting stay's transaction; two transactions that each wait for the
    other are a deadlock, which Postgres breaks by aborting one. That one lost the nights: 409, and the other's
    stays are kept."""
    prop, _, _ = listing
    guest, _ = await signed_up(client)
    quote = quote_stay(PricingRules(10_000, 0, 0), days_ahead(60), days_ahead(62), settings.guest_service_fee_bps)

    def stay(first: int) -> Booking:
        return lifecycle.pending_booking(
            property_id=uuid.UUID(prop["id"]),
            guest_id=uuid.UUID(guest["id"]),
            host_id=uuid.UUID(prop["host_id"]),
            check_in=days_ahead(first),
            check_out=days_ahead(first + 2),
            guests=1,
            currency="EUR",
            quote=quote,
            at=dt.datetime.now(dt.UTC),
            hold=dt.timedelta(minutes=15),
        )

    engine = create_engine(settings)
    sessions = session_factory(engine)
    try:
        async with sessions() as one, sessions() as two:
            for session in (one, two):
                await session.execute(select(1))  # the transaction begins on the server, as with an Idempotency-Key
            db_one, db_two = await driver_connection(one), await driver_connection(two)
            await lifecycle.insert_created(db_one, stay(60))
            await lifecycle.insert_created(db_two, stay(70))
            # `one` now waits for `two` (nights 70-71), then `two` waits for `one` (nights 60-61): a cycle.
            first = asyncio.create_task(lifecycle.insert_created(db_one, stay(71)))
            await eventually(lambda: lock_waits(settings), "the first insert waiting for the other transaction")
            second = asyncio.create_task(lifecycle.insert_created(db_two, stay(61)))
            outcomes = await asyncio.wait_for(asyncio.gather(first, second, return_exceptions=True), timeout=30)
            conflicts = [outcome for outcome in outcomes if isinstance(outcome, Conflict)]
            assert len(conflicts) == 1, outcomes
            assert outcomes.count(None) == 1, outcomes
            winner = one if outcomes[0] is None else two
            await winner.commit()
    finally:
        await engine.dispose()
    kept = await client.get(
        f"/api/v1/properties/{prop['id']}/availability",
        params={"from": days_ahead(60).isoformat(), "to": days_ahead(73).isoformat()},
    )
    booked = [day["date"] for day in kept.json()["days"] if day["reason"] == "booked"]
    assert len(booked) == 4  # the winner's two stays of two nights; nothing of the aborted transaction


async def lock_waits(settings: Settings) -> int:
    """How many sessions of this database wait on a lock now."""
    sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    return int((await execute(settings, sql))[0][0])


async def test_bad_booking_requests_are_refused_and_create_nothing(client: Client, listing: Listing) -> None:
    prop, host, guest = listing
    start = days_ahead(40)
    assert_problem(await book(client, guest, prop, start, 0), 422)
    assert_problem(await book(client, guest, prop, start, 400), 422)
    assert_problem(await book(client, guest, prop, days_ahead(-5), 2), 422)
    assert_problem(await book(client, guest, prop, start, 2, guests=4), 422)
    assert_problem(await book(client, guest, {"id": str(uuid.uuid4())}, start, 2), 404)
    assert_problem(await book(client, guest, prop, start, 2, pets=True), 400)
    assert_problem(await client.post("/api/v1/bookings", json={"property_id": "x"}, headers=guest), 400)
    own = assert_problem(await book(client, host, prop, start, 2), 422)
    assert own["field"] == "property_id"
    _, host_only = await signed_up(client, roles=["host"])
    assert_problem(await book(client, host_only, prop, start, 2), 403)
    assert_problem(await book(client, {}, prop, start, 2), 401)
    assert (await client.get("/api/v1/bookings", headers=guest)).json()["items"] == []


async def test_idempotency_key_replays_the_first_booking(client: Client, listing: Listing) -> None:
    prop, _, guest = listing
    start = days_ahead(50)
    key = {"Idempotency-Key": f"retry-{uuid.uuid4()}"}
    first = await book(client, {**guest, **key}, prop, start, 2)
    again = await book(client, {**guest, **key}, prop, start, 2)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    different = await book(client, {**guest, **key}, prop, start + dt.timedelta(days=5), 2)
    assert assert_problem(different, 422)["field"] == "Idempotency-Key"
    _, stranger = await signed_up(client)
    assert_problem(await book(client, {**stranger, **key}, prop, start, 2), 409)  # the key is per user
    mine = (await client.get("/api/v1/bookings", headers=guest)).json()["items"]
    assert [b["id"] for b in mine] == [first.json()["id"]]
    blank = await book(client, {**guest, "Idempotency-Key": " "}, prop, start + dt.timedelta(days=9), 2)
    assert_problem(blank, 422)


async def test_who_sees_a_booking(client: Client, listing: Listing) -> None:
    prop, host, guest = listing
    booking = (await book(client, guest, prop, days_ahead(60), 2)).json()
    url = f"/api/v1/bookings/{booking['id']}"
    assert (await client.get(url, headers=guest)).json()["id"] == booking["id"]
    assert (await client.get(url, headers=host)).json()["id"] == booking["id"]
    _, stranger = await signed_up(client)
    assert_problem(await client.get(url, headers=stranger), 404)
    assert_problem(await client.post(f"{url}/cancel", headers=stranger), 404)
    assert_problem(await client.get(f"/api/v1/bookings/{uuid.uuid4()}", headers=guest), 404)
    as_host = (await client.get("/api/v1/bookings", params={"as": "host"}, headers=host)).json()["items"]
    assert [b["id"] for b in as_host] == [booking["id"]]
    filtered = await client.get(
        "/api/v1/bookings", params={"as": "host", "status": "CONFIRMED", "property_id": prop["id"]}, headers=host
    )
    assert filtered.json()["items"] == []
    assert_problem(await client.get("/api/v1/bookings", params={"as": "host"}, headers=guest), 403)
    assert_problem(await client.get("/api/v1/bookings", params={"as": "admin"}, headers=guest), 400)


async def test_guest_cancels_a_hold_and_a_second_cancel_is_409(
    client: Client, listing: Listing, settings: Settings
) -> None:
    prop, _, guest = listing
    start = days_ahead(70)
    booking = (await book(client, guest, prop, start, 2)).json()
    cancelled = await client.post(f"/api/v1/bookings/{booking['id']}/cancel", headers=guest)
    assert cancelled.status_code == 200
    assert cancelled.json()["booking"]["status"] == "CANCELLED"
    assert cancelled.json()["booking"]["cancelled_by"] == "guest"
    assert cancelled.json()["refund_due"] == 0
    assert_problem(await client.post(f"/api/v1/bookings/{booking['id']}/cancel", headers=guest), 409)
    assert (await book(client, guest, prop, start, 2)).status_code == 201  # the dates are free again
    assert await event_types(settings, booking["id"]) == ["booking.created", "booking.cancelled"]


@pytest.mark.parametrize(
    ("days_ahead_of_stay", "who", "refund_percent"),
    [(10, "guest", 100), (3, "guest", 50), (0, "guest", 0), (0, "host", 100)],
)
async def test_cancelling_a_confirmed_stay_refunds_by_policy(
    client: Client, listing: Listing, settings: Settings, days_ahead_of_stay: int, who: str, refund_percent: int
) -> None:
    prop, host, guest = listing
    booking = (await book(client, guest, prop, days_ahead(days_ahead_of_stay + 1), 2)).json()
    await confirm(settings, booking["id"])
    # Make "days before check-in" exact in the property's zone: move the stay relative to its local today.
    await execute(
        settings,
        "UPDATE bookings SET check_in = (now() AT TIME ZONE 'Europe/Lisbon')::date + CAST(:days AS integer), "
        "check_out = (now() AT TIME ZONE 'Europe/Lisbon')::date + CAST(:days AS integer) + 2 WHERE id = :id",
        days=days_ahead_of_stay,
        id=booking["id"],
    )
    response = await client.post(f"/api/v1/bookings/{booking['id']}/cancel", headers=host if who == "host" else guest)
    assert response.status_code == 200, response.text
    assert response.json()["refund_due"] == booking["price"]["total"] * refund_percent // 100
    assert response.json()["booking"]["cancelled_by"] == who
    events = await event_types(settings, booking["id"])
    assert events == ["booking.created", "booking.confirmed", "booking.cancelled"]


async def test_a_hold_that_ran_out_expires_and_frees_the_dates(
    client: Client, listing: Listing, settings: Settings
) -> None:
    prop, _, guest = listing
    _, next_guest = await signed_up(client)
    start = days_ahead(80)
    stale = (await book(client, guest, prop, start, 3)).json()
    await execute(
        settings, "UPDATE bookings SET hold_expires_at = now() - interval '1 second' WHERE id = :id", id=stale["id"]
    )
    # The dates are free at once, even before the worker's round; also in the transaction an Idempotency-Key opens.
    key = {"Idempotency-Key": f"after-expiry-{uuid.uuid4()}"}
    taken = await book(client, {**next_guest, **key}, prop, start, 3)
    assert taken.status_code == 201
    replayed = await book(client, {**next_guest, **key}, prop, start, 3)
    assert replayed.json() == taken.json()
    assert (await client.get(f"/api/v1/bookings/{stale['id']}", headers=guest)).json()["status"] == "EXPIRED"
    assert await event_types(settings, stale["id"]) == ["booking.created", "booking.expired"]
    assert_problem(await client.post(f"/api/v1/bookings/{stale['id']}/cancel", headers=guest), 409)


async def test_worker_round_expires_holds_and_completes_stays(
    client: Client, listing: Listing, settings: Settings
) -> None:
    prop, _, guest = listing
    hold = (await book(client, guest, prop, days_ahead(90), 2)).json()
    stay = (await book(client, guest, prop, days_ahead(95), 2)).json()
    await execute(
        settings, "UPDATE bookings SET hold_expires_at = now() - interval '1 minute' WHERE id = :id", id=hold["id"]
    )
    await confirm(settings, stay["id"])
    await move_stay_to_the_past(settings, stay["id"])

    engine = create_engine(settings, pool_size=1)
    try:
        expired, completed = await advance_bookings_once(session_factory(engine))
    finally:
        await engine.dispose()
    assert expired >= 1
    assert completed >= 1
    assert (await client.get(f"/api/v1/bookings/{hold['id']}", headers=guest)).json()["status"] == "EXPIRED"
    assert (await client.get(f"/api/v1/bookings/{stay['id']}", headers=guest)).json()["status"] == "COMPLETED"
    assert_problem(await client.post(f"/api/v1/bookings/{stay['id']}/cancel", headers=guest), 409)


async def test_refused_moves_are_409_and_change_nothing(client: Client, listing: Listing, settings: Settings) -> None:
    prop, _, guest = listing
    booking = (await book(client, guest, prop, days_ahead(100), 2)).json()
    await client.post(f"/api/v1/bookings/{booking['id']}/cancel", headers=guest)

    async def confirm_cancelled(session: AsyncSession) -> None:
        await lifecycle.confirm(session, await session.get_one(Booking, uuid.UUID(booking["id"])))

    with pytest.raises(Conflict):
        await run(settings, confirm_cancelled)
    rows = await run(
        settings, lambda s: s.scalars(select(Booking.status).where(Booking.id == uuid.UUID(booking["id"])))
    )
    assert list(rows) == ["CANCELLED"]


async def test_reviews_after_check_out_once(client: Client, listing: Listing, settings: Settings) -> None:
    prop, _, guest = listing
    booking = (await book(client, guest, prop, days_ahead(110), 2)).json()
    url = f"/api/v1/bookings/{booking['id']}/review"
    assert_problem(await client.post(url, json={"rating": 5}, headers=guest), 409)  # still PENDING
    await confirm(settings, booking["id"])
    assert_problem(await client.post(url, json={"rating": 5}, headers=guest), 409)  # not checked out yet
    await move_stay_to_the_past(settings, booking["id"])
    _, stranger = await signed_up(client)
    assert_problem(await client.post(url, json={"rating": 1}, headers=stranger), 404)
    assert_problem(await client.post(url, json={"rating": 6}, headers=guest), 400)
    created = await client.post(url, json={"rating": 4, "comment": " Lovely view "}, headers=guest)
    assert created.status_code == 201
    assert created.json()["comment"] == "Lovely view"
    assert_problem(await client.post(url, json={"rating": 5}, headers=guest), 409)
    listed = (await client.get(f"/api/v1/properties/{prop['id']}/reviews")).json()
    assert listed["count"] == 1
    assert listed["average_rating"] == 4.0
    assert_problem(await client.get(f"/api/v1/properties/{uuid.uuid4()}/reviews"), 404)


MOVES = {
    BookingStatus.CONFIRMED: lifecycle.confirm,
    BookingStatus.EXPIRED: lifecycle.expire,
    BookingStatus.COMPLETED: lifecycle.complete,
}


@pytest.mark.parametrize("start", list(BookingStatus))
@pytest.mark.parametrize("to", list(BookingStatus))
async def test_the_state_table_allows_exactly_its_moves(
    client: Client, listing: Listing, settings: Settings, start: BookingStatus, to: BookingStatus
) -> None:
    prop, _, guest = listing
    booking = (await book(client, guest, prop, days_ahead(120), 2)).json()
    await execute(settings, "UPDATE bookings SET status = :status WHERE id = :id", status=start, id=booking["id"])

    async def move(session: AsyncSession) -> None:
        row = await session.get_one(Booking, uuid.UUID(booking["id"]))
        if to is BookingStatus.CANCELLED:
            await lifecycle.cancel(session, row, "guest", 0)
        elif to is BookingStatus.PENDING:
            raise Conflict("nothing moves back to PENDING")
        else:
            await MOVES[to](session, row)

    allowed = to in lifecycle.ALLOWED_MOVES[start]
    if allowed:
        await run(settings, move)
    else:
        with pytest.raises(Conflict):
            await run(settings, move)
    status = await execute(settings, "SELECT status FROM bookings WHERE id = :id", id=booking["id"])
    assert status[0][0] == (to if allowed else start)
    expected = {
        (BookingStatus.PENDING, BookingStatus.CONFIRMED),
        (BookingStatus.PENDING, BookingStatus.EXPIRED),
        (BookingStatus.PENDING, BookingStatus.CANCELLED),
        (BookingStatus.CONFIRMED, BookingStatus.COMPLETED),
        (BookingStatus.CONFIRMED, BookingStatus.CANCELLED),
    }
    assert allowed == ((start, to) in expected)

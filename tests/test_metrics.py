"""A host watches occupancy and earnings: a hand-computed scenario read back through GET /hosts/me/metrics."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

from service.settings import Settings
from tests.api import Client, assert_problem, book, create_property, days_ahead, signed_up, signed_up_host
from tests.db import confirm, expire_hold
from tests.pipeline import pipeline_for

FEE_BPS = 300  # the default HOST_FEE_BPS


def local_date(moment: str, timezone: str) -> dt.date:
    return dt.datetime.fromisoformat(moment).astimezone(ZoneInfo(timezone)).date()


def fee(amount: int) -> int:
    return (amount * FEE_BPS + 5_000) // 10_000


def first_of_month_after(days: int) -> dt.date:
    later = days_ahead(days)
    return (later.replace(day=1) + dt.timedelta(days=32)).replace(day=1)


async def metrics(client: Client, host: dict[str, str], start: dt.date, end: dt.date, **params: Any) -> Any:
    response = await client.get(
        "/api/v1/hosts/me/metrics", params={"from": start.isoformat(), "to": end.isoformat(), **params}, headers=host
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_hand_computed_scenario_across_month_edges_and_time_zones(client: Client, settings: Settings) -> None:
    host = await signed_up_host(client)
    lisbon = await create_property(
        client, host, timezone="Europe/Lisbon", nightly_price=10_000, cleaning_fee=3_000, cancellation_policy="moderate"
    )
    new_york = await create_property(
        client,
        host,
        country="US",
        timezone="America/New_York",
        nightly_price=20_000,
        cleaning_fee=5_000,
        cancellation_policy="moderate",
    )
    _, guest = await signed_up(client)
    month = first_of_month_after(40)
    # Lisbon: 4 nights across a month edge, confirmed; a block of 3 nights; a hold that runs out.
    crossing = (await book(client, guest, lisbon, month - dt.timedelta(days=2), 4)).json()
    await confirm(settings, crossing["id"])
    block = await client.post(
        f"/api/v1/properties/{lisbon['id']}/blocks",
        json={"start": (month + dt.timedelta(days=10)).isoformat(), "end": (month + dt.timedelta(days=13)).isoformat()},
        headers=host,
    )
    assert block.status_code == 201, block.text
    hold = (await book(client, guest, lisbon, month + dt.timedelta(days=15), 2)).json()
    await expire_hold(settings, hold["id"])
    # New York: 3 nights, confirmed, then cancelled by the guest 2-4 days ahead: half refunded (moderate policy).
    soon = (await book(client, guest, new_york, days_ahead(3), 3)).json()
    await confirm(settings, soon["id"])
    cancelled = await client.post(f"/api/v1/bookings/{soon['id']}/cancel", headers=guest)
    assert cancelled.status_code == 200, cancelled.text
    refund_due = cancelled.json()["refund_due"]
    assert refund_due == -(-soon["price"]["total"] // 2)

    async with pipeline_for(settings) as pipeline:
        await pipeline.drain()

    start, end = days_ahead(-1), month + dt.timedelta(days=20)
    body = await metrics(client, host, start, end)
    by_property = {item["property_id"]: item for item in body["properties"]}
    lisbon_listed = local_date(lisbon["created_at"], "Europe/Lisbon")
    new_york_listed = local_date(new_york["created_at"], "America/New_York")

    lisbon_gross = 4 * 10_000 + 3_000
    lisbon_available = (end - max(start, lisbon_listed)).days - 3
    lead = (month - dt.timedelta(days=2) - local_date(crossing["created_at"], "Europe/Lisbon")).days
    assert by_property[lisbon["id"]]["currency"] == "EUR"
    assert by_property[lisbon["id"]]["metrics"] == {
        "available_nights": lisbon_available,
        "booked_nights": 4,
        "occupancy_rate": round(4 / lisbon_available, 4),
        "accommodation_revenue": 40_000,
        "adr": 10_000,
        "revpar": (2 * 40_000 + lisbon_available) // (2 * lisbon_available),
        "gross_earnings": lisbon_gross,
        "refunds": 0,
        "host_fees": fee(lisbon_gross),
        "net_earnings": lisbon_gross - fee(lisbon_gross),
        "bookings_confirmed": 1,
        "bookings_cancelled": 0,
        "bookings_expired": 1,
        "cancellation_rate": 0.0,
        "average_length_of_stay": 4.0,
        "average_lead_time_days": float(lead),
    }

    ny_gross = 3 * 20_000 + 5_000
    ny_refund = refund_due * ny_gross // soon["price"]["total"]  # the host's share of the guest's refund
    ny_fees = fee(ny_gross) - (fee(ny_gross) - fee(ny_gross - ny_refund))
    ny_available = (end - max(start, new_york_listed)).days
    ny = by_property[new_york["id"]]["metrics"]
    assert ny["available_nights"] == ny_available
    assert (ny["booked_nights"], ny["accommodation_revenue"], ny["adr"], ny["revpar"]) == (0, 0, 0, 0)
    assert (ny["gross_earnings"], ny["refunds"], ny["host_fees"]) == (ny_gross, ny_refund, ny_fees)
    assert ny["net_earnings"] == ny_gross - ny_refund - ny_fees
    assert (ny["bookings_confirmed"], ny["bookings_cancelled"], ny["cancellation_rate"]) == (1, 1, 1.0)

    # The series over days: nights on their dates, earnings on the local dates of confirmation and cancellation.
    crossing_now = (await client.get(f"/api/v1/bookings/{crossing['id']}", headers=guest)).json()
    soon_now = (await client.get(f"/api/v1/bookings/{soon['id']}", headers=guest)).json()
    net_on: dict[dt.date, int] = defaultdict(int)
    gross_on: dict[dt.date, int] = defaultdict(int)
    for day, gross, net in (
        (local_date(crossing_now["confirmed_at"], "Europe/Lisbon"), lisbon_gross, lisbon_gross - fee(lisbon_gross)),
        (local_date(soon_now["confirmed_at"], "America/New_York"), ny_gross, ny_gross - fee(ny_gross)),
        (local_date(soon_now["cancelled_at"], "America/New_York"), 0, -ny_refund + fee(ny_gross) - ny_fees),
    ):
        gross_on[day] += gross
        net_on[day] += net
    blocked = {month + dt.timedelta(days=n) for n in (10, 11, 12)}
    crossing_nights = {month + dt.timedelta(days=n) for n in (-2, -1, 0, 1)}
    window = [start + dt.timedelta(days=n) for n in range((end - start).days)]
    assert body["days"] == [
        {
            "date": day.isoformat(),
            "available_nights": int(day >= lisbon_listed and day not in blocked) + int(day >= new_york_listed),
            "booked_nights": int(day in crossing_nights),
            "gross_earnings": gross_on[day],
            "net_earnings": net_on[day],
        }
        for day in window
    ]

    total = body["total"]
    assert body["currency"] == "EUR"
    assert total["available_nights"] == lisbon_available + ny_available
    assert total["gross_earnings"] == lisbon_gross + ny_gross
    assert total["net_earnings"] == lisbon_gross - fee(lisbon_gross) + ny_gross - ny_refund - ny_fees
    assert total["cancellation_rate"] == 0.5
    assert total["average_length_of_stay"] == 3.5

    # A window of the later month only: the crossing stay counts its 2 nights inside, and no earnings.
    later = await metrics(client, host, month, month + dt.timedelta(days=10), property_id=lisbon["id"])
    assert [item["property_id"] for item in later["properties"]] == [lisbon["id"]]
    assert later["total"]["booked_nights"] == 2
    assert later["total"]["accommodation_revenue"] == 20_000
    assert later["total"]["available_nights"] == 10
    assert later["total"]["gross_earnings"] == 0
    assert later["total"]["occupancy_rate"] == 0.2
    assert [day["booked_nights"] for day in later["days"]] == [1, 1] + [0] * 8


async def test_days_over_properties_of_two_currencies_have_nights_but_no_money(
    client: Client, settings: Settings
) -> None:
    host = await signed_up_host(client)
    euros = await create_property(client, host, timezone="Asia/Tokyo")
    await create_property(client, host, timezone="Asia/Tokyo", country="JP", currency="JPY", nightly_price=15_000)
    _, guest = await signed_up(client)
    stay = (await book(client, guest, euros, days_ahead(6), 2)).json()
    await confirm(settings, stay["id"])
    async with pipeline_for(settings) as pipeline:
        await pipeline.drain()
    confirmed_on = local_date(
        (await client.get(f"/api/v1/bookings/{stay['id']}", headers=guest)).json()["confirmed_at"], "Asia/Tokyo"
    )
    window = [confirmed_on + dt.timedelta(days=n) for n in range(9)]
    body = await metrics(client, host, window[0], window[-1] + dt.timedelta(days=1))
    assert body["currency"] is None
    nights = {days_ahead(6), days_ahead(7)}
    assert [(day["available_nights"], day["booked_nights"]) for day in body["days"]] == [
        (2, int(day in nights)) for day in window
    ]
    assert {(day["gross_earnings"], day["net_earnings"]) for day in body["days"]} == {(None, None)}
    assert body["total"]["gross_earnings"] is None
    euro_figures = next(item for item in body["properties"] if item["property_id"] == euros["id"])["metrics"]
    assert euro_figures["gross_earnings"] == 2 * 10_000 + 3_000


async def test_metrics_are_the_hosts_own_and_bad_windows_are_4xx(client: Client) -> None:
    host = await signed_up_host(client)
    other_host = await signed_up_host(client)
    theirs = await create_property(client, other_host)
    start, end = days_ahead(1), days_ahead(31)
    empty = await metrics(client, host, start, end)
    assert empty["properties"] == []
    assert empty["total"]["occupancy_rate"] == 0.0
    assert empty["total"]["adr"] == 0
    url = "/api/v1/hosts/me/metrics"
    window = {"from": start.isoformat(), "to": end.isoformat()}
    assert_problem(await client.get(url, params={**window, "property_id": theirs["id"]}, headers=host), 404)
    assert_problem(await client.get(url, params={**window, "property_id": "nope"}, headers=host), 400)
    assert_problem(await client.get(url, params={"from": end.isoformat(), "to": start.isoformat()}, headers=host), 422)
    assert_problem(await client.get(url, params={"from": "2026-13-01", "to": end.isoformat()}, headers=host), 400)
    assert_problem(await client.get(url, params=window), 401)
    _, guest = await signed_up(client)
    assert_problem(await client.get(url, params=window, headers=guest), 403)


async def test_windows_reach_the_calendar_s_ends_but_not_the_dates_postgres_gets_as_infinity(
    client: Client, settings: Settings
) -> None:
    host = await signed_up_host(client)
    prop = await create_property(client, host)
    async with pipeline_for(settings) as pipeline:
        await pipeline.drain()
    assert (await metrics(client, host, dt.date(9999, 1, 1), dt.date(9999, 12, 30)))["total"]["available_nights"] == 363
    url = "/api/v1/hosts/me/metrics"
    for start, end in ((dt.date(9999, 1, 1), dt.date.max), (dt.date.min, dt.date(1, 12, 31))):
        window = {"from": start.isoformat(), "to": end.isoformat()}
        assert_problem(await client.get(url, params=window, headers=host), 422)
    _, guest = await signed_up(client)
    stay = {"property_id": prop["id"], "check_in": "9999-12-30", "check_out": "9999-12-31"}
    assert_problem(await client.post("/api/v1/bookings", json=stay, headers=guest), 422)


async def test_a_deleted_property_keeps_its_history_and_has_no_nights_left(client: Client, settings: Settings) -> None:
    host = await signed_up_host(client)
    prop = await create_property(client, host, timezone="Asia/Tokyo")
    async with pipeline_for(settings) as pipeline:
        await pipeline.drain()
        start, end = days_ahead(5), days_ahead(15)
        assert (await metrics(client, host, start, end))["total"]["available_nights"] == 10
        assert (await client.delete(f"/api/v1/properties/{prop['id']}", headers=host)).status_code == 204
        await pipeline.drain()
    after = await metrics(client, host, start, end)
    assert [item["property_id"] for item in after["properties"]] == [prop["id"]]
    assert after["total"]["available_nights"] == 0

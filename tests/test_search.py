"""A guest searches a city for dates and sees only places free, big enough and within budget, with prices."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import create_async_engine

from service.properties.search import SearchCriteria, search_statement
from service.settings import Settings
from tests.api import Client, assert_problem, create_property, days_ahead, signed_up_host


async def test_search_filters_by_dates_size_price_and_quotes(client: Client) -> None:
    headers = await signed_up_host(client)
    city = f"Braga-{uuid.uuid4().hex[:6]}"
    check_in, check_out = days_ahead(60), days_ahead(63)
    free = await create_property(client, headers, city=city, nightly_price=9_000, cleaning_fee=0)
    blocked = await create_property(client, headers, city=city, nightly_price=9_500)
    await client.post(
        f"/api/v1/properties/{blocked['id']}/blocks",
        json={"start": (check_in + dt.timedelta(days=2)).isoformat(), "end": check_out.isoformat()},
        headers=headers,
    )
    await create_property(client, headers, city=city, max_guests=2)
    await create_property(client, headers, city=city, nightly_price=30_000)
    await create_property(client, headers, city=city, min_nights=5)
    gone = await create_property(client, headers, city=city, nightly_price=8_000)
    await client.delete(f"/api/v1/properties/{gone['id']}", headers=headers)
    await create_property(client, headers, nightly_price=9_000)  # another city

    response = await client.get(
        "/api/v1/properties",
        params={
            "city": city.upper(),
            "check_in": check_in.isoformat(),
            "check_out": check_out.isoformat(),
            "guests": 3,
            "max_price": 20_000,
        },
    )
    assert response.status_code == 200, response.text
    page = response.json()
    assert [item["property"]["id"] for item in page["items"]] == [free["id"]]
    quote = page["items"][0]["quote"]
    assert quote["nights"] == 3
    assert quote["total"] == 27_000 + 2_700
    assert page["has_more"] is False


async def test_search_pages_through_results_in_price_order(client: Client) -> None:
    headers = await signed_up_host(client)
    city = f"Faro-{uuid.uuid4().hex[:6]}"
    ids = [(await create_property(client, headers, city=city, nightly_price=price))["id"] for price in (300, 100, 200)]
    first = (await client.get("/api/v1/properties", params={"city": city, "limit": 2})).json()
    assert [i["property"]["id"] for i in first["items"]] == [ids[1], ids[2]]
    assert first["has_more"] is True
    assert first["items"][0]["quote"] is None
    second = (await client.get("/api/v1/properties", params={"city": city, "limit": 2, "offset": 2})).json()
    assert [i["property"]["id"] for i in second["items"]] == [ids[0]]
    assert second["has_more"] is False


async def test_search_refuses_half_or_impossible_dates(client: Client) -> None:
    assert_problem(await client.get("/api/v1/properties", params={"check_in": days_ahead(3).isoformat()}), 400)
    backwards = {"check_in": days_ahead(5).isoformat(), "check_out": days_ahead(3).isoformat()}
    assert_problem(await client.get("/api/v1/properties", params=backwards), 422)
    past = {"check_in": days_ahead(-5).isoformat(), "check_out": days_ahead(-3).isoformat()}
    assert_problem(await client.get("/api/v1/properties", params=past), 422)
    assert_problem(await client.get("/api/v1/properties", params={"limit": 1000}), 400)
    assert_problem(await client.get("/api/v1/properties", params={"guests": 0}), 400)


async def test_price_filters_beyond_the_price_column_are_refused_not_a_500(client: Client) -> None:
    """Found by schemathesis: min_price=5384997910 reached Postgres (a 32-bit column) and answered 500."""
    headers = await signed_up_host(client)
    await create_property(client, headers)
    for name in ("min_price", "max_price"):
        assert_problem(await client.get("/api/v1/properties", params={name: 2**31}), 400)
    largest = await client.get("/api/v1/properties", params={"min_price": 0, "max_price": 2**31 - 1})
    assert largest.status_code == 200, largest.text
    assert largest.json()["items"]


async def test_search_plan_can_use_the_indexes(settings: Settings) -> None:
    """With sequential scans priced out, the planner proves each filter has an index to use."""
    criteria = SearchCriteria("Porto", days_ahead(10), days_ahead(13), 2, 5_000, 20_000, 20, 0)
    compiled = search_statement(criteria).compile(
        dialect=postgresql.dialect(),  # type: ignore[no-untyped-call]
        compile_kwargs={"literal_binds": True},
    )
    engine = create_async_engine(settings.async_database_url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SET enable_seqscan = off"))
            plan = "\n".join(row[0] for row in await connection.execute(text(f"EXPLAIN {compiled}")))
    finally:
        await engine.dispose()
    assert "ix_properties_search" in plan
    assert "ix_availability_blocks_property_during" in plan
    assert "ex_bookings_no_overlapping_stays" in plan

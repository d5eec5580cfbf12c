"""Under any concurrency no two live stays of one property overlap, with Redis or without it.

Requests go through the real HTTP stack (uvicorn on loopback) at the same moment.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.embedded import EmbeddedRedis
from service.settings import Settings
from tests.api import Client, create_property, days_ahead, signed_up, signed_up_host
from tests.db import execute
from tests.invariants import overlapping_bookings
from tests.live_server import live_server


@pytest.fixture(params=["redis up", "redis stopped"])
def base_url(request: pytest.FixtureRequest, settings: Settings, tmp_path: Path) -> Iterator[str]:
    if request.param == "redis up":
        with live_server(settings) as url:
            yield url
        return
    stopped = EmbeddedRedis.start(tmp_path / "redis")
    stopped.stop()
    with live_server(dataclasses.replace(settings, redis_url=stopped.url)) as url:
        yield url


async def guests(client: Client, count: int) -> list[dict[str, str]]:
    return [(await signed_up(client))[1] for _ in range(count)]


async def fire(base_url: str, requests: list[tuple[dict[str, str], dict[str, Any]]]) -> list[httpx.Response]:
    """Send every request at once, each on its own connection."""
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as http:
        return await asyncio.gather(*(http.post("/api/v1/bookings", json=b, headers=h) for h, b in requests))


async def test_200_simultaneous_requests_for_the_same_dates_make_one_booking(
    client: Client, base_url: str, settings: Settings
) -> None:
    prop = await create_property(client, await signed_up_host(client))
    start = days_ahead(30)
    body = {
        "property_id": prop["id"],
        "check_in": start.isoformat(),
        "check_out": (start + dt.timedelta(days=3)).isoformat(),
    }
    people = await guests(client, 10)
    responses = await fire(base_url, [(people[i % 10], body) for i in range(200)])
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1, statuses
    assert statuses.count(409) == 199, statuses
    assert all(
        r.headers["content-type"].startswith("application/problem+json") for r in responses if r.status_code == 409
    )
    live = await execute(
        settings, "SELECT count(*) FROM bookings WHERE property_id = :id AND status = 'PENDING'", id=prop["id"]
    )
    assert live[0][0] == 1


async def test_random_overlapping_requests_never_double_book(client: Client, base_url: str, settings: Settings) -> None:
    host = await signed_up_host(client)
    properties = [await create_property(client, host) for _ in range(8)]
    people = await guests(client, 8)
    rng = random.Random(20261124)
    requests = []
    for index in range(240):
        start = days_ahead(20 + rng.randrange(30))
        body = {
            "property_id": rng.choice(properties)["id"],
            "check_in": start.isoformat(),
            "check_out": (start + dt.timedelta(days=rng.randint(1, 6))).isoformat(),
        }
        requests.append((people[index % 8], body))
    responses = await fire(base_url, requests)
    assert {r.status_code for r in responses} <= {201, 409}, [r.text for r in responses if r.status_code >= 500][:3]
    won = [r.json() for r in responses if r.status_code == 201]
    assert won
    # What the guests were told must be possible: no two accepted stays of a property overlap.
    for a in won:
        for b in won:
            if a["id"] < b["id"] and a["property_id"] == b["property_id"]:
                assert a["check_out"] <= b["check_in"] or b["check_out"] <= a["check_in"], (a, b)
    ids = [p["id"] for p in properties]
    assert await overlapping_bookings(settings, ids) == []
    stored = await execute(
        settings, "SELECT count(*) FROM bookings WHERE property_id = ANY(CAST(:ids AS uuid[]))", ids=ids
    )
    assert stored[0][0] == len(won)

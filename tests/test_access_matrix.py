"""Who may do what: every owned route, tried by anonymous, the booking's guest, another guest, the property's host
and another host. Each cell is the status that actor must get."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tests.api import Client, book, create_property, days_ahead, signed_up, signed_up_host

ACTORS = ("anonymous", "guest", "other_guest", "host", "other_host")


@dataclasses.dataclass
class World:
    headers: dict[str, dict[str, str]]
    property_id: str
    spare_property_id: str
    booking_id: str


@pytest.fixture(scope="module")
async def world(client: Client) -> World:
    host = await signed_up_host(client)
    other_host = await signed_up_host(client)
    _, guest = await signed_up(client)
    _, other_guest = await signed_up(client)
    prop = await create_property(client, host)
    spare = await create_property(client, host)
    booking = await book(client, guest, prop, days_ahead(30), 2)
    assert booking.status_code == 201, booking.text
    actors = {"anonymous": {}, "guest": guest, "other_guest": other_guest, "host": host, "other_host": other_host}
    return World(actors, prop["id"], spare["id"], booking.json()["id"])


WINDOW = f"from={days_ahead(1).isoformat()}&to={days_ahead(60).isoformat()}"
STAY = f"check_in={days_ahead(40).isoformat()}&check_out={days_ahead(42).isoformat()}"
FAR_BLOCK = {"start": days_ahead(300).isoformat(), "end": days_ahead(301).isoformat()}

# (method, path, body, statuses for ACTORS in order). Writes that succeed for one actor come last in a row's
# order of trial (owners are tried after everybody else), so refusals are seen before anything changes.
MATRIX: list[tuple[str, str, Any, tuple[int, int, int, int, int]]] = [
    ("GET", "/api/v1/users/me", None, (401, 200, 200, 200, 200)),
    ("GET", "/api/v1/hosts/me/properties", None, (401, 403, 403, 200, 200)),
    ("GET", "/api/v1/properties/{property}", None, (200, 200, 200, 200, 200)),
    ("PATCH", "/api/v1/properties/{property}", {"title": "Renamed"}, (401, 403, 403, 200, 403)),
    ("GET", "/api/v1/properties/{property}/pricing-rules", None, (200, 200, 200, 200, 200)),
    ("PUT", "/api/v1/properties/{property}/pricing-rules", {}, (401, 403, 403, 200, 403)),
    ("GET", "/api/v1/properties/{property}/availability?" + WINDOW, None, (200, 200, 200, 200, 200)),
    ("GET", "/api/v1/properties/{property}/quote?" + STAY, None, (200, 200, 200, 200, 200)),
    ("GET", "/api/v1/properties/{property}/blocks?" + WINDOW, None, (401, 403, 403, 200, 403)),
    ("POST", "/api/v1/properties/{property}/blocks", FAR_BLOCK, (401, 403, 403, 201, 403)),
    ("GET", "/api/v1/properties/{property}/reviews", None, (200, 200, 200, 200, 200)),
    ("GET", "/api/v1/properties/{property}/calendar-export", None, (401, 403, 403, 200, 403)),
    ("GET", "/api/v1/properties/{property}/calendar-imports", None, (401, 403, 403, 200, 403)),
    ("GET", "/api/v1/bookings", None, (401, 200, 200, 200, 200)),
    ("GET", "/api/v1/bookings?as=host", None, (401, 403, 403, 200, 200)),
    ("GET", "/api/v1/bookings/{booking}", None, (401, 200, 404, 200, 404)),
    ("POST", "/api/v1/bookings/{booking}/checkout", None, (401, 200, 404, 404, 404)),
    ("POST", "/api/v1/bookings/{booking}/review", {"rating": 5}, (401, 409, 404, 404, 404)),
    ("DELETE", "/api/v1/properties/{spare}", None, (401, 403, 403, 204, 403)),
    ("POST", "/api/v1/bookings/{booking}/cancel", None, (401, 200, 404, 409, 404)),
]
# Owners act last: the property's host, then the booking's guest (so the host's cancel meets a cancelled booking).
TRIAL_ORDER = ("anonymous", "other_guest", "other_host", "guest", "host")


@pytest.mark.parametrize(("method", "path", "body", "statuses"), MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX])
async def test_access(
    client: Client, world: World, method: str, path: str, body: Any, statuses: tuple[int, ...]
) -> None:
    url = path.format(property=world.property_id, spare=world.spare_property_id, booking=world.booking_id)
    expected = dict(zip(ACTORS, statuses, strict=True))
    seen = {}
    for actor in TRIAL_ORDER:
        response = await client.request(method, url, json=body, headers=world.headers[actor])
        seen[actor] = response.status_code
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json"), response.text
    assert seen == expected

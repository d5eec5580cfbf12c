"""A host lists a property, edits it and takes it down; nobody else can."""

from __future__ import annotations

from typing import Any

import pytest

from service.settings import Settings
from tests.api import Client, assert_problem, book, create_property, days_ahead, signed_up, signed_up_host
from tests.db import execute


async def test_host_creates_reads_updates_and_lists(client: Client) -> None:
    headers = await signed_up_host(client)
    created = await create_property(client, headers, title="  Casa Azul ", min_nights=2, max_nights=30)
    assert created["title"] == "Casa Azul"
    assert created["cancellation_policy"] == "moderate"
    public = await client.get(f"/api/v1/properties/{created['id']}")
    assert public.status_code == 200
    assert public.json() == created

    patched = await client.patch(
        f"/api/v1/properties/{created['id']}", json={"nightly_price": 12_500, "max_guests": 6}, headers=headers
    )
    assert patched.status_code == 200
    assert patched.json()["nightly_price"] == 12_500
    assert patched.json()["max_guests"] == 6
    assert patched.json()["title"] == "Casa Azul"

    mine = (await client.get("/api/v1/hosts/me/properties", headers=headers)).json()
    assert [p["id"] for p in mine["items"]] == [created["id"]]


async def test_guest_without_host_role_gets_403_on_host_routes(client: Client) -> None:
    _, guest = await signed_up(client)
    body = {"title": "x", "city": "Porto", "country": "PT", "timezone": "Europe/Lisbon", "max_guests": 2}
    problem = assert_problem(await client.post("/api/v1/properties", json=body, headers=guest), 403)
    assert "host role" in problem["detail"]
    assert_problem(await client.get("/api/v1/hosts/me/properties", headers=guest), 403)
    assert_problem(await client.post("/api/v1/properties", json=body), 401)


async def test_host_cannot_touch_another_hosts_property(client: Client) -> None:
    owner, intruder = await signed_up_host(client), await signed_up_host(client)
    prop = await create_property(client, owner)
    url = f"/api/v1/properties/{prop['id']}"
    assert_problem(await client.patch(url, json={"nightly_price": 1}, headers=intruder), 403)
    assert_problem(await client.delete(url, headers=intruder), 403)
    assert_problem(await client.put(f"{url}/pricing-rules", json={}, headers=intruder), 403)
    assert_problem(
        await client.post(f"{url}/blocks", json={"start": "2099-01-01", "end": "2099-01-05"}, headers=intruder), 403
    )
    assert (await client.get(url)).json()["nightly_price"] == prop["nightly_price"]


async def test_delete_hides_the_property_and_a_second_delete_is_404(client: Client) -> None:
    headers = await signed_up_host(client)
    prop = await create_property(client, headers)
    url = f"/api/v1/properties/{prop['id']}"
    assert (await client.delete(url, headers=headers)).status_code == 204
    assert_problem(await client.get(url), 404)
    assert_problem(await client.delete(url, headers=headers), 404)
    assert_problem(await client.patch(url, json={"title": "again"}, headers=headers), 404)
    assert (await client.get("/api/v1/hosts/me/properties", headers=headers)).json()["items"] == []


async def test_update_of_a_missing_property_is_404(client: Client) -> None:
    headers = await signed_up_host(client)
    missing = "/api/v1/properties/00000000-0000-0000-0000-000000000000"
    assert_problem(await client.patch(missing, json={"title": "x"}, headers=headers), 404)
    assert_problem(await client.delete(missing, headers=headers), 404)
    assert_problem(await client.get("/api/v1/properties/not-a-uuid"), 404)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "eur"}, "currency"),
        ({"country": "ZZ"}, "country"),
        ({"nightly_price": -1}, "nightly_price"),
        ({"nightly_price": 99.5}, "nightly_price"),
        ({"min_nights": 10, "max_nights": 5}, "min_nights"),
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"max_guests": 0}, "max_guests"),
        ({"cancellation_policy": "never"}, "cancellation_policy"),
    ],
)
async def test_invalid_property_fields_are_named_and_nothing_is_created(
    client: Client, fields: dict[str, Any], field: str
) -> None:
    headers = await signed_up_host(client)
    body = {
        "title": "Flat",
        "city": "Porto",
        "country": "PT",
        "timezone": "Europe/Lisbon",
        "max_guests": 2,
        "currency": "EUR",
        "nightly_price": 9_000,
        **fields,
    }
    problem = assert_problem(await client.post("/api/v1/properties", json=body, headers=headers), 400)
    assert field in [error["field"] for error in problem["errors"]]
    assert (await client.get("/api/v1/hosts/me/properties", headers=headers)).json()["items"] == []


async def test_patch_keeps_min_nights_below_max_nights(client: Client) -> None:
    headers = await signed_up_host(client)
    prop = await create_property(client, headers, max_nights=10)
    url = f"/api/v1/properties/{prop['id']}"
    assert_problem(await client.patch(url, json={"min_nights": 11}, headers=headers), 400)
    assert (await client.get(url)).json()["min_nights"] == prop["min_nights"]


async def test_a_property_with_an_upcoming_booking_cannot_be_deleted(client: Client) -> None:
    headers = await signed_up_host(client)
    prop = await create_property(client, headers)
    _, guest = await signed_up(client)
    assert (await book(client, guest, prop, days_ahead(20), 2)).status_code == 201
    problem = assert_problem(await client.delete(f"/api/v1/properties/{prop['id']}", headers=headers), 409)
    assert "upcoming bookings" in problem["detail"]
    assert (await client.get(f"/api/v1/properties/{prop['id']}")).status_code == 200


async def test_property_and_block_changes_write_outbox_events(client: Client, settings: Settings) -> None:
    headers = await signed_up_host(client)
    prop = await create_property(client, headers, timezone="America/New_York")
    url = f"/api/v1/properties/{prop['id']}"
    await client.patch(url, json={"nightly_price": 11_000}, headers=headers)
    block = (
        await client.post(
            f"{url}/blocks",
            json={"start": days_ahead(9).isoformat(), "end": days_ahead(11).isoformat()},
            headers=headers,
        )
    ).json()
    await client.delete(f"{url}/blocks/{block['id']}", headers=headers)
    await client.delete(url, headers=headers)
    rows = await execute(
        settings, "SELECT type, payload FROM outbox_events WHERE property_id = :id ORDER BY id", id=prop["id"]
    )
    assert [row[0] for row in rows] == [
        "property.created",
        "property.updated",
        "availability.blocked",
        "availability.unblocked",
        "property.deleted",
    ]
    assert rows[0][1]["timezone"] == "America/New_York"
    assert rows[1][1]["changed"] == ["nightly_price"]
    assert rows[2][1]["start"] == days_ahead(9).isoformat()
    assert rows[4][1]["active"] is False

"""Small steps of a user's story through the API, shared by the suites."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from httpx import Response
from litestar import Litestar
from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Litestar]
PASSWORD = "correct horse battery"
PROBLEM_JSON = "application/problem+json"


def unique_email(label: str = "user") -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}@example.com"


async def register(client: Client, *, roles: list[str] | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"email": unique_email(), "password": PASSWORD, "name": "Ana Lima", **fields}
    if roles is not None:
        body["roles"] = roles
    response = await client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


async def login(client: Client, email: str, password: str = PASSWORD) -> dict[str, str]:
    """Log in and answer the `Authorization` header to send."""
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def signed_up(client: Client, *, roles: list[str] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """A new account and its auth header."""
    user = await register(client, roles=roles)
    return user, await login(client, user["email"])


def assert_problem(response: Response, status: int) -> dict[str, Any]:
    """The response is RFC 9457 problem+json with this status; answers its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    return body


def days_ahead(days: int) -> dt.date:
    """A date safely in the future wherever the property is."""
    return dt.datetime.now(dt.UTC).date() + dt.timedelta(days=days)


async def signed_up_host(client: Client) -> dict[str, str]:
    _, headers = await signed_up(client, roles=["guest", "host"])
    return headers


async def create_property(client: Client, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Sea view flat",
        "city": f"Porto-{uuid.uuid4().hex[:8]}",
        "country": "PT",
        "timezone": "Europe/Lisbon",
        "max_guests": 4,
        "currency": "EUR",
        "nightly_price": 10_000,
        "cleaning_fee": 3_000,
        **fields,
    }
    response = await client.post("/api/v1/properties", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def book(
    client: Client, headers: dict[str, str], prop: dict[str, Any], start: dt.date, nights: int, **extra: Any
) -> Response:
    body = {
        "property_id": prop["id"],
        "check_in": start.isoformat(),
        "check_out": (start + dt.timedelta(days=nights)).isoformat(),
        **extra,
    }
    return await client.post("/api/v1/bookings", json=body, headers=headers)

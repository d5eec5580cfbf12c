"""What a browser and a hostile client meet: security headers, CORS only for configured origins, body limits."""

from __future__ import annotations

import dataclasses

from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings
from tests.api import Client, assert_problem


async def test_api_responses_carry_security_headers(client: Client) -> None:
    for response in (await client.get("/health/live"), await client.get("/api/v1/users/me")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert "strict-transport-security" not in response.headers  # development serves plain HTTP
    assert "content-security-policy" not in (await client.get("/schema")).headers


async def test_cors_answers_only_configured_origins(settings: Settings) -> None:
    configured = dataclasses.replace(settings, cors_allow_origins=("https://dashboard.example",))
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    async with AsyncTestClient(create_app(configured)) as client:
        allowed = await client.options("/api/v1/bookings", headers={"Origin": "https://dashboard.example", **preflight})
        assert allowed.headers["access-control-allow-origin"] == "https://dashboard.example"
        other = await client.options("/api/v1/bookings", headers={"Origin": "https://evil.example", **preflight})
        assert other.headers.get("access-control-allow-origin") != "https://evil.example"


async def test_no_cors_headers_without_configured_origins(client: Client) -> None:
    response = await client.get("/health/live", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers


async def test_oversized_bodies_are_refused_before_parsing(settings: Settings) -> None:
    limited = dataclasses.replace(settings, max_request_body_bytes=1024)
    async with AsyncTestClient(create_app(limited)) as client:
        body = {"email": "a@example.com", "password": "x" * 2000, "name": "A"}
        assert_problem(await client.post("/api/v1/auth/register", json=body), 413)

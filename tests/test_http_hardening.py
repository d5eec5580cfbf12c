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


async def test_the_dashboard_page_is_public_and_may_load_only_its_own_files(client: Client) -> None:
    page = await client.get("/dashboard")
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    csp = {
        directive.split()[0]: directive.split()[1:] for directive in page.headers["content-security-policy"].split("; ")
    }
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == csp["style-src"] == csp["connect-src"] == ["'self'"]
    assert csp["form-action"] == csp["frame-ancestors"] == ["'none'"]
    assert "<script>" not in page.text  # no inline script: the CSP would refuse it
    script = await client.get("/dashboard/dashboard.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert script.headers["x-content-type-options"] == "nosniff"
    assert (await client.get("/dashboard/nothing-here.js")).status_code == 404


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

"""Guessing passwords is slowed down for everyone, whichever API process answers."""

from __future__ import annotations

import dataclasses
import uuid

from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings
from tests.api import Client, assert_problem, register


async def test_login_is_rate_limited_across_processes(settings: Settings, client: Client) -> None:
    user = await register(client)
    limited = dataclasses.replace(
        settings, login_rate_limit_per_minute=3, redis_prefix=f"rate-limit-test-{uuid.uuid4().hex[:8]}"
    )
    wrong = {"email": user["email"], "password": "not the password"}
    # Two app instances stand for two API processes sharing one Redis.
    async with (
        AsyncTestClient(create_app(limited)) as first,
        AsyncTestClient(create_app(limited)) as second,
    ):
        for api in (first, second, first):
            assert_problem(await api.post("/api/v1/auth/login", json=wrong), 401)
        refused = await second.post("/api/v1/auth/login", json={**wrong, "password": "correct horse battery"})
        assert_problem(refused, 429)
        assert int(refused.headers["ratelimit-reset"]) > 0
        other_routes = await second.post("/api/v1/auth/register", json={"email": "x"})
        assert other_routes.status_code == 400

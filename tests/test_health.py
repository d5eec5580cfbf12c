"""An operator's view: liveness, readiness that follows Postgres and Redis down and back up, metrics, logs."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url

from migrations import upgrade_to_head
from service.app import create_app
from service.embedded import EmbeddedPostgres, EmbeddedRedis
from service.settings import Settings
from tests.api import Client, assert_problem, book, create_property, days_ahead, signed_up, signed_up_host


async def test_live_and_ready(client: Client) -> None:
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"postgres": "ok", "redis": "ok"}


async def test_request_id_is_echoed_or_generated(client: Client) -> None:
    given = await client.get("/health/live", headers={"X-Request-ID": "trace-42"})
    assert given.headers["x-request-id"] == "trace-42"
    generated = await client.get("/health/live")
    assert len(generated.headers["x-request-id"]) == 32
    # Errors answered outside route handlers (bad token, unknown path) carry one too.
    assert (await client.get("/api/v1/users/me", headers={"X-Request-ID": "trace-43"})).headers[
        "x-request-id"
    ] == "trace-43"
    assert len((await client.get("/nowhere")).headers["x-request-id"]) == 32


async def test_prometheus_metrics_and_openapi(client: Client) -> None:
    await client.get("/health/live")
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert 'staypulse_requests_total{app_name="staypulse",method="GET",path="/health/live"' in metrics.text
    schema = (await client.get("/schema/openapi.json")).json()
    assert "/api/v1/auth/register" in schema["paths"]
    assert "/api/v1/users/me" in schema["paths"]


async def test_unknown_route_is_a_problem(client: Client) -> None:
    assert_problem(await client.get("/api/v1/nowhere"), 404)


@pytest.fixture
async def own_redis(tmp_path: Path, settings: Settings) -> AsyncIterator[tuple[EmbeddedRedis, Client]]:
    """An app whose Redis this test may kill and bring back."""
    redis_server = EmbeddedRedis.start(tmp_path / "redis")
    app = create_app(dataclasses.replace(settings, redis_url=redis_server.url))
    try:
        async with AsyncTestClient(app, raise_server_exceptions=False) as client:
            yield redis_server, client
    finally:
        redis_server.stop()


async def test_ready_is_503_while_redis_is_down_and_recovers(own_redis: tuple[EmbeddedRedis, Client]) -> None:
    redis_server, client = own_redis
    assert (await client.get("/health/ready")).status_code == 200
    data_dir = redis_server.socket_path.parent
    redis_server.stop()
    problem = assert_problem(await client.get("/health/ready"), 503)
    assert problem["checks"] == {"postgres": "ok", "redis": "down"}

    restarted = EmbeddedRedis.start(data_dir)
    try:
        assert restarted.url == redis_server.url
        assert (await client.get("/health/ready")).status_code == 200
    finally:
        restarted.stop()


@pytest.fixture
async def own_postgres(tmp_path: Path, settings: Settings) -> AsyncIterator[tuple[EmbeddedPostgres, Client]]:
    """An app whose Postgres this test may stop and start again."""
    postgres = EmbeddedPostgres.start(tmp_path / "pgdata")
    app = create_app(settings.with_servers(postgres.url, settings.redis_url or ""))
    try:
        async with AsyncTestClient(app, raise_server_exceptions=False) as client:
            yield postgres, client
    finally:
        postgres.stop()


async def test_ready_is_503_while_postgres_is_down_and_recovers(
    own_postgres: tuple[EmbeddedPostgres, Client], tmp_path: Path
) -> None:
    postgres, client = own_postgres
    assert (await client.get("/health/ready")).status_code == 200
    postgres.stop()
    problem = assert_problem(await client.get("/health/ready"), 503)
    assert problem["checks"] == {"postgres": "down", "redis": "ok"}

    restarted = EmbeddedPostgres.start(tmp_path / "pgdata")
    try:
        assert (await client.get("/health/ready")).status_code == 200
    finally:
        restarted.stop()


async def test_api_answers_503_not_500_while_postgres_is_down(own_postgres: tuple[EmbeddedPostgres, Client]) -> None:
    postgres, client = own_postgres
    postgres.stop()
    response = await client.post("/api/v1/auth/login", json={"email": "ana@example.com", "password": "whatever"})
    problem = assert_problem(response, 503)
    assert response.headers["retry-after"] == "5"
    assert "Traceback" not in problem["detail"]


async def test_bookings_answer_503_while_postgres_is_down_and_work_again_after(
    own_postgres: tuple[EmbeddedPostgres, Client], tmp_path: Path
) -> None:
    """The pool does not ping connections before use: a pooled connection that died with the server fails its
    first statement, that request answers 503 and the pool drops the dead connections, so once Postgres is back
    the next booking gets a fresh connection, without restarting the app."""
    postgres, client = own_postgres
    await asyncio.to_thread(upgrade_to_head, postgres.url)
    prop = await create_property(client, await signed_up_host(client))
    _, guest = await signed_up(client)
    assert (await book(client, guest, prop, days_ahead(30), 2)).status_code == 201

    postgres.stop()
    assert_problem(await book(client, guest, prop, days_ahead(40), 2), 503)

    restarted = EmbeddedPostgres.start(tmp_path / "pgdata")
    try:
        assert (await book(client, guest, prop, days_ahead(40), 2)).status_code == 201
    finally:
        restarted.stop()


async def test_postgres_refusing_connections_answers_503_not_500(settings: Settings) -> None:
    """Postgres at its connection limit refuses new sessions with SQLSTATE 53300 (as at `max_connections`, seen in
    bench/system.py on the shared machine): temporary, so 503 with Retry-After, like an unreachable server."""
    role = f"refused_{uuid.uuid4().hex[:10]}"
    url = make_url(settings.async_database_url)
    admin = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        await admin.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 0')
        refused = url.set(username=role, password=None).render_as_string(hide_password=False)
        app = create_app(dataclasses.replace(settings, database_url=refused))
        async with AsyncTestClient(app, raise_server_exceptions=False) as client:
            response = await client.get(f"/api/v1/properties/{uuid.uuid4()}")
        assert_problem(response, 503)
        assert response.headers["retry-after"] == "5"
    finally:
        await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()

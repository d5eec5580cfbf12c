"""`GET /health/live` (the process answers) and `GET /health/ready` (Postgres and Redis answer too)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.plugins.problem_details import ProblemDetailsException
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

CHECK_TIMEOUT_S = 2.0


async def _check(probe: Awaitable[Any]) -> str:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT_S)
    except Exception:
        return "down"
    return "ok"


async def _ping_postgres(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


class HealthController(Controller):
    path = "/health"
    tags = ["health"]
    include_in_schema = True

    @get("/live", summary="The process is up")
    async def live(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready", summary="Postgres and Redis answer; 503 otherwise")
    async def ready(self, db_engine: NamedDependency[AsyncEngine], redis: NamedDependency[Redis]) -> dict[str, Any]:
        postgres, redis_state = await asyncio.gather(_check(_ping_postgres(db_engine)), _check(redis.ping()))
        checks = {"postgres": postgres, "redis": redis_state}
        if "down" in checks.values():
            down = ", ".join(name for name, state in checks.items() if state == "down")
            raise ProblemDetailsException(
                status_code=503, title="Not ready", detail=f"Unreachable: {down}.", extra={"checks": checks}
            )
        return {"status": "ready", "checks": checks}

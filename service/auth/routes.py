"""`POST /api/v1/auth/register` and `POST /api/v1/auth/login`."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.params import JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.tokens import TokenIssuer
from service.settings import Settings
from service.users import service
from service.users.convert import user_out
from service.users.schemas import LoginRequest, RegisterRequest, TokenOut, UserOut


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]

    @post("/register", summary="Create an account")
    async def register(self, db_session: NamedDependency[AsyncSession], data: JSONBody[RegisterRequest]) -> UserOut:
        return user_out(await service.register(db_session, data))

    @post("/login", status_code=200, summary="Exchange e-mail and password for a bearer token", rate_limited=True)
    async def login(
        self,
        db_session: NamedDependency[AsyncSession],
        data: JSONBody[LoginRequest],
        tokens: NamedDependency[TokenIssuer],
    ) -> TokenOut:
        user = await service.authenticate(db_session, data.email, data.password)
        return TokenOut(access_token=tokens.issue(user.id, user.roles), expires_in=tokens.ttl_seconds)


async def is_rate_limited(request: Request[Any, Any, Any]) -> bool:
    # A coroutine function on purpose: Litestar runs a plain function here in a worker thread, on every request.
    return bool(request.route_handler.opt.get("rate_limited"))


def login_rate_limit(settings: Settings) -> RateLimitConfig:
    """Routes marked `rate_limited=True` (login) get a budget per client address, kept in Redis so that every
    API process shares it."""
    return RateLimitConfig(
        rate_limit=("minute", settings.login_rate_limit_per_minute),
        store="rate_limit",
        check_throttle_handler=is_rate_limited,
    )

"""`GET /api/v1/users/me` and `POST /api/v1/users/me/roles`."""

from __future__ import annotations

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.security.jwt import Token
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.tokens import CurrentUser, TokenIssuer
from service.users import service
from service.users.convert import user_out
from service.users.schemas import AddRoleRequest, UserOut, UserWithToken


class UserController(Controller):
    path = "/users/me"
    tags = ["users"]

    @get(summary="The caller's profile")
    async def me(
        self, db_session: NamedDependency[AsyncSession], request: Request[CurrentUser, Token, State]
    ) -> UserOut:
        return user_out(await service.get_user(db_session, request.user.id))

    @post("/roles", status_code=200, summary="Add the guest or host role to the caller's account")
    async def add_role(
        self,
        db_session: NamedDependency[AsyncSession],
        request: Request[CurrentUser, Token, State],
        data: JSONBody[AddRoleRequest],
        tokens: NamedDependency[TokenIssuer],
    ) -> UserWithToken:
        user = await service.add_role(db_session, request.user.id, data.role)
        return UserWithToken(
            user=user_out(user), access_token=tokens.issue(user.id, user.roles), expires_in=tokens.ttl_seconds
        )

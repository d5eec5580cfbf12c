"""JWT bearer authentication through Litestar's `JWTAuth`.

A token names the user (`sub`) and carries their roles, so guards decide without a database round trip. A token
issued before a role was added lacks it; adding a role answers a fresh token.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from litestar.connection import ASGIConnection
from litestar.security.jwt import JWTAuth, Token

from service.settings import Settings

# Anchored: Litestar searches these patterns anywhere in the path, and "/metrics" would also match
# "/api/v1/hosts/me/metrics". The metrics WebSocket authenticates with a single-use ticket instead (realtime.tickets).
PUBLIC_PATHS = [
    "^/health",
    "^/metrics",
    "^/schema",
    "^/api/v1/auth/",
    "^/api/v1/webhooks/stripe",
    "^/ws/metrics",
    "^/dashboard(/|$)",
]


@dataclass(frozen=True)
class CurrentUser:
    """The authenticated caller, as the token describes them."""

    id: uuid.UUID
    roles: frozenset[str]

    def has_role(self, role: str) -> bool:
        return role in self.roles


async def user_from_token(token: Token, connection: ASGIConnection[Any, Any, Any, Any]) -> CurrentUser | None:
    try:
        user_id = uuid.UUID(token.sub)
    except ValueError:
        return None
    roles = token.extras.get("roles", [])
    if not isinstance(roles, list):
        return None
    return CurrentUser(id=user_id, roles=frozenset(str(role) for role in roles))


def jwt_auth(settings: Settings) -> JWTAuth[CurrentUser, Token]:
    return JWTAuth[CurrentUser, Token](
        token_secret=settings.jwt_secret,
        retrieve_user_handler=user_from_token,
        default_token_expiration=timedelta(seconds=settings.jwt_ttl_seconds),
        exclude=PUBLIC_PATHS,
    )


class TokenIssuer:
    """Signs access tokens; handlers receive it as the `tokens` dependency."""

    def __init__(self, auth: JWTAuth[CurrentUser, Token], ttl_seconds: int) -> None:
        self._auth = auth
        self.ttl_seconds = ttl_seconds

    def issue(self, user_id: uuid.UUID, roles: list[str]) -> str:
        return self._auth.create_token(identifier=str(user_id), token_extras={"roles": sorted(roles)})

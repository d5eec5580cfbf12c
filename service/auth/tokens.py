"""JWT bearer authentication through Litestar's `JWTAuth`.

A token names the user (`sub`) and carries their roles, so guards decide without a database round trip. A token
issued before a role was added lacks it; adding a role answers a fresh token.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self, final

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
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


# Tokens verified recently, by their text: a client sends the same token with every request, and verifying it
# (PyJWT parses the header, re-checks the HMAC key's form and computes the signature) cost about a tenth of a
# booking's CPU. Bounded, least recently used out first.
VERIFIED_TOKENS_CACHED = 4096


@final
class CachedToken(Token):
    """A `Token` whose text, once verified, is not verified again while it is cached; its expiry is still checked on
    every use, so a cached token stops working the moment it expires."""

    @classmethod
    def decode(
        cls,
        encoded_token: str,
        secret: str,
        algorithm: str,
        audience: str | Sequence[str] | None = None,
        issuer: str | Sequence[str] | None = None,
        require_claims: Sequence[str] | None = None,
        verify_exp: bool = True,
        verify_nbf: bool = True,
        strict_audience: bool = False,
    ) -> Self:
        token = _verified(
            encoded_token,
            secret,
            algorithm,
            _hashable(audience),
            _hashable(issuer),
            _hashable(require_claims),
            verify_exp,
            verify_nbf,
            strict_audience,
        )
        if verify_exp and token.exp <= dt.datetime.now(dt.UTC):
            raise NotAuthorizedException("Invalid token")
        return token


def _hashable(value: str | Sequence[str] | None) -> str | tuple[str, ...] | None:
    return value if value is None or isinstance(value, str) else tuple(value)


@functools.lru_cache(maxsize=VERIFIED_TOKENS_CACHED)
def _verified(
    encoded_token: str,
    secret: str,
    algorithm: str,
    audience: str | tuple[str, ...] | None,
    issuer: str | tuple[str, ...] | None,
    require_claims: tuple[str, ...] | None,
    verify_exp: bool,
    verify_nbf: bool,
    strict_audience: bool,
) -> CachedToken:
    """Litestar's full decoding and verification; a token it refuses raises and is not cached."""
    return super(CachedToken, CachedToken).decode(
        encoded_token, secret, algorithm, audience, issuer, require_claims, verify_exp, verify_nbf, strict_audience
    )


@dataclass(frozen=True)
class CurrentUser:
    """The authenticated caller, as the token describes them."""

    id: uuid.UUID
    roles: frozenset[str]

    def has_role(self, role: str) -> bool:
        return role in self.roles


async def user_from_token(token: Token, connection: ASGIConnection[Any, Any, Any, Any]) -> CurrentUser | None:
    roles = token.extras.get("roles", [])
    if not isinstance(roles, list):
        return None
    return _user(token.sub, tuple(str(role) for role in roles))


@functools.lru_cache(maxsize=VERIFIED_TOKENS_CACHED)
def _user(sub: str, roles: tuple[str, ...]) -> CurrentUser | None:
    """The user a token names (made once per user and roles, like the token's verification)."""
    try:
        user_id = uuid.UUID(sub)
    except ValueError:
        return None
    return CurrentUser(id=user_id, roles=frozenset(roles))


def jwt_auth(settings: Settings) -> JWTAuth[CurrentUser, CachedToken]:
    return JWTAuth[CurrentUser, CachedToken](
        token_secret=settings.jwt_secret,
        token_cls=CachedToken,
        retrieve_user_handler=user_from_token,
        default_token_expiration=dt.timedelta(seconds=settings.jwt_ttl_seconds),
        exclude=PUBLIC_PATHS,
    )


class TokenIssuer:
    """Signs access tokens; handlers receive it as the `tokens` dependency."""

    def __init__(self, auth: JWTAuth[CurrentUser, CachedToken], ttl_seconds: int) -> None:
        self._auth = auth
        self.ttl_seconds = ttl_seconds

    def issue(self, user_id: uuid.UUID, roles: list[str]) -> str:
        return self._auth.create_token(identifier=str(user_id), token_extras={"roles": sorted(roles)})

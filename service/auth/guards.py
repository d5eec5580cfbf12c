"""Role and ownership checks, in one place for every module.

`host_only` and `guest_only` are Litestar guards for whole routes; `ensure_owner` is called by services once
they have loaded the row whose owner matters. The guards are coroutine functions although they never wait:
Litestar runs a plain-function guard in a worker thread, a thread hop on every request.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from service.auth.tokens import CurrentUser
from service.errors import Forbidden


def _require_role(role: str, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    user = connection.user
    if not isinstance(user, CurrentUser) or not user.has_role(role):
        raise Forbidden(f"This action needs the {role} role; add it with POST /api/v1/users/me/roles.")


async def host_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    _require_role("host", connection)


async def guest_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    _require_role("guest", connection)


def ensure_owner(owner_id: uuid.UUID, user: CurrentUser, what: str) -> None:
    """Refuse to act on another user's resource."""
    if owner_id != user.id:
        raise Forbidden(f"This {what} belongs to another user.")

"""Role and ownership checks, in one place for every module.

`host_only` is a Litestar guard for whole routes; `require_role` is the same check called by a handler itself
where a guard costs too much (Litestar copies the route handler for every guard call, about 3% of a booking's
CPU); `ensure_owner` is called by services once they have loaded the row whose owner matters. The guard is a
coroutine function although it never waits: Litestar runs a plain-function guard in a worker thread, a thread hop
on every request.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from service.auth.tokens import CurrentUser
from service.errors import Forbidden


def require_role(user: object, role: str) -> None:
    if not isinstance(user, CurrentUser) or not user.has_role(role):
        raise Forbidden(f"This action needs the {role} role; add it with POST /api/v1/users/me/roles.")


async def host_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    require_role(connection.user, "host")


def ensure_owner(owner_id: uuid.UUID, user: CurrentUser, what: str) -> None:
    """Refuse to act on another user's resource."""
    if owner_id != user.id:
        raise Forbidden(f"This {what} belongs to another user.")

"""Shapes a `User` row into its public form (never the password hash)."""

from __future__ import annotations

from service.users.models import User
from service.users.schemas import UserOut


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        name=user.name,
        phone=user.phone,
        roles=sorted(user.roles),  # type: ignore[arg-type]  # the table's check constraint admits only known roles
        created_at=user.created_at,
    )

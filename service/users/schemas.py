"""Request and response bodies for accounts; constraints are declared here, so validation is Litestar's."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

import msgspec

Role = Literal["guest", "host"]
Email = Annotated[
    str,
    msgspec.Meta(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", examples=["ana@example.com"]),
]
Password = Annotated[str, msgspec.Meta(min_length=8, max_length=128)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S")]
Phone = Annotated[str, msgspec.Meta(pattern=r"^\+[1-9][0-9]{6,14}$", examples=["+14155550100"])]


class RegisterRequest(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    password: Password
    name: Name
    phone: Phone | None = None
    roles: Annotated[list[Role], msgspec.Meta(min_length=1, max_length=2)] = msgspec.field(
        default_factory=lambda: ["guest"]
    )


class LoginRequest(msgspec.Struct, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(min_length=1, max_length=254)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class AddRoleRequest(msgspec.Struct, forbid_unknown_fields=True):
    role: Role


class UserOut(msgspec.Struct):
    id: uuid.UUID
    email: str
    name: str
    phone: str | None
    roles: list[Role]
    created_at: dt.datetime


class TokenOut(msgspec.Struct):
    access_token: str
    expires_in: int
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret


class UserWithToken(msgspec.Struct):
    """Adding a role changes what the caller may do, so it comes with a token that says so."""

    user: UserOut
    access_token: str
    expires_in: int
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret

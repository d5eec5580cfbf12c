"""Account rules: unique e-mail (case-insensitive), hashed passwords, roles only ever added."""

from __future__ import annotations

import uuid

from sqlalchemy import case, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.passwords import hash_password, verify_password
from service.errors import Conflict, NotFound, Unauthorized
from service.users.models import User
from service.users.schemas import RegisterRequest


async def register(session: AsyncSession, data: RegisterRequest) -> User:
    """Create an account; an e-mail already in use answers 409 and writes nothing."""
    email = data.email.strip().lower()
    password_hash = await hash_password(data.password)
    statement = (
        insert(User)
        .values(
            email=email,
            name=data.name.strip(),
            phone=data.phone,
            password_hash=password_hash,
            roles=sorted(set(data.roles)),
        )
        .on_conflict_do_nothing(index_elements=[User.email])
        .returning(User)
    )
    user = (await session.scalars(statement)).one_or_none()
    if user is None:
        raise Conflict(f"An account with the e-mail {email} already exists.", field="email")
    return user


async def authenticate(session: AsyncSession, email: str, password: str) -> User:
    user = await session.scalar(select(User).where(User.email == email.strip().lower()))
    if not await verify_password(user.password_hash if user else None, password) or user is None:
        raise Unauthorized("E-mail or password is wrong.")
    return user


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("This account no longer exists.")
    return user


async def add_role(session: AsyncSession, user_id: uuid.UUID, role: str) -> User:
    """Add a role; adding one the user already holds changes nothing and is not an error."""
    statement = (
        update(User)
        .where(User.id == user_id)
        .values(roles=case((User.roles.contains([role]), User.roles), else_=func.array_append(User.roles, role)))
        .returning(User)
    )
    user = (await session.scalars(statement)).one_or_none()
    if user is None:
        raise NotFound("This account no longer exists.")
    return user

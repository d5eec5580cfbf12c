"""Argon2id password hashing, run in a worker thread so a login never stalls the event loop."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from litestar.concurrency import sync_to_thread

_hasher = PasswordHasher()


@functools.cache
def _unknown_user_hash() -> str:
    """Checked when the account does not exist, so a login takes as long either way."""
    return _hasher.hash("no such account")


async def hash_password(password: str) -> str:
    return await sync_to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; a missing account (`None`) costs the same work and is False."""
    try:
        matches = await sync_to_thread(_hasher.verify, password_hash or _unknown_user_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return matches and password_hash is not None

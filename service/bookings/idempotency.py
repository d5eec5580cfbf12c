"""`Idempotency-Key` for `POST /bookings`: a retried request gets the booking its first attempt made.

Keys are per user. The first request's fingerprint is stored with the key; the same key with another body is a
client bug and answers 422. A transaction-scoped advisory lock on (user, key) makes concurrent retries wait for
the first one instead of racing it.
"""

from __future__ import annotations

import hashlib
import uuid

import msgspec
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.bookings.models import IdempotencyKey
from service.errors import InvalidRequest

MAX_KEY_LENGTH = 255


def fingerprint(body: msgspec.Struct) -> str:
    return hashlib.sha256(msgspec.json.encode(body, order="sorted")).hexdigest()


def check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidRequest(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters.")
    return key


async def find_previous(session: AsyncSession, user_id: uuid.UUID, key: str, body_fingerprint: str) -> uuid.UUID | None:
    """The booking an earlier request with this key made, after waiting for any attempt still running."""
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(f"{user_id}:{key}", 0))))
    previous = await session.get(IdempotencyKey, (user_id, key))
    if previous is None:
        return None
    if previous.fingerprint != body_fingerprint:
        raise InvalidRequest("This Idempotency-Key was used with a different request body.", field="Idempotency-Key")
    return previous.booking_id


async def remember(
    session: AsyncSession, user_id: uuid.UUID, key: str, body_fingerprint: str, booking_id: uuid.UUID
) -> None:
    await session.execute(
        insert(IdempotencyKey).values(user_id=user_id, key=key, fingerprint=body_fingerprint, booking_id=booking_id)
    )

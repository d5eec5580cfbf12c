"""`Idempotency-Key` for `POST /bookings`: a retried request gets the booking its first attempt made.

Keys are per user. The first request's fingerprint is stored with the key; the same key with another body is a
client bug and answers 422. A transaction-scoped advisory lock on (user, key) makes concurrent retries wait for
the first one instead of racing it, so these statements run in the booking's transaction, on its asyncpg
connection (the booking hot path, `service.bookings.service`).
"""

from __future__ import annotations

import hashlib
import uuid

import asyncpg
import msgspec

from service.bookings.models import IdempotencyKey
from service.errors import InvalidRequest

MAX_KEY_LENGTH = 255

WAIT_FOR_OTHER_ATTEMPTS = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
FIND_KEY = f"SELECT fingerprint, booking_id FROM {IdempotencyKey.__tablename__} WHERE user_id = $1 AND key = $2"  # noqa: S608
REMEMBER_KEY = (
    f"INSERT INTO {IdempotencyKey.__tablename__} (user_id, key, fingerprint, booking_id) VALUES ($1, $2, $3, $4)"  # noqa: S608
)


def fingerprint(body: msgspec.Struct) -> str:
    return hashlib.sha256(msgspec.json.encode(body, order="sorted")).hexdigest()


def check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidRequest(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters.")
    return key


async def find_previous(
    db: asyncpg.Connection, user_id: uuid.UUID, key: str, body_fingerprint: str
) -> uuid.UUID | None:
    """The booking an earlier request with this key made, after waiting for any attempt still running (in the
    caller's transaction, which holds the wait's lock until it ends)."""
    await db.execute(WAIT_FOR_OTHER_ATTEMPTS, f"{user_id}:{key}")
    previous = await db.fetchrow(FIND_KEY, user_id, key)
    if previous is None:
        return None
    if previous["fingerprint"] != body_fingerprint:
        raise InvalidRequest("This Idempotency-Key was used with a different request body.", field="Idempotency-Key")
    booking_id: uuid.UUID = previous["booking_id"]
    return booking_id


async def remember(
    db: asyncpg.Connection, user_id: uuid.UUID, key: str, body_fingerprint: str, booking_id: uuid.UUID
) -> None:
    await db.execute(REMEMBER_KEY, user_id, key, body_fingerprint, booking_id)

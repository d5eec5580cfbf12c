"""The baseline of bench/booking.py: a minimal Litestar endpoint doing only the booking and outbox INSERTs.

No auth, no validation beyond decoding, no availability or pricing: the floor of what storing a booking costs
through Litestar, uvicorn and asyncpg on this machine.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from typing import Any

import asyncpg
from litestar import Litestar, Response, get, post

POOL: dict[str, asyncpg.Pool] = {}
GUEST_ID = uuid.UUID(os.environ.get("BENCH_GUEST_ID", str(uuid.UUID(int=0))))

BOOKING_INSERT = """
INSERT INTO bookings (id, property_id, guest_id, host_id, check_in, check_out, guests, status, currency,
    nightly_prices, accommodation_amount, discount_amount, cleaning_fee, service_fee, taxes, total_amount,
    refunded_amount, hold_expires_at)
SELECT $1, p.id, $2, p.host_id, $3, $4, 1, 'PENDING', p.currency, $5, $6, 0, p.cleaning_fee, 0, 0, $6, 0,
    now() + interval '15 minutes'
FROM properties p WHERE p.id = $7
RETURNING host_id
"""
OUTBOX_INSERT = """
INSERT INTO outbox_events (event_id, type, v, host_id, property_id, payload)
VALUES ($1, 'booking.created', 1, $2, $3, $4)
"""


async def open_pool() -> None:
    url = os.environ["DATABASE_URL"]
    POOL["db"] = await asyncpg.create_pool(url, min_size=10, max_size=20)


async def close_pool() -> None:
    await POOL["db"].close()


@get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@post("/api/v1/bookings")
async def create_booking(data: dict[str, Any]) -> Response[dict[str, Any]]:
    booking_id, property_id = uuid.uuid4(), uuid.UUID(data["property_id"])
    check_in, check_out = dt.date.fromisoformat(data["check_in"]), dt.date.fromisoformat(data["check_out"])
    nights = (check_out - check_in).days
    async with POOL["db"].acquire() as connection, connection.transaction():
        host_id = await connection.fetchval(
            BOOKING_INSERT, booking_id, GUEST_ID, check_in, check_out, [10_000] * nights, 10_000 * nights, property_id
        )
        await connection.execute(
            OUTBOX_INSERT, uuid.uuid4(), host_id, property_id, json.dumps({"booking_id": str(booking_id)})
        )
    return Response({"id": str(booking_id), "status": "PENDING"}, status_code=201)


app = Litestar(route_handlers=[live, create_booking], on_startup=[open_pool], on_shutdown=[close_pool])

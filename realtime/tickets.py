"""Single-use WebSocket tickets, so no long-lived bearer token travels in a URL (URLs end up in logs).

A host trades their JWT for a random ticket (`POST /api/v1/ws/tickets`); the WebSocket handshake presents it in
the query string. Redis keeps it for a few seconds (`SET NX EX`) and `GETDEL` consumes it atomically, so two
connections can never both use one ticket, even on different API processes.
"""

from __future__ import annotations

import secrets
import uuid

from redis.asyncio import Redis

from service.settings import Settings

TICKET_BYTES = 24


def ticket_key(settings: Settings, ticket: str) -> str:
    return f"{settings.redis_prefix}:ws:ticket:{ticket}"


async def issue_ticket(redis: Redis, settings: Settings, host_id: uuid.UUID) -> str:
    """A fresh ticket naming the host; NX guards against the (astronomically unlikely) reuse of a live one."""
    while True:
        ticket = secrets.token_urlsafe(TICKET_BYTES)
        if await redis.set(ticket_key(settings, ticket), str(host_id), ex=settings.ws_ticket_ttl_seconds, nx=True):
            return ticket


async def redeem_ticket(redis: Redis, settings: Settings, ticket: str) -> uuid.UUID | None:
    """The host the ticket was issued to, once; None for an unknown, expired or already used ticket."""
    value = await redis.getdel(ticket_key(settings, ticket))
    if value is None:
        return None
    return uuid.UUID(value.decode() if isinstance(value, bytes) else str(value))

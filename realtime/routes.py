"""`POST /api/v1/ws/tickets` and the live metrics WebSocket `/ws/metrics` (protocol in docs/realtime.md)."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, WebSocket, post, websocket
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect
from litestar.security.jwt import Token
from redis.asyncio import Redis

from realtime.connection import CLOSE_INTERNAL_ERROR, MetricsConnection
from realtime.hub import Hub
from realtime.messages import PropertyIds, Window
from realtime.telemetry import OPEN_SOCKETS, close_socket
from realtime.tickets import issue_ticket, redeem_ticket
from service.auth.guards import host_only
from service.auth.tokens import CurrentUser
from service.errors import NotFound, Problem
from service.settings import Settings
from service.stays import check_date_window

log = logging.getLogger(__name__)

AuthRequest = Request[CurrentUser, Token, State]

CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
MAX_CLOSE_REASON_BYTES = 123  # RFC 6455: a close frame's payload is at most 125 bytes, 2 of them the code


class TicketOut(msgspec.Struct):
    ticket: str
    expires_in: int


class Handshake(msgspec.Struct, forbid_unknown_fields=True):
    """The WebSocket's query string, converted from text by msgspec."""

    ticket: str
    start: dt.date = msgspec.field(name="from")
    end: dt.date = msgspec.field(name="to")
    property_id: PropertyIds = msgspec.field(default_factory=list)
    since: Annotated[int, msgspec.Meta(ge=0)] | None = None


class TicketController(Controller):
    path = "/ws"
    tags = ["live metrics"]

    @post("/tickets", guards=[host_only], summary="A single-use ticket for opening /ws/metrics (valid for seconds)")
    async def ticket(
        self, request: AuthRequest, redis: NamedDependency[Redis], settings: NamedDependency[Settings]
    ) -> TicketOut:
        ticket = await issue_ticket(redis, settings, request.user.id)
        return TicketOut(ticket=ticket, expires_in=settings.ws_ticket_ttl_seconds)


def _handshake(socket: WebSocket[Any, Any, Any]) -> Handshake:
    query = socket.query_params
    raw: dict[str, Any] = {key: query.get(key) for key in query if key != "property_id"}
    if "property_id" in query:
        raw["property_id"] = query.getall("property_id")
    handshake = msgspec.convert(raw, Handshake, strict=False)
    check_date_window(handshake.start, handshake.end)
    return handshake


def _close_reason(text: str) -> str:
    return text.encode()[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore")


@websocket("/ws/metrics")
async def metrics_socket(
    socket: WebSocket[Any, Any, Any],
    hub: NamedDependency[Hub],
    redis: NamedDependency[Redis],
    settings: NamedDependency[Settings],
) -> None:
    """The host's live metrics. Accepted before any refusal, so the client sees the close code and reason."""
    await socket.accept()
    with OPEN_SOCKETS.track_inprogress():
        try:
            await _open_and_serve(socket, hub, redis, settings)
        except (WebSocketDisconnect, OSError):
            return  # the client left
        except Exception:
            # Left to Litestar, the socket would close with 4500 and, with no logging config, nothing logged.
            log.exception("metrics socket failed before its snapshot")
            with contextlib.suppress(Exception):
                await close_socket(socket, CLOSE_INTERNAL_ERROR, "server error")


async def _open_and_serve(socket: WebSocket[Any, Any, Any], hub: Hub, redis: Redis, settings: Settings) -> None:
    ticket = socket.query_params.get("ticket")
    host_id = await redeem_ticket(redis, settings, ticket) if ticket else None
    if host_id is None:
        await close_socket(socket, CLOSE_UNAUTHORIZED, "missing, expired, used or unknown ticket")
        return
    try:
        handshake = _handshake(socket)
    except (msgspec.ValidationError, Problem) as exc:
        await close_socket(socket, CLOSE_BAD_REQUEST, _close_reason(str(getattr(exc, "detail", exc))))
        return
    window = Window(handshake.start, handshake.end, handshake.property_id)
    connection = MetricsConnection(socket, hub, redis, settings, host_id, window)
    try:
        try:
            await connection.start(handshake.since)
        except NotFound:
            await close_socket(socket, CLOSE_FORBIDDEN, "a property in the window is not yours")
            return
        await connection.serve()
    finally:
        connection.stop()

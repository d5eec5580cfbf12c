"""What an operator sees of the live metrics sockets at `GET /metrics` (Prometheus): how many are open in this
process, and how many the server closed, by close code. A stalled client is the case that needs it: it may never
read its 4408 close frame, so only the server can say it gave up on it."""

from __future__ import annotations

from typing import Any

from litestar import WebSocket
from prometheus_client import Counter, Gauge

OPEN_SOCKETS = Gauge("staypulse_ws_metrics_sockets", "Live metrics WebSockets open in this process")
SERVER_CLOSES = Counter(
    "staypulse_ws_metrics_server_closes", "Live metrics WebSockets the server closed, by close code", ["code"]
)


async def close_socket(socket: WebSocket[Any, Any, Any], code: int, reason: str) -> None:
    """Close with `code`, counted; the count comes first, since a stalled client's close may never go out."""
    SERVER_CLOSES.labels(code=str(code)).inc()
    await socket.close(code, reason)

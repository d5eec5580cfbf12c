"""Headers every response carries, error responses included: the request id and the security headers.

This runs as Litestar's `before_send` hook, the outermost layer, because errors raised outside route handlers
(an invalid token, an unknown path) are answered there and never pass through our middleware. The API answers
JSON only, so browsers are told not to sniff types, frame it or send referrers, and API responses forbid loading
anything; the OpenAPI viewer under `/schema` is a page of its own and keeps its defaults. The dashboard page
(`/dashboard`) may load its own script, styles and images and connect to its own origin (fetch and the
WebSocket: CSP 3 lets `'self'` match ws/wss of the same host), nothing else: no inline script, no other origin,
no form submission. HSTS is sent in production, where TLS ends in front of the service.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

from realtime.page import DASHBOARD_PATH
from service.logging import REQUEST_ID_HEADER, request_id_for

BASE_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
LOCKED_DOWN_CSP = "default-src 'none'; frame-ancestors 'none'"
DASHBOARD_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"


def response_headers_hook(*, production: bool) -> Callable[[Message, Scope], Awaitable[None]]:
    async def stamp(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = MutableScopeHeaders.from_message(message)
        headers[REQUEST_ID_HEADER] = request_id_for(scope)
        for name, value in BASE_HEADERS.items():
            headers[name] = value
        path = scope["path"]
        if path == DASHBOARD_PATH or path.startswith(DASHBOARD_PATH + "/"):
            headers["content-security-policy"] = DASHBOARD_CSP
        elif not path.startswith("/schema"):
            headers["content-security-policy"] = LOCKED_DOWN_CSP
        if production:
            headers["strict-transport-security"] = HSTS

    return stamp

"""Headers every response carries, error responses included: the request id and the security headers.

This runs as Litestar's `before_send` hook, the outermost layer, because errors raised outside route handlers
(an invalid token, an unknown path) are answered there and never pass through our middleware. The API answers
JSON only, so browsers are told not to sniff types, frame it or send referrers, and API responses forbid loading
anything; the OpenAPI viewer under `/schema` is a page of its own and keeps its defaults. HSTS is sent in
production, where TLS ends in front of the service.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

from service.logging import REQUEST_ID_HEADER, request_id_for

BASE_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
LOCKED_DOWN_CSP = "default-src 'none'; frame-ancestors 'none'"
HSTS = "max-age=31536000; includeSubDomains"


def response_headers_hook(*, production: bool) -> Callable[[Message, Scope], Awaitable[None]]:
    async def stamp(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = MutableScopeHeaders.from_message(message)
        headers[REQUEST_ID_HEADER] = request_id_for(scope)
        for name, value in BASE_HEADERS.items():
            headers[name] = value
        if not scope["path"].startswith("/schema"):
            headers["content-security-policy"] = LOCKED_DOWN_CSP
        if production:
            headers["strict-transport-security"] = HSTS

    return stamp

"""Where the tests' e-mail and SMS arrive: an aiosmtpd handler, and a tiny ASGI app for the SMS provider's API."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

from tests.live_server import serving

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Mailbox:
    """aiosmtpd handler: keeps every message it accepts."""

    url: str = ""
    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # the name aiosmtpd calls
        self.messages.append(message_from_bytes(envelope.original_content))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]


@dataclass
class SmsInbox:
    """The SMS provider's side: each accepted `{to, body}` with a valid bearer token."""

    token: str
    url: str = ""
    received: list[dict[str, str]] = field(default_factory=list)

    def to(self, number: str) -> list[str]:
        return [m["body"] for m in self.received if m["to"] == number]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = dict(scope["headers"])
        authorised = headers.get(b"authorization") == f"Bearer {self.token}".encode()
        status = 201 if authorised else 401
        if authorised:
            self.received.append(json.loads(body))
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b""})


@contextmanager
def sms_provider(token: str) -> Iterator[SmsInbox]:
    """Serve an `SmsInbox` with uvicorn on a loopback port, in a thread."""
    inbox = SmsInbox(token)
    with serving(inbox, lifespan="off") as url:
        inbox.url = f"{url}/messages"
        yield inbox

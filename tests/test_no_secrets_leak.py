"""No secret ever leaves the service: a whole story (sign-up, login, listing, booking, payment by webhook,
cancellation with refund) is run while every log record and every response is kept, then searched for the
password, its hash, the tokens and the configured secrets."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from pythonjsonlogger.json import JsonFormatter

from service.demo.card_payment import pay
from service.logging import RequestIdFilter
from service.settings import Settings
from tests.api import PASSWORD, Client, book, create_property, days_ahead, register
from tests.api import login as log_in
from tests.db import execute
from tests.payments import checkout, deliver, event


class Recorder(logging.Handler):
    """Every record, formatted as production formats it (JSON with all extra fields)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.addFilter(RequestIdFilter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    handler, root = Recorder(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_no_secret_in_any_response_or_log_line(client: Client, settings: Settings, recorder: Recorder) -> None:
    responses: list[httpx.Response] = []

    async def keep(response: httpx.Response) -> None:
        await response.aread()
        responses.append(response)

    client.event_hooks["response"].append(keep)
    try:
        host_user = await register(client, roles=["guest", "host"])
        host = await log_in(client, host_user["email"])
        prop = await create_property(client, host)
        guest_user = await register(client)
        guest = await log_in(client, guest_user["email"])
        booking = (await book(client, guest, prop, days_ahead(20), 2)).json()
        intent = await pay(settings, (await checkout(client, guest, booking["id"]))["payment_intent_id"])
        await deliver(client, settings, event("payment_intent.succeeded", intent))
        await client.post(f"/api/v1/bookings/{booking['id']}/cancel", headers=host)
        await client.post("/api/v1/auth/login", json={"email": guest_user["email"], "password": "wrong " + PASSWORD})
    finally:
        client.event_hooks["response"].remove(keep)

    [(password_hash,)] = await execute(settings, "SELECT password_hash FROM users WHERE id = :id", id=guest_user["id"])
    tokens = [host["Authorization"].removeprefix("Bearer "), guest["Authorization"].removeprefix("Bearer ")]
    secrets = {
        "password": PASSWORD,
        "password hash": password_hash,
        "argon2 hash prefix": "$argon2",
        "JWT secret": settings.jwt_secret,
        "Stripe API key": settings.stripe_api_key,
        "Stripe webhook secret": settings.stripe_webhook_secret,
    }
    assert recorder.lines, "the story should have logged something"
    for name, secret in secrets.items():
        assert not [line for line in recorder.lines if secret in line], f"{name} in a log line"
        for response in responses:
            assert secret not in response.text, f"{name} in {response.request.method} {response.request.url}"
            assert secret not in str(response.headers), f"{name} in the headers of {response.request.url}"
    for token in tokens:
        assert not [line for line in recorder.lines if token in line], "an access token in a log line"

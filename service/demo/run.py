"""What `staypulse demo` adds to `serve`: localstripe as the Stripe to talk to, the service's Stripe settings
pointed at it (with a webhook secret made for this run), and, beside the API and the jobs, the demo's history and
traffic (service.demo.history, service.demo.traffic) talking HTTP to the service's own port."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import secrets
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import httpx

from service.demo.history import HOST_EMAIL, PASSWORD, seed_demo
from service.demo.localstripe import register_webhook, running_localstripe
from service.demo.traffic import ACTION_INTERVAL_S, Summary, Traffic, drive, say_line, wait_until_ready
from service.settings import DEV_STRIPE_API_KEY, DEV_STRIPE_PUBLISHABLE_KEY, Settings, SettingsError

WEBHOOK_PATH = "/api/v1/webhooks/stripe"
WEBHOOK_NAME = "staypulse-demo"
# Each demo action makes several requests, Stripe calls and (unsent, logged) e-mails; at INFO their log lines
# would bury the demo's own lines. Warnings and errors still show.
CHATTY_LOGGERS = ("staypulse.access", "httpx", "stripe", "service.notifications.senders")

# A task run beside the API until the event is set (service.cli).
Beside = Callable[[asyncio.Event], Coroutine[Any, Any, object]]


def base_url_for(host: str, port: int) -> str:
    """Where this machine reaches a server listening on `host:port` (any-address binds answer on loopback)."""
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - recognising the any-address, not binding to it
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextmanager
def demo_stack(settings: Settings, host: str, port: int) -> Iterator[tuple[Settings, Beside]]:
    """localstripe running with our webhook registered; yields the settings to serve with and the demo task."""
    if settings.is_production:
        raise SettingsError("`staypulse demo` makes up bookings and payments; it does not run in production")
    base_url = base_url_for(host, port)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
    with running_localstripe() as stripe_url:
        demo_settings = dataclasses.replace(
            settings,
            stripe_api_base=stripe_url,
            stripe_api_key=DEV_STRIPE_API_KEY,
            stripe_publishable_key=DEV_STRIPE_PUBLISHABLE_KEY,
            stripe_webhook_secret=f"whsec_{secrets.token_hex(24)}",
        )
        register_webhook(stripe_url, WEBHOOK_NAME, base_url + WEBHOOK_PATH, demo_settings.stripe_webhook_secret)
        yield demo_settings, partial(run_demo, demo_settings, base_url)


async def run_demo(
    settings: Settings,
    base_url: str,
    stop: asyncio.Event,
    *,
    say: Callable[[str], None] = say_line,
    steps: int | None = None,
    interval_s: float = ACTION_INTERVAL_S,
    seed: int | None = None,
) -> Summary:
    """Seed the demo (once per database), wait for the API, say how to watch, then drive traffic until `stop`."""
    seeded = await seed_demo(settings)
    if seeded is None:
        say(f"demo  {HOST_EMAIL} exists already: carrying on with its properties and bookings")
    else:
        say(f"demo  created {HOST_EMAIL} with {seeded.properties} properties and {seeded.past_stays} past stays")
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        traffic = Traffic(http, settings, stop, random.Random(seed), say)  # noqa: S311 - made-up traffic
        if not (await wait_until_ready(http, stop) and await traffic.sign_in()):
            return traffic.summary
        say(f"demo  open {base_url}/dashboard and sign in as {HOST_EMAIL} with the password {PASSWORD}")
        say("demo  bookings, payments and cancellations follow, one a second; Ctrl-C stops everything")
        return await drive(traffic, steps, interval_s)

"""The demo's live traffic: the demo guests search, book, pay and cancel through the HTTP API, one action about
every second, and each action is reported in one line.

Everything goes the way a real client's requests go: `GET /properties` to find a free stay, `POST /bookings`,
`POST /bookings/{id}/checkout`, the guest's card paid on Stripe (localstripe) with the client's SDK calls, the
webhook that Stripe (localstripe) then posts and signs, and `POST /bookings/{id}/cancel` with its refund. The
driver never writes to the database itself. Waiting is always on the `stop` event with a timeout, so Ctrl-C
ends it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import stripe

from service.demo.card_payment import PaymentNotSucceeded, pay
from service.demo.history import CITIES, GUEST_EMAILS, HOST_EMAIL, PASSWORD, TIMEZONE
from service.settings import Settings

ACTION_INTERVAL_S = 0.7  # plus the action itself: about one line a second, easy to follow on the dashboard
READY_TIMEOUT_S = 60.0
CONFIRMATION_TIMEOUT_S = 15.0  # localstripe posts its webhook one second after the payment
POLL_S = 0.2
LOGIN_RETRY_S = 60  # when a 429 does not say when the login budget resets
BOOK_AHEAD_DAYS = (1, 90)
NIGHTS = (2, 5)
# One round: three stays booked and paid, one confirmed booking cancelled, one hold left to expire.
ROUND = ("book", "pay", "book", "pay", "cancel", "book", "pay", "hold")
HOST_CANCELS_SHARE = 0.3  # of cancellations; the rest are the guest's


class DemoStepFailed(RuntimeError):
    """The API answered something the demo did not expect; the line says what, and the demo goes on."""


@dataclass
class Account:
    email: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Booked:
    id: str
    guest: Account
    label: str  # "Alfama rooftop flat, 2026-12-01 -> 12-04"
    total: int
    currency: str


@dataclass
class Summary:
    """What the driver did, for whoever ran it for a number of steps."""

    booked: list[str] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def money(amount: int, currency: str) -> str:
    return f"{currency} {amount // 100}.{amount % 100:02d}"


def say_line(line: str) -> None:
    print(f"{dt.datetime.now().astimezone():%H:%M:%S} {line}", flush=True)


async def stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Wait up to `seconds`; answers whether `stop` was set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


class Traffic:
    """The demo guests and host, signed in over HTTP, and the bookings this run made."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        settings: Settings,
        stop: asyncio.Event,
        rng: random.Random,
        say: Callable[[str], None],
    ) -> None:
        self.http = http
        self.say = say
        self.settings = settings
        self.stop = stop
        self.rng = rng
        self.host = Account(HOST_EMAIL)
        self.guests = [Account(email) for email in GUEST_EMAILS]
        self.host_id = ""
        self.unpaid: Booked | None = None
        self.confirmed: list[Booked] = []
        self.summary = Summary()

    async def sign_in(self) -> bool:
        """Log the host and the guests in; False when stopped meanwhile."""
        for account in (self.host, *self.guests):
            if not await self._log_in(account):
                return False
        self.host_id = (await self._call(self.host, "GET", "/api/v1/users/me"))["id"]
        return True

    async def act(self, action: str) -> str:
        if action in ("book", "hold"):
            return await self.book(leave_unpaid=action == "hold")
        if action == "pay":
            return await self.pay()
        return await self.cancel()

    async def book(self, *, leave_unpaid: bool) -> str:
        """A guest searches a city for a random stay and holds one of the demo host's free properties."""
        guest = self.rng.choice(self.guests)
        city = self.rng.choice(CITIES)
        today = dt.datetime.now(ZoneInfo(TIMEZONE)).date()
        check_in = today + dt.timedelta(days=self.rng.randint(*BOOK_AHEAD_DAYS))
        check_out = check_in + dt.timedelta(days=self.rng.randint(*NIGHTS))
        party = self.rng.randint(1, 2)
        stay = {"check_in": check_in.isoformat(), "check_out": check_out.isoformat()}
        found = await self._call(
            guest, "GET", "/api/v1/properties", params={"city": city, "guests": party, "limit": 100, **stay}
        )
        free = [item["property"] for item in found["items"] if item["property"]["host_id"] == self.host_id]
        dates = f"{check_in} -> {check_out:%m-%d}"
        if not free:
            return f"search  {_name(guest)}: nothing free in {city}, {dates}"
        prop = self.rng.choice(free)
        response = await self._send(
            guest, "POST", "/api/v1/bookings", json={"property_id": prop["id"], "guests": party, **stay}
        )
        if response.status_code == 409:
            return f"book    {_name(guest)}: {prop['title']}, {dates} was just taken (409)"
        booking = _expect(response, 201)
        price = booking["price"]
        booked = Booked(booking["id"], guest, f"{prop['title']}, {dates}", price["total"], price["currency"])
        self.summary.booked.append(booked.id)
        self.unpaid = None if leave_unpaid else booked
        hold = self.settings.booking_hold_seconds // 60
        after = f"left unpaid, the hold ends in {hold} min" if leave_unpaid else "held for payment"
        return (
            f"book    {_name(guest)}: {booked.label} ({city}), {money(booked.total, booked.currency)}: PENDING, {after}"
        )

    async def pay(self) -> str:
        """The last booking's guest checks out and pays by card; Stripe's webhook confirms the booking."""
        booked, self.unpaid = self.unpaid, None
        if booked is None:
            return "pay     nothing to pay (the last search found nothing free)"
        intent = await self._call(booked.guest, "POST", f"/api/v1/bookings/{booked.id}/checkout")
        await pay(self.settings, intent["payment_intent_id"])
        status = await self._status_after_webhook(booked)
        if status == "CONFIRMED":
            self.confirmed.append(booked)
            self.summary.confirmed.append(booked.id)
        paid = f"{_name(booked.guest)}: paid {money(booked.total, booked.currency)} for {booked.label}"
        if status == "PENDING":
            return f"pay     {paid} ({intent['payment_intent_id']}); no webhook from Stripe yet: PENDING"
        return f"pay     {paid} ({intent['payment_intent_id']}), after Stripe's webhook: {status}"

    async def cancel(self) -> str:
        """A guest (or now and then the host) cancels one of the stays confirmed in this run; the refund follows
        the property's policy (a host refunds in full)."""
        if not self.confirmed:
            return "cancel  nothing confirmed yet to cancel"
        booked = self.confirmed.pop(self.rng.randrange(len(self.confirmed)))
        by = self.host if self.rng.random() < HOST_CANCELS_SHARE else booked.guest
        body = await self._call(by, "POST", f"/api/v1/bookings/{booked.id}/cancel")
        self.summary.cancelled.append(booked.id)
        refund = body.get("refund")
        refunded = f", refund {money(refund['amount'], booked.currency)} {refund['status']}" if refund else ""
        who = "the host" if body["booking"]["cancelled_by"] == "host" else _name(booked.guest)
        return f"cancel  {who} cancelled {booked.label}: {body['booking']['status']}{refunded}"

    async def _status_after_webhook(self, booked: Booked) -> str:
        """Poll the booking until it leaves PENDING (the webhook arrived) or the wait runs out."""
        deadline = time.monotonic() + CONFIRMATION_TIMEOUT_S
        while True:
            status: str = (await self._call(booked.guest, "GET", f"/api/v1/bookings/{booked.id}"))["status"]
            if status != "PENDING" or time.monotonic() > deadline or await stopped_within(self.stop, POLL_S):
                return status

    async def _log_in(self, account: Account) -> bool:
        """Log in; past the per-address login budget (a demo restarted within a minute spends it twice), wait for
        the window the 429 names to reset, then try again. False when stopped while waiting."""
        while True:
            response = await self.http.post("/api/v1/auth/login", json={"email": account.email, "password": PASSWORD})
            if response.status_code != 429:
                break
            reset = response.headers.get("RateLimit-Reset", "")
            wait_s = int(reset) if reset.isdigit() else LOGIN_RETRY_S
            self.say(f"login   {_name(account)}: the login rate limit is spent; trying again in {wait_s} s")
            if await stopped_within(self.stop, wait_s):
                return False
        token = _expect(response, 200)["access_token"]
        account.headers = {"Authorization": f"Bearer {token}"}
        return True

    async def _send(self, account: Account, method: str, path: str, **request: Any) -> httpx.Response:
        """One request as `account`; an expired token (the demo may run longer than a token lives) is renewed."""
        response = await self.http.request(method, path, headers=account.headers, **request)
        if response.status_code == 401 and await self._log_in(account):
            response = await self.http.request(method, path, headers=account.headers, **request)
        return response

    async def _call(self, account: Account, method: str, path: str, **request: Any) -> Any:
        return _expect(await self._send(account, method, path, **request), 200, 201)


def _name(account: Account) -> str:
    return account.email.split("@", 1)[0]


def _expect(response: httpx.Response, *statuses: int) -> Any:
    if response.status_code not in statuses:
        detail = response.text[:300]
        raise DemoStepFailed(
            f"{response.request.method} {response.request.url.path} answered {response.status_code}: {detail}"
        )
    return response.json()


async def wait_until_ready(http: httpx.AsyncClient, stop: asyncio.Event) -> bool:
    """Poll `/health/ready` until it answers 200; False when stopped first."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        with contextlib.suppress(httpx.TransportError):
            if (await http.get("/health/ready")).status_code == 200:
                return True
        if time.monotonic() > deadline:
            raise DemoStepFailed(f"{http.base_url} was not ready within {READY_TIMEOUT_S:.0f} s")
        if await stopped_within(stop, POLL_S):
            return False


async def drive(traffic: Traffic, steps: int | None = None, interval_s: float = ACTION_INTERVAL_S) -> Summary:
    """Act in rounds of ROUND until `stop` is set (or for `steps` actions), saying one line per action.

    A failed action (an unexpected answer, Stripe or the server unreachable) is reported and the next one tried,
    unless `stop` is set meanwhile: the server going away is how a Ctrl-C looks from here.
    """
    for action in itertools.islice(itertools.cycle(ROUND), steps):
        try:
            traffic.say(await traffic.act(action))
        except (DemoStepFailed, httpx.HTTPError, stripe.StripeError, PaymentNotSucceeded) as exc:
            if await stopped_within(traffic.stop, POLL_S):
                break
            traffic.summary.failed.append(f"{action}: {exc}")
            traffic.say(f"{action:<7} failed: {exc}")
        if await stopped_within(traffic.stop, interval_s):
            break
    return traffic.summary

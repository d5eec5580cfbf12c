"""`staypulse demo`, checked as a newcomer would: the printed host signs in and has properties and history, the
driver's bookings, payments and cancellations land through the real API and Stripe (localstripe, which posts its
own signed webhooks), the metrics show them once the pipeline drained and agree with a recompute; and the
command itself starts, acts, and stops on Ctrl-C or SIGTERM leaving nothing running."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psutil
import pytest

from ingest.recompute import verify
from service.demo.history import CITIES, HISTORY_DAYS, HOST_EMAIL, PASSWORD, PROPERTIES, TIMEZONE
from service.demo.localstripe import register_webhook
from service.demo.run import WEBHOOK_PATH, run_demo
from service.demo.traffic import ROUND
from service.settings import Settings
from tests.api import Client, login
from tests.cli_process import Service, processes_using
from tests.conftest import Stack
from tests.live_server import live_server
from tests.pipeline import pipeline_for

ACTIONS_TIMEOUT_S = 60.0
# Each demo run logs six accounts in; two runs within a minute would otherwise wait for the login budget to reset.
LOGINS_PER_MINUTE = {"LOGIN_RATE_LIMIT_PER_MINUTE": "100"}


@contextmanager
def posting_webhooks(localstripe_url: str, base_url: str, secret: str) -> Iterator[None]:
    """localstripe posts its payment events to this server while the block runs, and to nobody afterwards."""
    name = f"demo-test-{uuid.uuid4().hex[:8]}"
    register_webhook(localstripe_url, name, base_url + WEBHOOK_PATH, secret)
    try:
        yield
    finally:
        register_webhook(localstripe_url, name, base_url + WEBHOOK_PATH, secret, events=())


async def host_bookings(client: Client, host: dict[str, str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        params: dict[str, str | int] = {"as": "host", "limit": 100, "offset": len(found)}
        page = (await client.get("/api/v1/bookings", params=params, headers=host)).json()
        found += page["items"]
        if not page["has_more"]:
            return found


def nights_inside(booking: dict[str, Any], start: dt.date, end: dt.date) -> int:
    first = max(dt.date.fromisoformat(booking["check_in"]), start)
    last = min(dt.date.fromisoformat(booking["check_out"]), end)
    return max((last - first).days, 0)


async def metrics(client: Client, host: dict[str, str], start: dt.date, end: dt.date) -> dict[str, Any]:
    response = await client.get(
        "/api/v1/hosts/me/metrics", params={"from": start.isoformat(), "to": end.isoformat()}, headers=host
    )
    assert response.status_code == 200, response.text
    total: dict[str, Any] = response.json()["total"]
    return total


async def test_the_demo_host_sees_history_and_live_bookings_counted(own_stack: Stack, localstripe_url: str) -> None:
    settings: Settings = dataclasses.replace(own_stack.settings, stripe_webhook_secret=f"whsec_{uuid.uuid4().hex}")
    lines: list[str] = []
    with live_server(settings) as url, posting_webhooks(localstripe_url, url, settings.stripe_webhook_secret):
        summary = await run_demo(
            settings, url, asyncio.Event(), say=lines.append, steps=len(ROUND), interval_s=0, seed=1
        )

    assert summary.failed == []
    assert any(f"sign in as {HOST_EMAIL} with the password {PASSWORD}" in line for line in lines)
    assert len([line for line in lines if not line.startswith("demo")]) == len(ROUND)  # one line per action
    client = own_stack.client
    host = await login(client, HOST_EMAIL, PASSWORD)
    properties = (await client.get("/api/v1/hosts/me/properties", headers=host)).json()["items"]
    assert len(properties) == len(PROPERTIES)
    assert {prop["city"] for prop in properties} == set(CITIES)

    # A round books and pays three stays, cancels one of them and leaves a fourth hold unpaid.
    assert (len(summary.booked), len(summary.confirmed), len(summary.cancelled)) == (4, 3, 1)
    today = dt.datetime.now(ZoneInfo(TIMEZONE)).date()
    statuses = {}
    for booking_id in summary.booked:
        booking = (await client.get(f"/api/v1/bookings/{booking_id}", headers=host)).json()
        assert dt.date.fromisoformat(booking["check_in"]) > today
        statuses[booking_id] = booking["status"]
    assert sorted(statuses.values()) == ["CANCELLED", "CONFIRMED", "CONFIRMED", "PENDING"]
    assert {statuses[booking_id] for booking_id in summary.cancelled} == {"CANCELLED"}

    async with pipeline_for(settings) as pipeline:
        await pipeline.drain()
    bookings = await host_bookings(client, host)
    start, end = today - dt.timedelta(days=HISTORY_DAYS), today + dt.timedelta(days=120)
    window = await metrics(client, host, start, end)
    booked = [b for b in bookings if b["status"] in ("CONFIRMED", "COMPLETED")]
    assert window["booked_nights"] == sum(nights_inside(b, start, end) for b in booked) > 0
    assert window["gross_earnings"] > window["net_earnings"] > 0
    assert window["bookings_cancelled"] >= 1
    past = await metrics(client, host, start, today)
    # The history was listed 60 days ago, so its nights were available: occupancy is a share, never above 1.
    assert 0 < past["booked_nights"] <= past["available_nights"]
    assert 0 < past["occupancy_rate"] <= 1
    assert (await metrics(client, host, today, today + dt.timedelta(days=1)))["gross_earnings"] > 0  # paid today

    result = await verify(settings)
    assert (result.differences, result.unpublished) == ([], 0)


def wait_for_actions(service: Service, *prefixes: str) -> str:
    """The command's output once it has printed a line of each kind (after the time stamp)."""
    deadline = time.monotonic() + ACTIONS_TIMEOUT_S
    while time.monotonic() < deadline:
        service.assert_running()
        output = service.stdout()
        kinds = {line.split(" ")[1] for line in output.splitlines() if " " in line}
        if set(prefixes) <= kinds:
            return output
        time.sleep(0.2)
    pytest.fail(f"no {prefixes} lines within {ACTIONS_TIMEOUT_S} s:\n{service.stdout()}")


def stop_and_check_nothing_left(service: Service, data_dir: Path, signum: signal.Signals) -> None:
    children = psutil.Process(service.process.pid).children(recursive=True)
    assert any("localstripe" in " ".join(child.cmdline()) for child in children)
    assert processes_using(data_dir), "embedded Postgres and Redis should run from the data folder"
    assert service.stop(signum) == 0, service.stderr()[-3000:]
    assert processes_using(data_dir) == []
    _, alive = psutil.wait_procs(children, timeout=10)
    assert alive == []


def test_demo_command_runs_everything_and_stops_on_ctrl_c_or_sigterm(data_dir: Path) -> None:
    first = Service(data_dir, "demo", **LOGINS_PER_MINUTE)
    first.wait_until_ready()
    output = wait_for_actions(first, "book", "pay")
    assert f"/dashboard and sign in as {HOST_EMAIL} with the password {PASSWORD}" in output
    assert "after Stripe's webhook: CONFIRMED" in output
    stop_and_check_nothing_left(first, data_dir, signal.SIGINT)

    again = Service(data_dir, "demo", **LOGINS_PER_MINUTE)
    again.wait_until_ready()
    assert f"{HOST_EMAIL} exists already" in wait_for_actions(again, "book")
    stop_and_check_nothing_left(again, data_dir, signal.SIGTERM)

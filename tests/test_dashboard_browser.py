"""The host dashboard in a real headless Chromium: Debian's `chromium` driven by playwright (never `playwright
install`), the app served by uvicorn on loopback, Postgres and Redis real, the pipeline driven round by round.

Skipped, with the reason printed, where /usr/bin/chromium is missing; `.ci/run` installs it so CI always runs
these. Screenshots go to `$STAYPULSE_TEST_ARTIFACTS` (default `test-artifacts/` in the repository).
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect

from reporting.earnings import BOOKING_COLUMNS
from reporting.generation import generate_reports_once
from service.settings import Settings
from tests.api import PASSWORD, Client, create_property, days_ahead, login, register
from tests.db import worker_sessions
from tests.live_server import live_server
from tests.pipeline import pipeline_for
from tests.test_realtime import confirmed_booking

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(os.environ.get("STAYPULSE_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))
WAIT_MS = 15_000  # for a condition on the page; the reconnect back-off alone can take 8 s

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="browser tests need Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
)
expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(scope="module")
def live_url(settings: Settings) -> Iterator[str]:
    with live_server(settings) as url:
        yield url


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh tab (own storage) in UTC and US English; it must end without a script error or a CSP refusal."""
    context = await browser.new_context(locale="en-US", timezone_id="UTC", viewport={"width": 1200, "height": 900})
    tab = await context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))

    def console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            problems.append(message.text)

    tab.on("console", console)
    try:
        yield tab
    finally:
        await context.close()
    assert problems == []


async def host_with_property(client: Client, settings: Settings, title: str) -> tuple[str, dict[str, Any]]:
    """A host account (its e-mail) with one EUR property, listed in the metrics; the password is tests.api.PASSWORD."""
    user = await register(client, roles=["guest", "host"])
    prop = await create_property(client, await login(client, user["email"]), title=title)
    async with pipeline_for(settings) as pipeline:
        await pipeline.drain()
    return user["email"], prop


async def sign_in(page: Page, base_url: str, email: str, password: str = PASSWORD) -> None:
    await page.goto(f"{base_url}/dashboard")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def show_window(page: Page, start: dt.date, end: dt.date) -> None:
    """Pick a window and wait for its snapshot."""
    await page.get_by_label("From").fill(start.isoformat())
    await page.get_by_label("To (exclusive)").fill(end.isoformat())
    await page.get_by_role("button", name="Show").click()
    await expect(page.locator("#last-update")).to_contain_text(f"Snapshot of {start} to {end}")


async def test_a_wrong_password_shows_the_problem_detail(
    client: Client, settings: Settings, page: Page, live_url: str
) -> None:
    email, _ = await host_with_property(client, settings, "Wrong password flat")
    await sign_in(page, live_url, email, "not the password")
    await expect(page.locator("#sign-in-error")).to_have_text("E-mail or password is wrong.")
    await expect(page.locator("#connection")).to_have_text("signed out")
    await expect(page.locator("#dashboard")).to_be_hidden()


async def test_a_host_sees_a_confirmed_booking_arrive_live(
    client: Client, settings: Settings, page: Page, live_url: str
) -> None:
    title = f"Harbour loft {uuid.uuid4().hex[:6]}"
    email, prop = await host_with_property(client, settings, title)
    await sign_in(page, live_url, email)
    await expect(page.locator("#connection")).to_have_text("live")
    today = dt.datetime.now(dt.UTC).date()
    await expect(page.get_by_label("From")).to_have_value(today.replace(day=1).isoformat())  # the current month

    start, end = days_ahead(10), days_ahead(20)
    await show_window(page, start, end)
    row = page.locator(f"#properties tr[data-property-id='{prop['id']}']")
    await expect(page.locator("#available-nights")).to_have_text("10")
    await expect(page.locator("#booked-nights")).to_have_text("0")
    await expect(page.locator("#gross-earnings")).to_have_text("€0.00")
    await expect(row.locator("td").first).to_have_text(title)
    await expect(page.locator("#chart rect.available")).to_have_count(10)

    await confirmed_booking(client, settings, prop, 12)  # 2 nights at 100.00 + 30.00 cleaning, 3 % host fee

    await expect(page.locator("#booked-nights")).to_have_text("2")
    await expect(page.locator("#occupancy-rate")).to_have_text("20.0 %")
    await expect(page.locator("#adr")).to_have_text("€100.00")
    await expect(page.locator("#revpar")).to_have_text("€20.00")
    await expect(page.locator("#last-update")).to_contain_text("booking.confirmed")
    await expect(row.locator("td")).to_have_text([title, "20.0 %", "2", "10", "€100.00", "€20.00", "€0.00", "€0.00"])
    # The window does not hold the confirmation date (today), so no earnings in it; a window that does shows them.
    await show_window(page, days_ahead(-1), end)
    await expect(page.locator("#gross-earnings")).to_have_text("€230.00")
    await expect(page.locator("#net-earnings")).to_have_text("€223.10")
    await expect(page.locator("#chart polyline.gross")).to_have_count(1)
    await expect(page.locator("#connection")).to_have_text("live")
    await expect(page.locator("#currency-note")).to_be_hidden()
    await page.screenshot(path=ARTIFACTS / "dashboard-live.png", full_page=True)  # makes the folder
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator("#connection")).to_have_text("signed out")
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()


async def test_after_a_server_restart_the_page_resumes_with_the_missed_update(
    client: Client, settings: Settings, page: Page
) -> None:
    email, prop = await host_with_property(client, settings, "Restart cottage")
    with live_server(settings) as url:
        await sign_in(page, url, email)
        await show_window(page, days_ahead(10), days_ahead(20))
        await expect(page.locator("#connection")).to_have_text("live")
    await expect(page.locator("#connection")).to_have_text("reconnecting")
    await confirmed_booking(client, settings, prop, 12)  # while no server answers the page
    with live_server(settings, port=urlsplit(url).port or 0):
        # `since=<last seq>` brings the missed updates as update frames, not a snapshot.
        await expect(page.locator("#last-update")).to_contain_text("booking.confirmed")
        await expect(page.locator("#last-update")).to_contain_text("Update")
        await expect(page.locator("#booked-nights")).to_have_text("2")
        await expect(page.locator("#connection")).to_have_text("live")


async def test_an_earnings_report_is_requested_and_downloaded(
    client: Client, settings: Settings, page: Page, live_url: str
) -> None:
    email, prop = await host_with_property(client, settings, "Report house")
    booking_id = await confirmed_booking(client, settings, prop, 12)
    await sign_in(page, live_url, email)
    await show_window(page, days_ahead(-1), days_ahead(30))
    await expect(page.locator("#gross-earnings")).to_have_text("€230.00")
    await page.get_by_label("Format").select_option("csv")
    await page.get_by_role("button", name="Request report for this window").click()
    await expect(page.locator("#report-status")).to_have_text("Report queued...")
    async with page.expect_download(timeout=WAIT_MS) as download_info, worker_sessions(settings) as sessions:
        assert await generate_reports_once(sessions, settings) >= 1  # what the worker does
    download = await download_info.value
    assert download.suggested_filename == f"staypulse-earnings-{days_ahead(-1)}-{days_ahead(30)}.csv"
    content = await asyncio.to_thread(Path(await download.path()).read_text)
    rows = list(csv.DictReader(io.StringIO(content)))
    assert [row["booking_id"] for row in rows] == [booking_id]
    assert list(rows[0]) == list(BOOKING_COLUMNS)
    await expect(page.locator("#report-status")).to_have_text("Report ready: 1 booking(s).")
    await expect(page.locator("#report-link")).to_have_text(f"Download {download.suggested_filename}")


async def test_mixed_currencies_show_money_per_property_in_its_own_currency(
    client: Client, settings: Settings, page: Page, live_url: str
) -> None:
    email, euros = await host_with_property(client, settings, "Euro flat")
    headers = await login(client, email)
    yen = await create_property(
        client, headers, title="Yen house", country="JP", timezone="Asia/Tokyo", currency="JPY", nightly_price=15_000
    )
    await confirmed_booking(client, settings, yen, 12)  # 2 nights at ¥15,000 + ¥3,000 cleaning
    await sign_in(page, live_url, email)
    await show_window(page, days_ahead(-1), days_ahead(30))
    await expect(page.locator("#currency-note")).to_be_visible()
    await expect(page.locator("#gross-earnings")).to_have_text("-")
    await expect(page.locator("#booked-nights")).to_have_text("2")
    await expect(page.locator(f"#properties tr[data-property-id='{yen['id']}'] td").nth(6)).to_have_text("¥33,000")
    await expect(page.locator(f"#properties tr[data-property-id='{euros['id']}'] td").nth(6)).to_have_text("€0.00")
    await expect(page.locator("#chart polyline.gross")).to_have_count(0)

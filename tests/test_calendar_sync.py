"""A host keeps calendars in step with other channels: they import ours from a secret .ics link, and we import
theirs (served here over real HTTP on loopback) into blocks, now on request and later by the worker."""

from __future__ import annotations

import datetime as dt
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from icalendar import Calendar
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.bookings.models import Booking
from service.db import create_engine, session_factory
from service.outbox import OutboxEvent
from service.properties.calendar_sync_job import sync_due_feeds
from service.settings import Settings
from tests.api import Client, assert_problem, create_property, days_ahead, signed_up, signed_up_host
from tests.loopback import LoopbackHTTP

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(scope="module")
async def sessions(settings: Settings) -> AsyncIterator[Sessions]:
    """Direct database access, for the worker's round and for rows no API creates yet (bookings)."""
    engine = create_engine(settings, pool_size=2)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


def vevent(uid: str, start: dt.date, end: dt.date | None = None, *extra: str) -> str:
    lines = ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20250101T000000Z", f"DTSTART;VALUE=DATE:{start:%Y%m%d}"]
    if end is not None:
        lines.append(f"DTEND;VALUE=DATE:{end:%Y%m%d}")
    return "\r\n".join([*lines, *extra, "SUMMARY:Not available", "END:VEVENT"])


def ics(*events: str) -> bytes:
    head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Other channel//Calendar//EN\r\n"
    return (head + "".join(event + "\r\n" for event in events) + "END:VCALENDAR\r\n").encode()


def day(offset: int) -> dt.date:
    return days_ahead(30 + offset)


class Host:
    """A host with one property, driving its calendar sync through the API."""

    def __init__(self, client: Client, headers: dict[str, str], prop: dict[str, Any]) -> None:
        self.client, self.headers, self.prop = client, headers, prop
        self.base = f"/api/v1/properties/{prop['id']}"

    @classmethod
    async def sign_up(cls, client: Client, **fields: Any) -> Host:
        headers = await signed_up_host(client)
        return cls(client, headers, await create_property(client, headers, **fields))

    async def add_import(self, url: str) -> dict[str, Any]:
        response = await self.client.post(f"{self.base}/calendar-imports", json={"url": url}, headers=self.headers)
        assert response.status_code == 201, response.text
        feed: dict[str, Any] = response.json()
        return feed

    async def sync(self, feed: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.post(f"{self.base}/calendar-imports/{feed['id']}/sync", headers=self.headers)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def imports(self) -> list[dict[str, Any]]:
        response = await self.client.get(f"{self.base}/calendar-imports", headers=self.headers)
        assert response.status_code == 200, response.text
        feeds: list[dict[str, Any]] = response.json()
        return feeds

    async def blocked(self, first: int = -2, last: int = 20) -> list[int]:
        """The day offsets (see `day`) that availability shows as blocked."""
        window = {"from": day(first).isoformat(), "to": day(last).isoformat()}
        response = await self.client.get(f"{self.base}/availability", params=window)
        assert response.status_code == 200, response.text
        return [first + i for i, d in enumerate(response.json()["days"]) if d["reason"] == "blocked"]

    async def blocks(self, first: int = -2) -> list[dict[str, Any]]:
        window = {"from": day(first).isoformat(), "to": day(400).isoformat()}
        response = await self.client.get(f"{self.base}/blocks", params=window, headers=self.headers)
        assert response.status_code == 200, response.text
        blocks: list[dict[str, Any]] = response.json()
        return blocks

    async def export_url(self) -> str:
        response = await self.client.get(f"{self.base}/calendar-export", headers=self.headers)
        assert response.status_code == 200, response.text
        url: str = response.json()["url"]
        return url


async def test_an_imported_calendar_blocks_its_dates_and_a_resync_changes_nothing(
    client: Client, loopback_http: LoopbackHTTP
) -> None:
    host = await Host.sign_up(client)
    path = loopback_http.new_path()
    url = loopback_http.publish(path, ics(vevent("a@other", day(0), day(3)), vevent("b@other", day(5), day(6))))
    feed = await host.add_import(url)
    assert feed["url"] == url
    assert feed["last_synced_at"] is None
    assert feed["last_error"] is None

    assert await host.sync(feed) == {"added": 2, "removed": 0, "unchanged": 0, "error": None}
    assert await host.blocked() == [0, 1, 2, 5]
    assert {(b["source"], b["reason"]) for b in await host.blocks()} == {("ical", "Imported: Not available")}
    [listed] = await host.imports()
    assert listed["last_synced_at"] is not None
    assert listed["last_error"] is None

    assert await host.sync(feed) == {"added": 0, "removed": 0, "unchanged": 2, "error": None}
    assert await host.blocked() == [0, 1, 2, 5]


async def test_days_reannounced_under_new_uids_change_no_block(client: Client, loopback_http: LoopbackHTTP) -> None:
    host = await Host.sign_up(client)
    path = loopback_http.new_path()
    feed = await host.add_import(loopback_http.publish(path, ics(vevent("monday@other", day(0), day(4)))))
    assert (await host.sync(feed))["added"] == 1
    before = await host.blocks()

    # The next day the channel lists the same nights again, split and overlapping, under fresh UIDs.
    loopback_http.publish(
        path,
        ics(vevent("tuesday-1@other", day(0), day(2)), vevent("tuesday-2@other", day(1), day(4))),
    )
    assert await host.sync(feed) == {"added": 0, "removed": 0, "unchanged": 1, "error": None}
    assert await host.blocks() == before


async def test_the_blocks_follow_events_that_vanish_or_move(
    client: Client, loopback_http: LoopbackHTTP, sessions: Sessions
) -> None:
    host = await Host.sign_up(client)
    path = loopback_http.new_path()
    stay, other = vevent("stay@other", day(0), day(2)), vevent("other@other", day(6), day(8))
    feed = await host.add_import(loopback_http.publish(path, ics(stay, other)))
    await host.sync(feed)
    assert await host.blocked() == [0, 1, 6, 7]

    loopback_http.publish(path, ics(other))
    assert await host.sync(feed) == {"added": 0, "removed": 1, "unchanged": 1, "error": None}
    assert await host.blocked() == [6, 7]

    loopback_http.publish(path, ics(vevent("other@other", day(10), day(13))))
    assert await host.sync(feed) == {"added": 1, "removed": 1, "unchanged": 0, "error": None}
    assert await host.blocked() == [10, 11, 12]

    async with sessions() as session:
        events = await session.execute(
            select(OutboxEvent.type, OutboxEvent.payload)
            .where(OutboxEvent.property_id == uuid.UUID(host.prop["id"]), OutboxEvent.type.like("availability.%"))
            .order_by(OutboxEvent.id)
        )
        changes = [(kind, payload["start"], payload["source"]) for kind, payload in events]
    assert changes == [
        ("availability.blocked", day(0).isoformat(), "ical"),
        ("availability.blocked", day(6).isoformat(), "ical"),
        ("availability.unblocked", day(0).isoformat(), "ical"),
        ("availability.unblocked", day(6).isoformat(), "ical"),
        ("availability.blocked", day(10).isoformat(), "ical"),
    ]


async def test_cancelled_past_timed_and_adjacent_events_are_read_as_a_calendar_app_would(
    client: Client, loopback_http: LoopbackHTTP
) -> None:
    host = await Host.sign_up(client, timezone="Europe/Lisbon")
    next_day = day(8) + dt.timedelta(days=1)
    feed = await host.add_import(
        loopback_http.publish(
            loopback_http.new_path(),
            ics(
                vevent("cancelled@other", day(0), day(2), "STATUS:CANCELLED"),
                vevent("past@other", days_ahead(-40), days_ahead(-35)),
                vevent("no-end@other", day(3)),
                vevent("touching-1@other", day(5), day(6)),
                vevent("touching-2@other", day(6), day(7)),
                "\r\n".join(
                    [
                        "BEGIN:VEVENT",
                        "UID:timed@other",
                        f"DTSTART:{day(8):%Y%m%d}T140000Z",
                        f"DTEND:{next_day:%Y%m%d}T100000Z",
                        "END:VEVENT",
                    ]
                ),
            ),
        )
    )
    # Adjacent events make one block; a stay ending mid-morning still takes that day.
    assert await host.sync(feed) == {"added": 3, "removed": 0, "unchanged": 0, "error": None}
    assert await host.blocked() == [3, 5, 6, 8, 9]
    assert [(b["start"], b["end"]) for b in await host.blocks(first=-75)] == [
        (day(3).isoformat(), day(4).isoformat()),
        (day(5).isoformat(), day(7).isoformat()),
        (day(8).isoformat(), day(10).isoformat()),
    ]


async def test_a_feed_that_fails_keeps_every_block_and_says_why(client: Client, loopback_http: LoopbackHTTP) -> None:
    host = await Host.sign_up(client)
    path = loopback_http.new_path()
    good = ics(vevent("a@other", day(0), day(2)))
    feed = await host.add_import(loopback_http.publish(path, good))
    await host.sync(feed)

    failures = [
        (b"<html><body>Please log in</body></html>", 200, "not an iCalendar"),
        (b"", 200, "not an iCalendar"),
        (ics(vevent("broken@other", day(0), None).replace(f"{day(0):%Y%m%d}", "2099x0101")), 200, "broken@other"),
        (good, 503, "HTTP 503"),
    ]
    for body, status, why in failures:
        loopback_http.publish(path, body, status)
        result = await host.sync(feed)
        assert why in result["error"], result
        assert (result["added"], result["removed"]) == (0, 0)
        assert await host.blocked() == [0, 1]
        [listed] = await host.imports()
        assert why in listed["last_error"]

    loopback_http.publish(path, good)
    assert await host.sync(feed) == {"added": 0, "removed": 0, "unchanged": 1, "error": None}
    assert (await host.imports())[0]["last_error"] is None


async def test_an_unreachable_feed_is_reported(client: Client) -> None:
    host = await Host.sign_up(client)
    with socket.socket() as probe:  # a port nothing listens on once the probe closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    feed = await host.add_import(f"http://127.0.0.1:{port}/calendar.ics")
    result = await host.sync(feed)
    assert result["error"].startswith("The calendar could not be fetched")
    assert await host.blocked() == []


async def test_bad_import_urls_are_refused_and_nothing_is_added(client: Client, loopback_http: LoopbackHTTP) -> None:
    host = await Host.sign_up(client)
    url = f"{host.base}/calendar-imports"
    for bad in [
        "ftp://example.com/cal.ics",
        "file:///etc/passwd",
        "not a url",
        "https://",
        "",
        "http://x/\u0000",
        "http://example.com/my calendar.ics",
        "http://x/" + "a" * 2000,
    ]:
        body = assert_problem(await client.post(url, json={"url": bad}, headers=host.headers), 400)
        assert [e["field"] for e in body["errors"]] == ["url"], bad
    assert_problem(await client.post(url, json={"address": "http://x"}, headers=host.headers), 400)
    assert await host.imports() == []

    feed_url = loopback_http.publish(loopback_http.new_path(), ics())
    await host.add_import(feed_url)
    assert_problem(await client.post(url, json={"url": feed_url}, headers=host.headers), 409)
    assert len(await host.imports()) == 1


async def test_only_the_owner_manages_calendar_sync(client: Client, loopback_http: LoopbackHTTP) -> None:
    owner = await Host.sign_up(client)
    feed = await owner.add_import(loopback_http.publish(loopback_http.new_path(), ics()))
    stranger = await signed_up_host(client)
    _, guest = await signed_up(client, roles=["guest"])
    calls = [
        ("GET", "/calendar-export", None),
        ("POST", "/calendar-export/rotate", None),
        ("GET", "/calendar-imports", None),
        ("POST", "/calendar-imports", {"url": "https://example.com/cal.ics"}),
        ("POST", f"/calendar-imports/{feed['id']}/sync", None),
        ("DELETE", f"/calendar-imports/{feed['id']}", None),
    ]
    for headers in (stranger, guest):
        for method, path, body in calls:
            response = await client.request(method, owner.base + path, json=body, headers=headers)
            assert_problem(response, 403)
        for method, path, body in calls:
            assert_problem(await client.request(method, owner.base + path, json=body), 401)
    assert [f["id"] for f in await owner.imports()] == [feed["id"]]

    elsewhere = Host(client, owner.headers, await create_property(client, owner.headers))
    missing = f"{owner.base}/calendar-imports/{uuid.uuid4()}"
    assert_problem(await client.delete(missing, headers=owner.headers), 404)
    assert_problem(await client.post(f"{missing}/sync", headers=owner.headers), 404)
    other_property = f"{elsewhere.base}/calendar-imports/{feed['id']}"
    assert_problem(await client.delete(other_property, headers=owner.headers), 404)


async def test_removing_an_import_reopens_its_dates(client: Client, loopback_http: LoopbackHTTP) -> None:
    host = await Host.sign_up(client)
    feed = await host.add_import(
        loopback_http.publish(loopback_http.new_path(), ics(vevent("a@other", day(0), day(2))))
    )
    await host.sync(feed)
    assert await host.blocked() == [0, 1]

    url = f"{host.base}/calendar-imports/{feed['id']}"
    assert (await client.delete(url, headers=host.headers)).status_code == 204
    assert await host.blocked() == []
    assert await host.imports() == []
    assert_problem(await client.delete(url, headers=host.headers), 404)


async def test_the_worker_round_syncs_due_feeds_and_leaves_the_others(
    client: Client, loopback_http: LoopbackHTTP, sessions: Sessions, settings: Settings
) -> None:
    host = await Host.sign_up(client)
    due_path, fresh_path = loopback_http.new_path(), loopback_http.new_path()
    due = await host.add_import(loopback_http.publish(due_path, ics(vevent("a@one", day(0), day(1)))))
    fresh = await host.add_import(loopback_http.publish(fresh_path, ics(vevent("a@two", day(4), day(5)))))
    await host.sync(fresh)  # synced just now, so not due again for an interval
    fresh_url = loopback_http.origin + fresh_path
    loopback_http.publish(fresh_path, ics(vevent("a@two", day(4), day(5)), vevent("b@two", day(8), day(9))))

    assert await sync_due_feeds(sessions, settings, limit=1000) >= 1
    assert await host.blocked() == [0, 4]
    assert loopback_http.fetched(fresh_url) == 1
    feeds = {f["id"]: f for f in await host.imports()}
    assert feeds[due["id"]]["last_synced_at"] is not None
    interval = dt.timedelta(seconds=settings.calendar_sync_interval_seconds)
    synced_at = dt.datetime.fromisoformat(feeds[due["id"]]["last_synced_at"])
    assert dt.datetime.fromisoformat(feeds[due["id"]]["next_sync_at"]) == synced_at + interval
    # A second round right away finds nothing of this host's due.
    await sync_due_feeds(sessions, settings, limit=1000)
    assert loopback_http.fetched(loopback_http.origin + due_path) == 1
    assert loopback_http.fetched(fresh_url) == 1


async def test_the_export_is_valid_icalendar_with_stable_uids_and_no_guest_data(
    client: Client, sessions: Sessions
) -> None:
    host = await Host.sign_up(client)
    guest, _ = await signed_up(client, roles=["guest"])
    for start, end in ((day(0), day(2)), (day(9), day(10))):
        body = {"start": start.isoformat(), "end": end.isoformat(), "reason": "painting"}
        assert (await client.post(f"{host.base}/blocks", json=body, headers=host.headers)).status_code == 201
    now = dt.datetime.now(dt.UTC)
    stays = [
        ("CONFIRMED", day(3), now),
        ("PENDING", day(5), now + dt.timedelta(minutes=10)),
        ("PENDING", day(7), now - dt.timedelta(minutes=1)),  # the hold ran out
        ("CANCELLED", day(11), now),
    ]
    async with sessions.begin() as session:
        for status, check_in, hold_expires_at in stays:
            session.add(booking(host.prop, guest["id"], status, check_in, hold_expires_at))

    url = await host.export_url()
    first, second = await client.get(url), await client.get(url)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "text/calendar; charset=utf-8"
    assert first.content == second.content
    assert b"\n" not in first.content.replace(b"\r\n", b"")
    assert guest["email"].encode() not in first.content
    assert guest["name"].encode() not in first.content

    calendar = Calendar.from_ical(first.content)
    assert (str(calendar["VERSION"]), str(calendar["CALSCALE"])) == ("2.0", "GREGORIAN")
    events = {(str(e["SUMMARY"]), e.start, e.end, str(e["UID"]).split("-")[0]) for e in calendar.events}
    assert events == {
        ("Blocked", day(0), day(2), "block"),
        ("Reserved", day(3), day(5), "booking"),
        ("Reserved", day(5), day(7), "booking"),
        ("Blocked", day(9), day(10), "block"),
    }
    assert all(type(e.start) is dt.date and "DTSTAMP" in e for e in calendar.events)
    assert b"DTSTART;VALUE=DATE:" in first.content


def booking(prop: dict[str, Any], guest_id: str, status: str, check_in: dt.date, hold: dt.datetime) -> Booking:
    """A two-night booking row; bookings get their own API on another branch."""
    return Booking(
        property_id=uuid.UUID(prop["id"]),
        guest_id=uuid.UUID(guest_id),
        host_id=uuid.UUID(prop["host_id"]),
        check_in=check_in,
        check_out=check_in + dt.timedelta(days=2),
        guests=2,
        status=status,
        currency="EUR",
        nightly_prices=[10_000, 10_000],
        accommodation_amount=20_000,
        discount_amount=0,
        cleaning_fee=3_000,
        service_fee=2_000,
        taxes=0,
        total_amount=25_000,
        hold_expires_at=hold,
    )


async def test_rotating_the_link_retires_the_old_one(client: Client) -> None:
    host = await Host.sign_up(client)
    old = await host.export_url()
    assert old.endswith(".ics")
    assert (await client.get(old)).status_code == 200

    response = await client.post(f"{host.base}/calendar-export/rotate", headers=host.headers)
    assert response.status_code == 200, response.text
    new = response.json()["url"]
    assert new != old
    assert await host.export_url() == new
    assert_problem(await client.get(old), 404)
    assert (await client.get(new)).status_code == 200
    assert_problem(await client.get(new.removesuffix(".ics")), 404)
    assert_problem(await client.get("/api/v1/calendars/not-a-token.ics"), 404)


async def test_a_calendar_exported_here_imports_elsewhere_as_the_same_ranges(
    client: Client, loopback_http: LoopbackHTTP
) -> None:
    source = await Host.sign_up(client)
    for start, end in ((day(0), day(3)), (day(5), day(6)), (day(12), day(20))):
        body = {"start": start.isoformat(), "end": end.isoformat()}
        assert (await client.post(f"{source.base}/blocks", json=body, headers=source.headers)).status_code == 201
    exported = await client.get(await source.export_url())
    assert exported.status_code == 200

    target = await Host.sign_up(client)
    feed = await target.add_import(loopback_http.publish(loopback_http.new_path(), exported.content))
    assert (await target.sync(feed))["added"] == 3
    assert [(b["start"], b["end"]) for b in await target.blocks()] == [
        (b["start"], b["end"]) for b in await source.blocks()
    ]
    assert await target.blocked(last=25) == await source.blocked(last=25)

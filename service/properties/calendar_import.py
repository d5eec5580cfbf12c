"""Importing another channel's iCal calendar into blocks, so a night booked elsewhere cannot be booked here.

The feed is reduced to a set of date ranges before anything is compared: overlapping or adjacent events merge,
and UIDs play no part in the comparison. Channels that re-announce the same blocked days under new UIDs every
day (several do) therefore change nothing, and the unique index on (feed_id, during) holds by construction.
A sync then deletes the feed's blocks whose range vanished, inserts the new ranges and leaves equal ones alone,
writing an outbox event for each change in the same transaction. A feed that cannot be fetched or read changes
no block: an outage elsewhere must never reopen dates that are really taken.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
from icalendar import Calendar, Event
from sqlalchemy import delete, func, insert, select
from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.ext.asyncio import AsyncSession

from service.errors import Conflict, InvalidField, NotFound
from service.properties.availability import record_block_change
from service.properties.models import AvailabilityBlock, CalendarFeed, Property
from service.settings import Settings
from service.stays import local_today

FETCH_TIMEOUT_S = 10.0
MAX_FEED_BYTES = 2 * 1024 * 1024
MAX_FEEDS_PER_PROPERTY = 20
MAX_REASON_LENGTH = 200
USER_AGENT = "StayPulse calendar sync"
ONE_DAY = dt.timedelta(days=1)


class FeedError(Exception):
    """The feed could not be fetched or read; the message is shown to the host as `last_error`."""


@dataclass(frozen=True)
class Stay:
    """Nights `[start, end)` a feed marks as taken, with the first event that contributed to them."""

    start: dt.date
    end: dt.date
    uid: str | None
    summary: str


@dataclass(frozen=True)
class SyncResult:
    added: int = 0
    removed: int = 0
    unchanged: int = 0
    error: str | None = None


def check_feed_url(url: str) -> str:
    """Only absolute http(s) URLs: other schemes (file:, ftp:) would let a host make the server read them."""
    url = url.strip()
    if any(char.isspace() or not char.isprintable() for char in url):
        raise InvalidField("url", "must not contain spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidField("url", "must be an absolute http:// or https:// URL")
    return url


async def add_feed(session: AsyncSession, prop: Property, url: str) -> CalendarFeed:
    """Register a feed, due for its first sync at once; the caller holds the property's row lock."""
    url = check_feed_url(url)
    urls = list(await session.scalars(select(CalendarFeed.url).where(CalendarFeed.property_id == prop.id)))
    if url in urls:
        raise Conflict("This property already imports that calendar.", field="url")
    if len(urls) >= MAX_FEEDS_PER_PROPERTY:
        raise Conflict(f"A property imports at most {MAX_FEEDS_PER_PROPERTY} calendars.")
    feed = CalendarFeed(property_id=prop.id, url=url, next_sync_at=func.now())
    session.add(feed)
    await session.flush()
    await session.refresh(feed)
    return feed


async def list_feeds(session: AsyncSession, prop: Property) -> list[CalendarFeed]:
    rows = await session.scalars(
        select(CalendarFeed).where(CalendarFeed.property_id == prop.id).order_by(CalendarFeed.created_at)
    )
    return list(rows)


async def get_feed(session: AsyncSession, prop: Property, feed_id: uuid.UUID) -> CalendarFeed:
    """One of the property's feeds, locked so that two syncs of it never interleave."""
    feed = await session.scalar(
        select(CalendarFeed).where(CalendarFeed.id == feed_id, CalendarFeed.property_id == prop.id).with_for_update()
    )
    if feed is None:
        raise NotFound(f"No imported calendar {feed_id} on this property.")
    return feed


async def remove_feed(session: AsyncSession, prop: Property, feed_id: uuid.UUID) -> None:
    """Stop importing and reopen the nights the feed blocked (each with its event, unlike a silent cascade)."""
    feed = await get_feed(session, prop, feed_id)
    removed = await session.execute(
        delete(AvailabilityBlock)
        .where(AvailabilityBlock.feed_id == feed.id)
        .returning(AvailabilityBlock.id, AvailabilityBlock.during)
    )
    for block_id, during in removed:
        await record_block_change(session, prop, "availability.unblocked", block_id, during, "ical")
    await session.delete(feed)
    await session.flush()


async def sync_feed(session: AsyncSession, prop: Property, feed: CalendarFeed, settings: Settings) -> SyncResult:
    """Fetch the feed and make its blocks match it; on failure record why and keep every block.

    The caller holds the feed's row lock, and commits.
    """
    try:
        stays = merge_stays(read_stays(await fetch_feed(feed.url), ZoneInfo(prop.timezone)))
    except FeedError as exc:
        result = SyncResult(error=str(exc))
    else:
        result = await apply_stays(session, prop, feed, stays)
    now = await session.scalar(select(func.now()))
    assert now is not None
    feed.last_synced_at = now
    feed.last_error = result.error
    feed.next_sync_at = now + dt.timedelta(seconds=settings.calendar_sync_interval_seconds)
    await session.flush()
    return result


async def fetch_feed(url: str) -> bytes:
    """The feed's body; refuses anything slower than FETCH_TIMEOUT_S in total or bigger than MAX_FEED_BYTES."""
    body = bytearray()
    try:
        async with (
            asyncio.timeout(FETCH_TIMEOUT_S),
            httpx.AsyncClient(
                timeout=FETCH_TIMEOUT_S,
                follow_redirects=True,
                max_redirects=5,
                headers={"User-Agent": USER_AGENT, "Accept": "text/calendar, */*;q=0.5"},
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise FeedError(f"The calendar answered HTTP {response.status_code}.")
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_FEED_BYTES:
                    raise FeedError(f"The calendar is larger than {MAX_FEED_BYTES // (1024 * 1024)} MB.")
    except TimeoutError:
        raise FeedError(f"The calendar did not answer within {FETCH_TIMEOUT_S:g} s.") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise FeedError(f"The calendar could not be fetched: {exc or type(exc).__name__}.") from None
    return bytes(body)


def read_stays(body: bytes, zone: ZoneInfo) -> list[Stay]:
    """Every VEVENT that takes nights, as local dates of the property; cancelled events take none.

    An event whose dates cannot be read fails the whole feed: skipping it could reopen nights it covered. The body
    is a stranger's text, so whatever the parser raises on it means "unreadable", never a crash.
    """
    try:
        calendar = Calendar.from_ical(body)
    except Exception as exc:
        raise FeedError(f"This is not an iCalendar file: {_first_line(exc)}") from None
    if not isinstance(calendar, Calendar):
        raise FeedError("This is not an iCalendar file: it does not start with BEGIN:VCALENDAR.")
    stays = []
    for event in calendar.events:
        if str(event.get("STATUS", "")).upper() == "CANCELLED":
            continue
        uid = str(event["UID"]) if "UID" in event else None
        try:
            start, end = _local_nights(event, zone)
        except Exception as exc:
            raise FeedError(
                f"Event {uid or '(without UID)'} has dates that cannot be read: {_first_line(exc)}"
            ) from None
        stays.append(Stay(start, end, uid, str(event.get("SUMMARY", "")).strip()))
    return stays


def _local_nights(event: Event, zone: ZoneInfo) -> tuple[dt.date, dt.date]:
    """All-day dates as they are; times become the property's local dates, the end rounded up so that a
    partly covered day counts as taken. Every event takes at least one night."""
    start, end = event.start, event.end
    if isinstance(start, dt.datetime):
        start = _local(start, zone).date()
    if isinstance(end, dt.datetime):
        local_end = _local(end, zone)
        end = local_end.date() + (ONE_DAY if local_end.time() != dt.time(0) else dt.timedelta(0))
    return start, max(end, start + ONE_DAY)


def _local(moment: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """A floating time (no zone) is read as the property's own wall clock."""
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)


def merge_stays(stays: list[Stay]) -> list[Stay]:
    """Overlapping or adjacent stays become one range, keeping the earliest event's UID and summary."""
    merged: list[Stay] = []
    for stay in sorted(stays, key=lambda s: (s.start, s.end)):
        if merged and stay.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = Stay(last.start, max(last.end, stay.end), last.uid, last.summary)
        else:
            merged.append(stay)
    return merged


async def apply_stays(session: AsyncSession, prop: Property, feed: CalendarFeed, stays: list[Stay]) -> SyncResult:
    """Make the feed's blocks that have not ended equal `stays`; ended ones stay as history."""
    today = local_today(prop.timezone)
    wanted = {(stay.start, stay.end): stay for stay in stays if stay.end > today}
    existing = await session.execute(
        select(AvailabilityBlock.id, AvailabilityBlock.during).where(
            AvailabilityBlock.feed_id == feed.id, func.upper(AvailabilityBlock.during) > today
        )
    )
    have = {(during.lower, during.upper): block_id for block_id, during in existing}
    vanished = [(block_id, key) for key, block_id in have.items() if key not in wanted]
    if vanished:
        await session.execute(delete(AvailabilityBlock).where(AvailabilityBlock.id.in_([b for b, _ in vanished])))
    for block_id, (start, end) in vanished:
        await record_block_change(
            session, prop, "availability.unblocked", block_id, Range(start, end, bounds="[)"), "ical"
        )
    new = [stay for key, stay in sorted(wanted.items()) if key not in have]
    for stay in new:
        during = Range(stay.start, stay.end, bounds="[)")
        block_id = await session.scalar(
            insert(AvailabilityBlock)
            .values(
                property_id=prop.id,
                during=during,
                reason=_reason(stay.summary),
                source="ical",
                feed_id=feed.id,
                ical_uid=stay.uid[:500] if stay.uid else None,
            )
            .returning(AvailabilityBlock.id)
        )
        assert block_id is not None
        await record_block_change(session, prop, "availability.blocked", block_id, during, "ical")
    return SyncResult(added=len(new), removed=len(vanished), unchanged=len(have) - len(vanished))


def _reason(summary: str) -> str:
    return f"Imported: {summary}"[:MAX_REASON_LENGTH] if summary else "Imported"


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__

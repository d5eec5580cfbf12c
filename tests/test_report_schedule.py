"""Scheduled statements with a controllable clock: due at 03:00 on the 1st in the host's zone, exactly once per
host and period across workers, made up after downtime, and stopped (with the reason shown) after failing."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reporting.generation import MAX_ATTEMPTS, generate_reports_once
from reporting.schedule import Schedule, due_runs, period_containing
from reporting.scheduler import schedule_reports_once
from service.app import redis_client
from service.db import create_engine, session_factory
from service.settings import Settings
from tests.api import Client, assert_problem, book, create_property, days_ahead, signed_up, signed_up_host
from tests.db import confirm, execute

HOST = uuid.uuid4()


def schedule(timezone: str, since: dt.datetime, frequency: str = "monthly") -> Schedule:
    return Schedule(HOST, frequency, "xlsx", timezone, since)


def test_monthly_statement_is_due_at_three_on_the_first_in_the_hosts_zone() -> None:
    since = dt.datetime(2026, 10, 15, tzinfo=dt.UTC)
    auckland, los_angeles = schedule("Pacific/Auckland", since), schedule("America/Los_Angeles", since)
    # 14:30 UTC on 30 November is 03:30 on 1 December in Auckland and 06:30 on 30 November in Los Angeles.
    now = dt.datetime(2026, 11, 30, 14, 30, tzinfo=dt.UTC)
    assert [run.period_key for run in due_runs([auckland], now)] == ["monthly:2026-10", "monthly:2026-11"]
    assert [run.period_key for run in due_runs([los_angeles], now)] == ["monthly:2026-10"]
    assert [run.period_key for run in due_runs([auckland], now - dt.timedelta(hours=1))] == ["monthly:2026-10"]
    november = due_runs([auckland], now)[-1].window
    assert (november.start, november.end) == (dt.date(2026, 11, 1), dt.date(2026, 12, 1))


def test_catch_up_is_bounded_and_weeks_run_monday_to_sunday() -> None:
    since = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    now = dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC)  # a Tuesday
    weekly = due_runs([schedule("UTC", since, "weekly")], now)
    assert [run.period_key for run in weekly] == ["weekly:2026-11-02", "weekly:2026-11-09", "weekly:2026-11-16"]
    assert weekly[-1].window.end == dt.date(2026, 11, 23)
    assert [run.period_key for run in due_runs([schedule("UTC", since)], now)] == [
        "monthly:2026-08",
        "monthly:2026-09",
        "monthly:2026-10",
    ]


def first_of_next_month_at(hour: int, minute: int, zone: str) -> dt.datetime:
    """A clock reading: the coming 1st of the month, at this local time in `zone`."""
    today = dt.datetime.now(ZoneInfo(zone)).date()
    first = period_containing("monthly", today).end
    return dt.datetime.combine(first, dt.time(hour, minute), tzinfo=ZoneInfo(zone)).astimezone(dt.UTC)


class Worker:
    """What one worker process holds: its own engine and Redis connection."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = create_engine(settings, pool_size=2)
        self.sessions: async_sessionmaker[AsyncSession] = session_factory(self.engine)
        self.redis: Redis = redis_client(settings)

    async def tick(self, now: dt.datetime) -> int | None:
        return await schedule_reports_once(self.sessions, self.redis, self.settings, now)

    async def close(self) -> None:
        await self.redis.aclose()
        await self.engine.dispose()


@pytest.fixture
async def workers(settings: Settings) -> AsyncIterator[tuple[Worker, Worker]]:
    pair = (Worker(settings), Worker(settings))
    yield pair
    for worker in pair:
        await worker.close()


async def statements(settings: Settings, host_id: str) -> list[tuple[str, str, dt.date, dt.date]]:
    rows = await execute(
        settings,
        "SELECT period_key, format, period_start, period_end FROM reports "
        "WHERE host_id = :host AND period_key IS NOT NULL ORDER BY period_key",
        host=host_id,
    )
    return [tuple(row) for row in rows]


async def host_with_property(client: Client, timezone: str) -> tuple[str, dict[str, str]]:
    user, headers = await signed_up(client, roles=["guest", "host"])
    await create_property(client, headers, timezone=timezone)
    return user["id"], headers


async def test_monthly_statement_runs_once_per_host_and_period_across_two_workers(
    client: Client, settings: Settings, workers: tuple[Worker, Worker]
) -> None:
    host_id, headers = await host_with_property(client, "Pacific/Auckland")
    schedules = (await client.get("/api/v1/reports/schedules", headers=headers)).json()["schedules"]
    assert [(s["frequency"], s["timezone"], s["default"]) for s in schedules] == [("monthly", "Pacific/Auckland", True)]
    first, second = workers
    await first.tick(first_of_next_month_at(2, 59, "Pacific/Auckland"))
    assert await statements(settings, host_id) == []

    due = first_of_next_month_at(3, 1, "Pacific/Auckland")
    await asyncio.gather(first.tick(due), second.tick(due), first.tick(due), second.tick(due))
    await second.tick(due + dt.timedelta(hours=5))
    found = await statements(settings, host_id)
    assert len(found) == 1
    key, fmt, start, end = found[0]
    assert fmt == "xlsx"
    assert start.day == 1
    assert end.day == 1
    assert 28 <= (end - start).days <= 31
    assert key == f"monthly:{start:%Y-%m}"
    assert end == due.astimezone(ZoneInfo("Pacific/Auckland")).date()


async def test_the_leader_lock_lets_one_worker_tick_at_a_time(
    settings: Settings, workers: tuple[Worker, Worker]
) -> None:
    first, second = workers
    lock = first.redis.lock(f"{settings.redis_prefix}:reports:scheduler-leader", timeout=30)
    assert await lock.acquire(blocking=False)
    try:
        assert await second.tick(dt.datetime.now(dt.UTC)) is None
    finally:
        await lock.release()
    assert await second.tick(dt.datetime.now(dt.UTC)) is not None


async def test_a_weekly_schedule_catches_up_after_downtime(
    client: Client, settings: Settings, workers: tuple[Worker, Worker]
) -> None:
    host_id, headers = await host_with_property(client, "Europe/Lisbon")
    body = {"schedules": [{"frequency": "weekly", "format": "csv", "timezone": "UTC"}]}
    response = await client.put("/api/v1/reports/schedules", json=body, headers=headers)
    assert response.status_code == 200, response.text
    frequencies = {s["frequency"]: s for s in response.json()["schedules"]}
    assert frequencies["weekly"]["enabled"]
    assert frequencies["weekly"]["next_run_at"]
    assert frequencies["monthly"]["default"]

    # The worker was down for 25 days: its first tick makes up the missed weeks (at most three).
    back = dt.datetime.combine(days_ahead(25), dt.time(12), tzinfo=dt.UTC)
    await workers[0].tick(back)
    weekly = [row for row in await statements(settings, host_id) if row[0].startswith("weekly:")]
    assert len(weekly) == 3
    assert all(
        fmt == "csv" and start.weekday() == 0 and end - start == dt.timedelta(7) for _, fmt, start, end in weekly
    )
    assert [start for _, _, start, _ in weekly] == sorted(start for _, _, start, _ in weekly)
    assert weekly[-1][3] <= back.date()
    await workers[1].tick(back)
    assert len([row for row in await statements(settings, host_id) if row[0].startswith("weekly:")]) == 3


async def test_a_statement_that_keeps_failing_stops_its_schedule_and_says_why(
    client: Client, settings: Settings, workers: tuple[Worker, Worker]
) -> None:
    host_id, headers = await host_with_property(client, "Europe/Lisbon")
    prop = (await client.get("/api/v1/hosts/me/properties", headers=headers)).json()["items"][0]
    _, guest = await signed_up(client)
    booking = (await book(client, guest, prop, days_ahead(3), 2)).json()
    await confirm(settings, booking["id"])
    weekly: dict[str, object] = {"frequency": "weekly", "format": "xlsx", "timezone": "UTC"}
    body = {"schedules": [weekly, {"frequency": "monthly", "enabled": False}]}
    assert (await client.put("/api/v1/reports/schedules", json=body, headers=headers)).status_code == 200
    await workers[0].tick(dt.datetime.combine(days_ahead(9), dt.time(12), tzinfo=dt.UTC))
    assert len(await statements(settings, host_id)) >= 1
    # A property row the report query cannot read (its zone is unknown to Postgres) makes every attempt fail.
    await execute(settings, "UPDATE properties SET timezone = 'Mars/Olympus' WHERE id = :id", id=prop["id"])
    try:
        for _ in range(MAX_ATTEMPTS):
            await generate_reports_once(workers[0].sessions, settings, batch=10_000)
    finally:
        await execute(settings, "UPDATE properties SET timezone = 'Europe/Lisbon' WHERE id = :id", id=prop["id"])
    reports = (await client.get("/api/v1/reports", headers=headers)).json()["items"]
    assert {(r["status"], r["attempts"]) for r in reports} == {("FAILED", MAX_ATTEMPTS)}
    assert all("Mars/Olympus" in r["error"] for r in reports)
    schedules = {
        s["frequency"]: s for s in (await client.get("/api/v1/reports/schedules", headers=headers)).json()["schedules"]
    }
    assert not schedules["weekly"]["enabled"]
    assert "failed attempts" in schedules["weekly"]["stopped_reason"]
    assert schedules["weekly"]["next_run_at"] is None
    told = await execute(
        settings,
        "SELECT subject FROM notifications WHERE kind = 'report.schedule_stopped' AND user_id = "
        "(SELECT host_id FROM properties WHERE id = :id)",
        id=prop["id"],
    )
    assert [subject for (subject,) in told] == ["Your weekly earnings statements are paused"]

    # Saving the schedule again starts it again.
    weekly["enabled"] = True
    restarted = (await client.put("/api/v1/reports/schedules", json=body, headers=headers)).json()["schedules"]
    assert [(s["frequency"], s["enabled"], s["stopped_reason"]) for s in restarted] == [
        ("monthly", False, None),
        ("weekly", True, None),
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"schedules": [{"frequency": "daily"}]},
        {"schedules": [{"frequency": "weekly", "format": "pdf"}]},
        {"schedules": [{"frequency": "weekly", "timezone": "Mars/Olympus"}]},
        {"schedules": [{"frequency": "weekly"}, {"frequency": "weekly"}]},
        {"schedules": [{"frequency": "weekly"}, {"frequency": "monthly"}, {"frequency": "weekly"}]},
        {"schedule": []},
    ],
)
async def test_bad_schedules_are_refused_and_change_nothing(client: Client, body: dict[str, object]) -> None:
    host = await signed_up_host(client)
    before = (await client.get("/api/v1/reports/schedules", headers=host)).json()
    assert_problem(await client.put("/api/v1/reports/schedules", json=body, headers=host), 400)
    assert (await client.get("/api/v1/reports/schedules", headers=host)).json() == before

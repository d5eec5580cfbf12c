"""When statements are due: a pure function of the schedules and "now", so tests drive it with any clock.

A period's statement runs at 03:00 in the schedule's time zone on the day after the period ends: the 1st of the
next month for monthly statements, Monday for weekly ones (weeks run Monday to Sunday). Every tick asks for all
periods due by now, back to `CATCH_UP_PERIODS` periods, so a worker that was down makes the missed statements up
when it starts; the unique key on (host, kind, period) turns the repeats into no-ops.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from zoneinfo import ZoneInfo

from reporting.definitions import Window

RUN_AT = dt.time(3, 0)
CATCH_UP_PERIODS = 3


@dataclasses.dataclass(frozen=True)
class Schedule:
    """One host's statement rule; `since` is when it began (no statement for a period that ended before it)."""

    host_id: uuid.UUID
    frequency: str
    format: str
    timezone: str
    since: dt.datetime


@dataclasses.dataclass(frozen=True)
class DueRun:
    host_id: uuid.UUID
    format: str
    window: Window
    period_key: str


def period_containing(frequency: str, day: dt.date) -> Window:
    if frequency == "weekly":
        monday = day - dt.timedelta(days=day.weekday())
        return Window(monday, monday + dt.timedelta(days=7))
    first = day.replace(day=1)
    return Window(first, (first + dt.timedelta(days=32)).replace(day=1))


def previous_period(frequency: str, window: Window) -> Window:
    return period_containing(frequency, window.start - dt.timedelta(days=1))


def period_key(frequency: str, window: Window) -> str:
    label = window.start.strftime("%Y-%m") if frequency == "monthly" else window.start.isoformat()
    return f"{frequency}:{label}"


def runs_at(window: Window, timezone: str) -> dt.datetime:
    """The aware UTC moment a period's statement is due."""
    local = dt.datetime.combine(window.end, RUN_AT, tzinfo=ZoneInfo(timezone))
    return local.astimezone(dt.UTC)


def due_runs(schedules: list[Schedule], now: dt.datetime) -> list[DueRun]:
    """Every statement due at `now`: the latest finished periods whose run time has come, oldest first."""
    due: list[DueRun] = []
    for schedule in schedules:
        zone = ZoneInfo(schedule.timezone)
        since = schedule.since.astimezone(zone).date()
        window = period_containing(schedule.frequency, now.astimezone(zone).date())
        found: list[DueRun] = []
        for _ in range(CATCH_UP_PERIODS + 1):
            if window.end <= since:
                break
            if runs_at(window, schedule.timezone) <= now:
                found.append(DueRun(schedule.host_id, schedule.format, window, period_key(schedule.frequency, window)))
                if len(found) == CATCH_UP_PERIODS:
                    break
            window = previous_period(schedule.frequency, window)
        due.extend(reversed(found))
    return due

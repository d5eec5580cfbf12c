"""A stay is the nights `[check_in, check_out)` in the property's local dates; the rules every stay must meet."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from service.errors import InvalidRequest

MAX_STAY_NIGHTS = 365
# asyncpg sends date.min and date.max to Postgres as -infinity and infinity, which no date arithmetic takes (a
# window ending 9999-12-31 failed with "timestamp out of range"); the calendar StayPulse accepts stops short of them.
FIRST_DATE = dt.date.min + dt.timedelta(days=1)
LAST_DATE = dt.date.max - dt.timedelta(days=1)


def local_today(timezone: str) -> dt.date:
    """Today where the property is: the date that decides what is in the past."""
    return dt.datetime.now(ZoneInfo(timezone)).date()


def check_in_calendar(start: dt.date, end: dt.date, start_field: str, end_field: str) -> None:
    """Refuse the two dates Postgres would receive as infinities (see FIRST_DATE)."""
    for day, field in ((start, start_field), (end, end_field)):
        if not FIRST_DATE <= day <= LAST_DATE:
            raise InvalidRequest(f"{field} must lie between {FIRST_DATE} and {LAST_DATE}.", field=field)


def check_stay_length(check_in: dt.date, check_out: dt.date) -> int:
    """Refuse empty, backwards or overlong stays (no property needed); answers the number of nights."""
    check_in_calendar(check_in, check_out, "check_in", "check_out")
    nights = (check_out - check_in).days
    if nights <= 0:
        raise InvalidRequest("check_out must be after check_in.", field="check_out")
    if nights > MAX_STAY_NIGHTS:
        raise InvalidRequest(f"A stay can last at most {MAX_STAY_NIGHTS} nights.", field="check_out")
    return nights


def check_stay_dates(check_in: dt.date, check_out: dt.date, timezone: str) -> int:
    """Refuse impossible stays with a 422 that says why; answers the number of nights."""
    nights = check_stay_length(check_in, check_out)
    today = local_today(timezone)
    if check_in < today:
        raise InvalidRequest(f"check_in is in the past (today is {today} where the property is).", field="check_in")
    return nights


def check_date_window(start: dt.date, end: dt.date, *, max_days: int = 731) -> None:
    """A `[from, to)` window for calendars and blocks: not empty, not absurdly long."""
    check_in_calendar(start, end, "from", "to")
    if end <= start:
        raise InvalidRequest("'to' must be after 'from'.", field="to")
    if (end - start).days > max_days:
        raise InvalidRequest(f"A window spans at most {max_days} days.", field="to")

"""A host's statement schedules: read them (with the default monthly statement) and set them.

Every host with a property gets a monthly XLSX statement in the zone of their first property unless they set
their own monthly schedule (or turn it off with `enabled: false`). A schedule the worker stopped after repeated
failures shows `enabled: false` and `stopped_reason`; saving it again with `enabled: true` starts it again.
"""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from reporting.export import checked_format
from reporting.models import ReportSchedule
from reporting.schedule import period_containing, runs_at
from reporting.schemas import ScheduleOut, SchedulesIn
from service.auth.tokens import CurrentUser
from service.errors import InvalidField
from service.properties.validation import check_reference_fields

DEFAULT_FORMAT = "xlsx"
DEFAULT_TIMEZONE = "UTC"


async def host_timezone(session: AsyncSession, host_id: uuid.UUID) -> str:
    """A host's time zone for statements: their first property's, or UTC before they have one."""
    zone: str | None = await session.scalar(
        text("SELECT timezone FROM properties WHERE host_id = :host ORDER BY created_at, id LIMIT 1"), {"host": host_id}
    )
    return zone or DEFAULT_TIMEZONE


def _schedule_out(row: ReportSchedule, *, default: bool, now: dt.datetime) -> ScheduleOut:
    next_run = None
    if row.enabled:
        current = period_containing(row.frequency, now.astimezone(ZoneInfo(row.timezone)).date())
        next_run = runs_at(current, row.timezone)
    return ScheduleOut(
        frequency=row.frequency,  # type: ignore[arg-type]  # the check constraint allows only these
        format=checked_format(row.format),
        timezone=row.timezone,
        enabled=row.enabled,
        default=default,
        stopped_reason=row.stopped_reason,
        next_run_at=next_run,
    )


async def effective_schedules(session: AsyncSession, user: CurrentUser) -> list[ScheduleOut]:
    """The host's schedules, with the default monthly statement when they have not set a monthly one."""
    now = dt.datetime.now(dt.UTC)
    rows = list(await session.scalars(select(ReportSchedule).where(ReportSchedule.host_id == user.id)))
    answer = [_schedule_out(row, default=False, now=now) for row in rows]
    if not any(row.frequency == "monthly" for row in rows):
        implicit = ReportSchedule(
            host_id=user.id,
            frequency="monthly",
            format=DEFAULT_FORMAT,
            timezone=await host_timezone(session, user.id),
            enabled=True,
        )
        answer.append(_schedule_out(implicit, default=True, now=now))
    return sorted(answer, key=lambda schedule: schedule.frequency)


async def replace_schedules(session: AsyncSession, user: CurrentUser, data: SchedulesIn) -> list[ScheduleOut]:
    """Sets the host's schedules (one per frequency); saving a stopped schedule enabled starts it again."""
    frequencies = [schedule.frequency for schedule in data.schedules]
    if len(set(frequencies)) != len(frequencies):
        raise InvalidField("schedules", "at most one schedule per frequency")
    for schedule in data.schedules:
        check_reference_fields(timezone=schedule.timezone, currency=None, country=None)
    default_zone = await host_timezone(session, user.id)
    await session.execute(delete(ReportSchedule).where(ReportSchedule.host_id == user.id))
    session.add_all(
        ReportSchedule(
            host_id=user.id,
            frequency=schedule.frequency,
            format=schedule.format,
            timezone=schedule.timezone or default_zone,
            enabled=schedule.enabled,
            stopped_reason=None,
        )
        for schedule in data.schedules
    )
    await session.flush()
    return await effective_schedules(session, user)

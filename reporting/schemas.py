"""Request and response bodies of the reports API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

import msgspec

Format = Literal["csv", "xlsx"]
Frequency = Literal["weekly", "monthly"]
ReportStatus = Literal["PENDING", "RUNNING", "DONE", "FAILED"]


class ReportRequest(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["earnings"]
    start: dt.date = msgspec.field(name="from")
    end: dt.date = msgspec.field(name="to")
    format: Format = "xlsx"


class ReportOut(msgspec.Struct):
    id: uuid.UUID
    kind: str
    format: Format
    start: dt.date = msgspec.field(name="from")
    end: dt.date = msgspec.field(name="to")
    status: ReportStatus = "PENDING"
    period: str | None = None
    attempts: int = 0
    row_count: int | None = None
    size_bytes: int | None = None
    error: str | None = None
    file_name: str = ""
    created_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None


class ReportPage(msgspec.Struct):
    items: list[ReportOut]
    limit: int
    offset: int
    has_more: bool


class ScheduleIn(msgspec.Struct, forbid_unknown_fields=True):
    frequency: Frequency
    format: Format = "xlsx"
    timezone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    enabled: bool = True


class SchedulesIn(msgspec.Struct, forbid_unknown_fields=True):
    schedules: Annotated[list[ScheduleIn], msgspec.Meta(max_length=2)]


class ScheduleOut(msgspec.Struct):
    frequency: Frequency
    format: Format
    timezone: str
    enabled: bool
    default: bool
    stopped_reason: str | None
    next_run_at: dt.datetime | None


class SchedulesOut(msgspec.Struct):
    schedules: list[ScheduleOut]

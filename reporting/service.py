"""Reports for the API: request one, list and read a host's own, and stream a finished file.

A host sees only their own reports: another host's id answers 404, exactly like an id that does not exist.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from reporting.definitions import MAX_WINDOW_DAYS, Window
from reporting.export import STREAM_CHUNK_BYTES, checked_format, file_name
from reporting.models import Report
from reporting.schemas import ReportOut, ReportRequest
from service.auth.tokens import CurrentUser
from service.db import session_factory
from service.errors import Conflict, InvalidRequest, NotFound


def window_of(start: dt.date, end: dt.date) -> Window:
    """A report window, refused (422) when empty, reversed or longer than about three years."""
    if end <= start:
        raise InvalidRequest("'to' must be after 'from' (the window is [from, to)).")
    window = Window(start, end)
    if window.days > MAX_WINDOW_DAYS:
        raise InvalidRequest(f"A report covers at most {MAX_WINDOW_DAYS} days; split the window.")
    return window


def report_out(report: Report) -> ReportOut:
    window = Window(report.period_start, report.period_end)
    return ReportOut(
        id=report.id,
        kind=report.kind,
        format=checked_format(report.format),
        start=report.period_start,
        end=report.period_end,
        status=report.status,  # type: ignore[arg-type]
        period=report.period_key,
        attempts=report.attempts,
        row_count=report.row_count,
        size_bytes=report.size_bytes,
        error=report.error,
        file_name=file_name(window, report.format),
        created_at=report.created_at,
        finished_at=report.finished_at,
    )


async def request_report(session: AsyncSession, user: CurrentUser, data: ReportRequest) -> Report:
    """Queues a report; a worker generates it off the request path."""
    window = window_of(data.start, data.end)
    report = Report(
        host_id=user.id,
        kind=data.kind,
        format=data.format,
        period_start=window.start,
        period_end=window.end,
        status="PENDING",
        attempts=0,
    )
    session.add(report)
    await session.flush()
    await session.refresh(report)
    return report


async def list_reports(session: AsyncSession, user: CurrentUser, limit: int, offset: int) -> tuple[list[Report], bool]:
    found = await session.scalars(
        select(Report)
        .where(Report.host_id == user.id)
        .order_by(Report.created_at.desc(), Report.id)
        .limit(limit + 1)
        .offset(offset)
    )
    reports = list(found)
    return reports[:limit], len(reports) > limit


async def get_report(session: AsyncSession, user: CurrentUser, report_id: uuid.UUID) -> Report:
    report = await session.get(Report, report_id)
    if report is None or report.host_id != user.id:
        raise NotFound("No such report.")
    return report


async def finished_report(session: AsyncSession, user: CurrentUser, report_id: uuid.UUID) -> Report:
    report = await get_report(session, user, report_id)
    if report.status != "DONE":
        raise Conflict(f"The report is {report.status}; download it once it is DONE.", report_status=report.status)
    return report


async def file_pieces(engine: AsyncEngine, report_id: uuid.UUID) -> AsyncIterator[bytes]:
    """A stored file in 1 MiB slices, so no node ever holds a large report whole."""
    piece = text("SELECT substring(content FROM :start FOR :length) FROM report_files WHERE report_id = :id")
    start = 1
    async with session_factory(engine)() as session:
        while True:
            chunk = await session.scalar(piece, {"id": report_id, "start": start, "length": STREAM_CHUNK_BYTES})
            if not chunk:
                return
            yield bytes(chunk)
            start += STREAM_CHUNK_BYTES

"""The worker job that generates queued reports, off the request path.

Workers claim reports with `FOR UPDATE SKIP LOCKED`, on-demand ones first (a person is waiting), then scheduled
statements. A failed attempt is retried on a later round; after `MAX_ATTEMPTS` the report is FAILED with its
error, and when it was a scheduled statement its schedule is stopped with the reason, which the host sees in
`GET /reports/schedules` (there are no notifications yet). A report left RUNNING by a worker that died is
claimed again after 15 minutes.
"""

from __future__ import annotations

import logging
import tempfile
import uuid

from sqlalchemy import text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reporting.definitions import Window
from reporting.export import checked_format, write_report
from reporting.models import Report, ReportFile, ReportSchedule
from reporting.schedules import host_timezone
from service.notifications.messages import Kind, notify_user
from service.rounds import run_rounds
from service.settings import Settings

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
IDLE_WAIT_S = 2.0

# A RUNNING report untouched for 15 minutes belongs to a worker that died.
CLAIM_SQL = text(
    """
    UPDATE reports SET status = 'RUNNING', attempts = attempts + 1, updated_at = now()
    WHERE id = (
        SELECT id FROM reports
        WHERE status = 'PENDING' OR (status = 'RUNNING' AND updated_at < now() - interval '15 minutes')
        ORDER BY period_key IS NOT NULL, created_at
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id
    """
)


async def claim_next(sessions: async_sessionmaker[AsyncSession]) -> uuid.UUID | None:
    async with sessions.begin() as session:
        claimed: uuid.UUID | None = await session.scalar(CLAIM_SQL)
        return claimed


async def generate_report(sessions: async_sessionmaker[AsyncSession], settings: Settings, report_id: uuid.UUID) -> bool:
    """Generates one claimed report and stores its file; answers whether it succeeded."""
    async with sessions() as session:
        report = await session.get_one(Report, report_id)
        window = Window(report.period_start, report.period_end)
    try:
        with tempfile.TemporaryFile() as out:
            async with sessions.begin() as session:
                rows = await write_report(
                    session, report.host_id, window, checked_format(report.format), settings.host_fee_bps, out
                )
            size = out.tell()
            out.seek(0)
            content = out.read()
    except Exception as error:
        log.exception("report failed", extra={"report_id": str(report_id), "attempt": report.attempts})
        await _record_failure(sessions, report, f"{type(error).__name__}: {error}")
        return False
    async with sessions.begin() as session:
        session.add(ReportFile(report_id=report_id, content=content))
        await session.execute(
            update(Report)
            .where(Report.id == report_id)
            .values(status="DONE", row_count=rows, size_bytes=size, error=None, finished_at=text("now()"))
        )
        await notify_user(
            session,
            report.host_id,
            Kind.REPORT_READY,
            f"Earnings report ready: {window.start} to {window.end}",
            f"Your {report.format.upper()} earnings report for {window.start} to {window.end} ({rows} bookings) is "
            f"ready: /api/v1/reports/{report_id}/download",
        )
    return True


async def _record_failure(sessions: async_sessionmaker[AsyncSession], report: Report, error: str) -> None:
    final = report.attempts >= MAX_ATTEMPTS
    async with sessions.begin() as session:
        await session.execute(
            update(Report)
            .where(Report.id == report.id)
            .values(
                status="FAILED" if final else "PENDING",
                error=error[:2000],
                finished_at=text("now()") if final else None,
            )
        )
        if final and report.period_key is not None:
            await _stop_schedule(session, report, report.period_key, error)


async def _stop_schedule(session: AsyncSession, report: Report, period_key: str, error: str) -> None:
    """Stops the schedule whose statement failed for good (creating the row when it was the default one)."""
    frequency = period_key.split(":", 1)[0]
    reason = f"Stopped after {MAX_ATTEMPTS} failed attempts at the {period_key} statement: {error}"[:2000]
    await session.execute(
        insert(ReportSchedule)
        .values(
            host_id=report.host_id,
            frequency=frequency,
            format=report.format,
            timezone=await host_timezone(session, report.host_id),
            enabled=False,
            stopped_reason=reason,
        )
        .on_conflict_do_update(
            index_elements=[ReportSchedule.host_id, ReportSchedule.frequency],
            set_={"enabled": False, "stopped_reason": reason, "updated_at": text("now()")},
        )
    )
    await notify_user(
        session,
        report.host_id,
        Kind.REPORT_SCHEDULE_STOPPED,
        f"Your {frequency} earnings statements are paused",
        f"{reason}. Save the schedule again (PUT /api/v1/reports/schedules) to restart it.",
    )


async def generate_reports_once(sessions: async_sessionmaker[AsyncSession], settings: Settings, batch: int = 10) -> int:
    """One round: claims and generates up to `batch` reports; answers how many it attempted."""
    attempted = 0
    while attempted < batch and (report_id := await claim_next(sessions)) is not None:
        await generate_report(sessions, settings, report_id)
        attempted += 1
    return attempted


async def generate_reports(settings: Settings) -> None:
    """Runs until cancelled; a round that fails (database away) is logged and retried."""

    async def one_round(sessions: async_sessionmaker[AsyncSession]) -> float:
        return 0 if await generate_reports_once(sessions, settings) else IDLE_WAIT_S

    await run_rounds(settings, "report", one_round, after_failure=IDLE_WAIT_S)

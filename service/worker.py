"""The worker role: background jobs that run beside (serve) or apart from (worker) the HTTP API.

Each job is an async function that runs until cancelled: booking expiry and completion, calendar import sync,
payment reconciliation and refund retries, notification delivery, report generation and the statement
scheduler; the outbox relay and the aggregators register here as they are built.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from ingest.aggregator import aggregate_events
from ingest.relay import relay_outbox
from reporting.generation import generate_reports
from reporting.scheduler import schedule_reports
from service.bookings.jobs import advance_bookings
from service.notifications.delivery import deliver_notifications
from service.payments.reconciliation import settle_payments
from service.properties.calendar_sync_job import sync_calendar_feeds
from service.settings import Settings

log = logging.getLogger(__name__)

RECANCEL_AFTER_S = 1.0

Job = Callable[[Settings], Coroutine[Any, Any, None]]
JOBS: tuple[Job, ...] = (
    advance_bookings,
    relay_outbox,
    aggregate_events,
    sync_calendar_feeds,
    settle_payments,
    deliver_notifications,
    generate_reports,
    schedule_reports,
)


async def run_jobs(settings: Settings, stop: asyncio.Event) -> None:
    """Run every job until `stop` is set; a job that crashes stops the worker, so its supervisor restarts it."""
    log.info("worker started", extra={"jobs": [job.__name__ for job in JOBS]})
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(job(settings), name=job.__name__) for job in JOBS]
        await stop.wait()
        # redis-py can swallow a cancellation that lands inside a blocked read (XREADGROUP; redis/redis-py#2028),
        # and the job then reads on as if nothing happened: a job still running a moment later is cancelled again.
        while running := [task for task in tasks if not task.done()]:
            for task in running:
                task.cancel()
            await asyncio.wait(running, timeout=RECANCEL_AFTER_S)
    log.info("worker stopped")

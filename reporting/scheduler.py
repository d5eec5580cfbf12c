"""The statement scheduler: APScheduler ticks every minute in the worker; each tick asks `schedule.due_runs`
what is due and queues it.

Exactly one statement per host and period, however many workers run: a tick runs only on the worker holding the
Redis leader lock (redis-py's `Lock`, released after the tick and expiring on its own if the worker dies), and
the unique key on (host, kind, period) makes a repeated insert a no-op even if two ticks ever overlapped. The
first tick runs at start, which makes up statements missed while no worker was up.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from redis.asyncio import Redis
from redis.exceptions import LockError
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reporting.models import Report
from reporting.schedule import Schedule, due_runs
from service.app import redis_client
from service.db import create_engine, session_factory
from service.settings import Settings

log = logging.getLogger(__name__)

TICK_SECONDS = 60
LEADER_LOCK_SECONDS = 120

# Every enabled schedule, plus the default monthly statement (XLSX) of each host with a property and no monthly row,
# in the zone of the host's first property.
SCHEDULES_SQL = text(
    """
    SELECT host_id, frequency, format, timezone, created_at FROM report_schedules WHERE enabled
    UNION ALL
    (SELECT DISTINCT ON (p.host_id) p.host_id, 'monthly', 'xlsx', p.timezone, p.created_at
     FROM properties p
     WHERE NOT EXISTS (SELECT 1 FROM report_schedules s WHERE s.host_id = p.host_id AND s.frequency = 'monthly')
     ORDER BY p.host_id, p.created_at, p.id)
    """
)


def leader_lock_name(settings: Settings) -> str:
    return f"{settings.redis_prefix}:reports:scheduler-leader"


async def load_schedules(session: AsyncSession) -> list[Schedule]:
    rows = await session.execute(SCHEDULES_SQL)
    return [Schedule(host_id, frequency, fmt, zone, since) for host_id, frequency, fmt, zone, since in rows]


async def queue_due_statements(session: AsyncSession, now: dt.datetime) -> int:
    """Inserts the statements due at `now` that do not exist yet; answers how many it created."""
    runs = due_runs(await load_schedules(session), now)
    if not runs:
        return 0
    statement = (
        insert(Report)
        .values(
            [
                {
                    "id": uuid.uuid4(),
                    "host_id": run.host_id,
                    "kind": "earnings",
                    "format": run.format,
                    "period_start": run.window.start,
                    "period_end": run.window.end,
                    "period_key": run.period_key,
                    "status": "PENDING",
                    "attempts": 0,
                }
                for run in runs
            ]
        )
        .on_conflict_do_nothing(index_elements=[Report.host_id, Report.kind, Report.period_key])
        .returning(Report.id)
    )
    return len(list(await session.scalars(statement)))


async def schedule_reports_once(
    sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings, now: dt.datetime
) -> int | None:
    """One tick at `now`: answers the statements created, or None when another worker leads."""
    lock = redis.lock(leader_lock_name(settings), timeout=LEADER_LOCK_SECONDS)
    if not await lock.acquire(blocking=False):
        return None
    try:
        async with sessions.begin() as session:
            return await queue_due_statements(session, now)
    finally:
        try:
            await lock.release()
        except LockError:
            log.warning("scheduler leader lock expired during a tick")


async def schedule_reports(settings: Settings) -> None:
    """Runs APScheduler until cancelled; its one job ticks at start and every minute after."""
    engine = create_engine(settings, pool_size=1)
    sessions = session_factory(engine)
    redis = redis_client(settings)

    async def tick() -> None:
        try:
            created = await schedule_reports_once(sessions, redis, settings, dt.datetime.now(dt.UTC))
        except Exception:
            log.exception("report scheduler tick failed")
            return
        if created:
            log.info("statements queued", extra={"statements": created})

    scheduler = AsyncIOScheduler(timezone=dt.UTC)
    scheduler.add_job(
        tick,
        IntervalTrigger(seconds=TICK_SECONDS),
        next_run_time=dt.datetime.now(dt.UTC),
        max_instances=1,
        coalesce=True,
    )
    scheduler.start()
    try:
        await asyncio.Event().wait()
    finally:
        scheduler.shutdown(wait=False)
        await redis.aclose()
        await engine.dispose()

"""The worker job that delivers queued notifications, with retries and exponential backoff.

A round claims due rows in a short transaction (moving `next_attempt_at` a lease ahead and counting the attempt,
so another worker skips them), sends each one outside any transaction, then records the outcome: `sent`, or the
error and the next attempt at `BASE_DELAY_S * 2**(attempts-1)` (capped), or `failed` after `MAX_ATTEMPTS`.
A worker that dies mid-send leaves the row to be picked up again when its lease runs out.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.notifications.models import Channel, Notification, NotificationStatus
from service.notifications.senders import Senders, senders_for
from service.rounds import run_rounds
from service.settings import Settings

log = logging.getLogger(__name__)

BATCH = 50
LEASE_S = 120
BASE_DELAY_S = 30
MAX_DELAY_S = 6 * 3600
MAX_ATTEMPTS = 10
ROUND_INTERVAL_S = 2.0


@dataclass(frozen=True)
class Claimed:
    id: uuid.UUID
    channel: str
    recipient: str
    subject: str
    body: str
    attempts: int


def retry_delay(attempts: int) -> dt.timedelta:
    """Backoff after the `attempts`-th failed attempt: 30 s, 60 s, 120 s, ... up to six hours."""
    return dt.timedelta(seconds=min(BASE_DELAY_S * 2 ** (attempts - 1), MAX_DELAY_S))


async def _claim(session: AsyncSession) -> list[Claimed]:
    due = list(
        await session.scalars(
            select(Notification)
            .where(Notification.status == NotificationStatus.PENDING, Notification.next_attempt_at <= text("now()"))
            .order_by(Notification.next_attempt_at)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
    )
    for row in due:
        row.attempts += 1
        row.next_attempt_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=LEASE_S)
    return [Claimed(r.id, r.channel, r.recipient, r.subject, r.body, r.attempts) for r in due]


async def _send(senders: Senders, message: Claimed) -> None:
    if message.channel == Channel.SMS:
        await senders.sms.send_sms(message.recipient, message.body)
    else:
        await senders.email.send_email(message.recipient, message.subject, message.body)


async def _record(session: AsyncSession, message: Claimed, error: str | None) -> None:
    now = dt.datetime.now(dt.UTC)
    if error is None:
        values = {"status": NotificationStatus.SENT, "sent_at": now, "last_error": None}
    elif message.attempts >= MAX_ATTEMPTS:
        values = {"status": NotificationStatus.FAILED, "last_error": error}
    else:
        values = {"last_error": error, "next_attempt_at": now + retry_delay(message.attempts)}
    await session.execute(update(Notification).where(Notification.id == message.id).values(**values))


async def deliver_due_notifications(sessions: async_sessionmaker[AsyncSession], senders: Senders) -> tuple[int, int]:
    """One round; answers (sent, failed attempts)."""
    async with sessions.begin() as session:
        claimed = await _claim(session)
    sent = failed = 0
    for message in claimed:
        try:
            await _send(senders, message)
            error = None
            sent += 1
        except Exception as exc:  # any failure of a channel is retried; the row keeps what went wrong
            error = f"{type(exc).__name__}: {exc}"[:2000]
            failed += 1
            log.warning("notification not delivered", extra={"notification_id": str(message.id), "error": error})
        async with sessions.begin() as session:
            await _record(session, message, error)
    return sent, failed


async def deliver_notifications(settings: Settings) -> None:
    """Runs until cancelled; a failed round (database away) is logged and retried on the next one."""
    senders = senders_for(settings)

    async def one_round(sessions: async_sessionmaker[AsyncSession]) -> float:
        await deliver_due_notifications(sessions, senders)
        return ROUND_INTERVAL_S

    await run_rounds(settings, "notification", one_round, after_failure=ROUND_INTERVAL_S)

"""Guests and hosts hear about their bookings by e-mail and SMS, delivered by the worker, never by the request;
a mail server that is down delays messages and changes nothing else."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.demo.localstripe import free_port
from service.notifications.delivery import deliver_due_notifications, retry_delay
from service.notifications.senders import HttpSmsSender, RecordingSender, Senders, SmtpEmailSender, senders_for
from service.settings import Settings
from tests.api import Client, book, create_property, days_ahead, login, register, signed_up_host
from tests.conftest import SMS_TOKEN
from tests.db import execute, worker_sessions
from tests.inboxes import Mailbox, SmsInbox


async def cancelled_hold(client: Client, phone: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """A guest (with this phone) who held a stay and cancelled it; answers the guest and the booking."""
    host = await signed_up_host(client)
    prop = await create_property(client, host, title="Quiet cabin")
    guest = await register(client, phone=phone) if phone else await register(client)
    headers = await login(client, guest["email"])
    booking = (await book(client, headers, prop, days_ahead(15), 2)).json()
    response = await client.post(f"/api/v1/bookings/{booking['id']}/cancel", headers=headers)
    assert response.status_code == 200, response.text
    return guest, booking


async def email_row(settings: Settings, booking_id: str, address: str) -> tuple[str, int, dt.datetime, str | None]:
    [row] = await execute(
        settings,
        "SELECT status, attempts, next_attempt_at, last_error FROM notifications "
        "WHERE booking_id = :id AND channel = 'email' AND recipient = :to",
        id=booking_id,
        to=address,
    )
    return row[0], row[1], row[2], row[3]


async def test_a_cancellation_is_queued_for_guest_and_host_on_their_channels(
    client: Client, settings: Settings
) -> None:
    guest, booking = await cancelled_hold(client, phone="+351911111111")
    rows = await execute(
        settings,
        "SELECT u.email = :guest, n.channel, n.kind, n.status FROM notifications n JOIN users u ON u.id = n.user_id "
        "WHERE n.booking_id = :id ORDER BY 1, 2",
        guest=guest["email"],
        id=booking["id"],
    )
    assert [tuple(row) for row in rows] == [
        (False, "email", "booking.cancelled", "pending"),
        (True, "email", "booking.cancelled", "pending"),
        (True, "sms", "booking.cancelled", "pending"),
    ]


async def deliver_all_due(sessions: async_sessionmaker[AsyncSession], senders: Senders) -> None:
    """Worker rounds until nothing is due: other tests' messages share the table, and a round takes 50."""
    while sum(await deliver_due_notifications(sessions, senders)):
        pass


async def test_smtp_down_retries_with_backoff_then_delivers(
    client: Client, settings: Settings, mailbox: Mailbox, sms_inbox: SmsInbox
) -> None:
    guest, booking = await cancelled_hold(client, phone="+351922222222")
    smtp_down = Senders(
        email=SmtpEmailSender(f"smtp://127.0.0.1:{free_port()}"),  # nothing listens there
        sms=HttpSmsSender(sms_inbox.url, SMS_TOKEN),
    )
    async with worker_sessions(settings) as sessions:
        before = dt.datetime.now(dt.UTC)
        await deliver_all_due(sessions, smtp_down)
        status, attempts, first_retry_at, error = await email_row(settings, booking["id"], guest["email"])
        assert (status, attempts) == ("pending", 1)
        assert error
        assert first_retry_at >= before + retry_delay(1)
        assert sms_inbox.to("+351922222222")  # the other channel was not held back

        # Time passing: the retry is due; the server is still down, so the wait doubles.
        await execute(
            settings, "UPDATE notifications SET next_attempt_at = now() WHERE booking_id = :id", id=booking["id"]
        )
        before = dt.datetime.now(dt.UTC)
        await deliver_all_due(sessions, smtp_down)
        status, attempts, second_retry_at, _ = await email_row(settings, booking["id"], guest["email"])
        assert (status, attempts) == ("pending", 2)
        assert second_retry_at >= before + retry_delay(2)
        assert retry_delay(2) == 2 * retry_delay(1)
        assert mailbox.to(guest["email"]) == []

        await execute(
            settings, "UPDATE notifications SET next_attempt_at = now() WHERE booking_id = :id", id=booking["id"]
        )
        await deliver_all_due(sessions, senders_for(settings))  # SMTP_URL points at the live server
    status, attempts, _, error = await email_row(settings, booking["id"], guest["email"])
    assert (status, attempts, error) == ("sent", 3, None)
    [email] = mailbox.to(guest["email"])
    assert email["Subject"] == "Booking cancelled: Quiet cabin"
    assert len(sms_inbox.to("+351922222222")) == 1  # sent once, not again with the retries
    headers = await login(client, guest["email"])
    seen = await client.get(f"/api/v1/bookings/{booking['id']}", headers=headers)
    assert seen.json()["status"] == "CANCELLED"


async def test_without_urls_messages_are_recorded_not_sent() -> None:
    senders = senders_for(Settings.from_env({}))
    assert isinstance(senders.email, RecordingSender)
    assert isinstance(senders.sms, RecordingSender)
    await senders.email.send_email("ana@example.com", "Hello", "Body")
    await senders.sms.send_sms("+351900000000", "Body")
    assert [(m.channel, m.to) for m in senders.email.sent] == [("email", "ana@example.com"), ("sms", "+351900000000")]

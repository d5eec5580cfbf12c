"""How a message leaves: e-mail over SMTP, SMS through a Twilio-style HTTP API, each behind a small protocol.

When `SMTP_URL` or `SMS_API_URL` is unset (development), the recording sender logs the message and keeps it in
memory instead, so a laptop needs no mail server and nothing is sent by accident.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import urlsplit

import aiosmtplib
import httpx

from service.settings import Settings

log = logging.getLogger(__name__)

SEND_TIMEOUT_S = 10.0
FROM_ADDRESS = "StayPulse <no-reply@staypulse.example>"


class EmailSender(Protocol):
    async def send_email(self, to: str, subject: str, body: str) -> None: ...


class SmsSender(Protocol):
    async def send_sms(self, to: str, body: str) -> None: ...


@dataclass(frozen=True)
class SentMessage:
    channel: str
    to: str
    subject: str
    body: str


@dataclass
class RecordingSender:
    """The development default for both channels: logs and remembers each message."""

    sent: list[SentMessage] = field(default_factory=list)

    async def send_email(self, to: str, subject: str, body: str) -> None:
        self.sent.append(SentMessage("email", to, subject, body))
        log.info("email not sent (SMTP_URL unset)", extra={"to": to, "subject": subject})

    async def send_sms(self, to: str, body: str) -> None:
        self.sent.append(SentMessage("sms", to, "", body))
        log.info("sms not sent (SMS_API_URL unset)", extra={"to": to})


class SmtpEmailSender:
    """`smtp://host:port` (plain, for a local relay) or `smtps://user:password@host:port` (implicit TLS)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(f"SMTP_URL must look like smtp://host:port, got {url!r}")
        self._tls = parts.scheme == "smtps"
        self._host = parts.hostname
        self._port = parts.port or (465 if self._tls else 25)
        self._username = parts.username
        self._password = parts.password

    async def send_email(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = FROM_ADDRESS
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        await aiosmtplib.send(
            message,
            hostname=self._host,
            port=self._port,
            username=self._username,
            password=self._password,
            use_tls=self._tls,
            start_tls=None if self._tls else False,  # a local relay on smtp:// speaks plain SMTP
            timeout=SEND_TIMEOUT_S,
        )


class HttpSmsSender:
    """POSTs JSON `{to, body}` with a bearer token; any non-2xx answer is a failed attempt."""

    def __init__(self, url: str, token: str | None) -> None:
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def send_sms(self, to: str, body: str) -> None:
        async with httpx.AsyncClient(timeout=SEND_TIMEOUT_S) as client:
            response = await client.post(self._url, json={"to": to, "body": body}, headers=self._headers)
            response.raise_for_status()


@dataclass(frozen=True)
class Senders:
    email: EmailSender
    sms: SmsSender


def senders_for(settings: Settings) -> Senders:
    recording = RecordingSender()
    email: EmailSender = SmtpEmailSender(settings.smtp_url) if settings.smtp_url else recording
    sms: SmsSender = HttpSmsSender(settings.sms_api_url, settings.sms_api_token) if settings.sms_api_url else recording
    return Senders(email=email, sms=sms)

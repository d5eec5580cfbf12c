"""Shared fixtures: real Postgres and Redis, a fresh database per run, the app and an HTTP client.

With `DATABASE_URL` and `REDIS_URL` set the tests use those servers; without them they start embedded ones in a
temporary folder. Either way the run gets its own database (dropped at the end) and its own Redis key prefix.
Payments and notifications talk to real parts on loopback: localstripe (a stateful Stripe emulator) as a
subprocess, an aiosmtpd SMTP server, and an HTTP endpoint standing in for the SMS provider.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from aiosmtpd.controller import Controller
from litestar import Litestar
from litestar.testing import AsyncTestClient

from migrations import upgrade_to_head
from service.app import create_app
from service.demo.localstripe import free_port, running_localstripe
from service.embedded import EmbeddedServers
from service.settings import Settings, SettingsError, database_url_for
from tests.cli_process import processes_using
from tests.inboxes import Mailbox, SmsInbox, sms_provider
from tests.loopback import LoopbackHTTP

SMS_TOKEN = "sms-test-token"


@dataclasses.dataclass(frozen=True)
class Servers:
    """Where the run's Postgres (its maintenance database) and Redis are."""

    admin_database_url: str
    redis_url: str


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    database_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if database_url and redis_url:
        yield Servers(database_url, redis_url)
        return
    if database_url or redis_url:
        raise SettingsError("set both DATABASE_URL and REDIS_URL for the tests, or neither")
    embedded = EmbeddedServers.start(tmp_path_factory.mktemp("servers"))
    try:
        yield Servers(embedded.postgres.url, embedded.redis.url)
    finally:
        embedded.stop()


async def _execute_on_server(admin_url: str, statement: str) -> None:
    connection = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def database_url(servers: Servers) -> Iterator[str]:
    """A database of this run's own, migrated to head, dropped afterwards."""
    name = f"staypulse_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_execute_on_server(servers.admin_database_url, f'CREATE DATABASE "{name}"'))
    url = database_url_for(servers.admin_database_url, name)
    try:
        upgrade_to_head(url)
        yield url
    finally:
        asyncio.run(_execute_on_server(servers.admin_database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    """localstripe on a free loopback port, answering before the first test uses it."""
    with running_localstripe() as url:
        yield url


@pytest.fixture(scope="session")
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on loopback; every message it accepts lands in the mailbox."""
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        box.url = f"smtp://127.0.0.1:{controller.port}"
        yield box
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def sms_inbox() -> Iterator[SmsInbox]:
    with sms_provider(SMS_TOKEN) as inbox:
        yield inbox


@pytest.fixture(scope="session")
def settings(
    servers: Servers,
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    localstripe_url: str,
    mailbox: Mailbox,
    sms_inbox: SmsInbox,
) -> Settings:
    base = Settings.from_env({"STAYPULSE_DATA_DIR": str(tmp_path_factory.mktemp("data"))})
    return dataclasses.replace(
        base.with_servers(database_url, servers.redis_url),
        redis_prefix=f"staypulse-test-{uuid.uuid4().hex[:12]}",
        # Generous, so that the suite's many logins never trip it; the rate-limit test sets its own.
        login_rate_limit_per_minute=10_000,
        stripe_api_base=localstripe_url,
        smtp_url=mailbox.url,
        sms_api_url=sms_inbox.url,
        sms_api_token=SMS_TOKEN,
    )


@pytest.fixture(scope="session")
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture(scope="session")
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def loopback_http() -> Iterator[LoopbackHTTP]:
    """Other sites (a channel's calendar feed) served over real HTTP on 127.0.0.1."""
    server = LoopbackHTTP()
    try:
        yield server
    finally:
        server.close()


@dataclasses.dataclass(frozen=True)
class Stack:
    """A database and Redis key prefix of one test's own, with an app and client on them."""

    settings: Settings
    client: AsyncTestClient[Litestar]


@pytest.fixture
async def own_stack(servers: Servers, settings: Settings) -> AsyncIterator[Stack]:
    """For tests that judge the whole pipeline (every outbox row, `metrics verify`): other suites' rows and their
    direct SQL changes (time passing) would otherwise be part of what they judge."""
    name = f"staypulse_test_{uuid.uuid4().hex[:12]}"
    await _execute_on_server(servers.admin_database_url, f'CREATE DATABASE "{name}"')
    url = database_url_for(servers.admin_database_url, name)
    try:
        await asyncio.to_thread(upgrade_to_head, url)
        own = dataclasses.replace(
            settings.with_servers(url, settings.redis_url or servers.redis_url),
            redis_prefix=f"staypulse-test-{uuid.uuid4().hex[:12]}",
        )
        async with AsyncTestClient(create_app(own), raise_server_exceptions=False) as test_client:
            yield Stack(own, test_client)
    finally:
        await _execute_on_server(servers.admin_database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """The data folder of a `staypulse` child process (tests.cli_process); whatever still runs from it after the
    test is killed, so a failed test leaves no server behind."""
    yield tmp_path / "data"
    for leftover in processes_using(tmp_path / "data"):
        leftover.kill()

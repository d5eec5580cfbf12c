"""The `staypulse` command: `serve` (everything in one process), `api`, `worker`, `migrate` and `metrics`."""

from __future__ import annotations

import asyncio
import signal
import sys

import click
import uvicorn

from ingest.recompute import rebuild, verify
from migrations import upgrade_to_head
from service.app import create_app
from service.logging import configure_logging
from service.runtime import servers_for
from service.settings import Settings, SettingsError
from service.worker import run_jobs

host_option = click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
port_option = click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))


def _settings() -> Settings:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    configure_logging(settings.log_level)
    return settings


def _serve_http(settings: Settings, host: str, port: int, *, with_jobs: bool) -> None:
    """Run uvicorn with the app; in `serve` the background jobs share its event loop and stop with it."""
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host=host, port=port, log_config=None))
    # uvicorn re-raises the signal that stopped it once it has shut down; ignoring that echo lets the caller
    # finish its own clean-up (stopping embedded servers) and exit 0 instead of dying half-way.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: None)

    async def main() -> None:
        stop = asyncio.Event()
        jobs = asyncio.create_task(run_jobs(settings, stop)) if with_jobs else None
        try:
            await server.serve()
        finally:
            stop.set()
            if jobs is not None:
                await jobs

    # The event loop uvicorn itself would pick (uvloop when installed), as `uvicorn.run` does.
    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        runner.run(main())


@click.group()
def main() -> None:
    """StayPulse: bookings with live host analytics."""


@main.command()
@host_option
@port_option
def serve(host: str, port: int) -> None:
    """API and background jobs in one process; starts embedded Postgres and Redis when their URLs are unset."""
    try:
        with servers_for(_settings(), allow_embedded=True) as settings:
            upgrade_to_head(settings.database_url or "")
            _serve_http(settings, host, port, with_jobs=True)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@host_option
@port_option
def api(host: str, port: int) -> None:
    """The HTTP API only (stateless; run as many as needed)."""
    try:
        with servers_for(_settings(), allow_embedded=False) as settings:
            _serve_http(settings, host, port, with_jobs=False)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
def worker() -> None:
    """Background jobs only; stops on SIGINT or SIGTERM."""
    try:
        with servers_for(_settings(), allow_embedded=False) as settings:
            asyncio.run(_run_worker(settings))
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


async def _run_worker(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await run_jobs(settings, stop)


@main.command()
def migrate() -> None:
    """Upgrade the database schema to the newest migration."""
    try:
        with servers_for(_settings(), allow_embedded=True) as settings:
            upgrade_to_head(settings.database_url or "")
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("database schema is up to date", err=True)


@main.group()
def metrics() -> None:
    """Check or rebuild the metrics the aggregators keep."""


@metrics.command("verify")
def metrics_verify() -> None:
    """Recompute every metric from bookings and blocks; exit 1 and print each difference on a mismatch."""
    try:
        with servers_for(_settings(), allow_embedded=True) as settings:
            result = asyncio.run(verify(settings))
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    if result.unpublished:
        click.echo(f"note: {result.unpublished} outbox events are still waiting to be relayed", err=True)
    for line in result.differences:
        click.echo(line)
    if result.differences:
        raise click.exceptions.Exit(1)
    click.echo("metrics match a recompute from bookings and blocks", err=True)


@metrics.command("rebuild")
def metrics_rebuild() -> None:
    """Replace the metrics tables with a recompute from bookings and blocks."""
    try:
        with servers_for(_settings(), allow_embedded=True) as settings:
            counts = asyncio.run(rebuild(settings))
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"rebuilt {counts.properties} properties, {counts.blocks} blocks, {counts.bookings} bookings, "
        f"{counts.days} property-days",
        err=True,
    )


if __name__ == "__main__":
    sys.exit(main())

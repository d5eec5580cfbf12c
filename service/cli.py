"""The `staypulse` command: `serve` (everything in one process), `demo` (serve plus a live demo), `api`,
`worker`, `migrate` and `metrics`."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AbstractContextManager
from functools import partial
from typing import Any

import click
import uvicorn
import uvloop

from ingest.recompute import rebuild, verify
from migrations import upgrade_to_head
from service.app import create_app
from service.demo import localstripe
from service.demo.run import Beside, demo_stack
from service.garbage import defer_full_collections, freeze_startup_objects, full_collections
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


# How the API is served, here and by the tests' live servers (tests/live_server.py):
# - access_log: off (not just its logger disabled): ours is written by `service.logging`, and uvicorn would still
#   build every access record;
# - ws_per_message_deflate: live metrics frames go uncompressed: each socket has its own deflate context, so
#   compressing cost a compression per socket per update (a quarter of a busy gateway's CPU) and half the memory
#   of an idle socket, to save a few kB a dashboard reads;
# - ws_max_size: a client only ever sends `subscribe` frames (at most 100 property ids, under 5 kB); uvicorn's
#   default of 16 MiB let every socket make the server buffer that much. Larger frames close with 1009.
UVICORN_OPTIONS: dict[str, Any] = {
    "log_config": None,
    "access_log": False,
    "ws_per_message_deflate": False,
    "ws_max_size": 64 * 1024,
}


def run_on_uvloop(main: Coroutine[Any, Any, None]) -> None:
    """`asyncio.run` on uvloop, the loop uvicorn picks for the API: the worker's jobs spend their time in socket
    round trips to Postgres and Redis, which uvloop makes cheaper."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def _serve_http(settings: Settings, host: str, port: int, beside: Sequence[Beside] = ()) -> None:
    """Run uvicorn with the app; tasks `beside` it (the background jobs in `serve`) share its event loop, are
    told to stop when it stops, and stop it if one of them fails."""
    config = uvicorn.Config(create_app(settings), host=host, port=port, **UVICORN_OPTIONS)
    server = uvicorn.Server(config)
    freeze_startup_objects()
    defer_full_collections()
    beside = [*beside, full_collections]
    # uvicorn re-raises the signal that stopped it once it has shut down; ignoring that echo lets the caller
    # finish its own clean-up (stopping embedded servers) and exit 0 instead of dying half-way.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: None)

    def stop_server_on_failure(task: asyncio.Task[object]) -> None:
        if not task.cancelled() and task.exception() is not None:
            server.should_exit = True

    async def main() -> None:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(run(stop)) for run in beside]
        for task in tasks:
            task.add_done_callback(stop_server_on_failure)
        try:
            await server.serve()
        finally:
            stop.set()
            await asyncio.gather(*tasks)

    # The event loop uvicorn itself would pick (uvloop when installed), as `uvicorn.run` does.
    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        runner.run(main())


Extension = Callable[[Settings], AbstractContextManager[tuple[Settings, Beside | None]]]


def _serve_everything(host: str, port: int, extension: Extension | None = None) -> None:
    """What `serve` runs: the servers (embedded when their URLs are unset), migrations, then the API and the jobs;
    an `extension` (the demo) may change the settings and add a task beside them."""
    try:
        with servers_for(_settings(), allow_embedded=True) as resolved:
            upgrade_to_head(resolved.database_url or "")
            extended = extension(resolved) if extension else contextlib.nullcontext((resolved, None))
            with extended as (settings, extra):
                jobs = partial(run_jobs, settings)
                _serve_http(settings, host, port, beside=[jobs] if extra is None else [jobs, extra])
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
def main() -> None:
    """StayPulse: bookings with live host analytics."""


@main.command()
@host_option
@port_option
def serve(host: str, port: int) -> None:
    """API and background jobs in one process; starts embedded Postgres and Redis when their URLs are unset."""
    _serve_everything(host, port)


@main.command()
@host_option
@port_option
def demo(host: str, port: int) -> None:
    """`serve`, plus localstripe and a demo host whose bookings, payments and cancellations keep coming through
    the API, so the dashboard moves; prints one line per action, and the host's sign-in. Ctrl-C stops it all."""
    if not localstripe.installed():
        raise click.ClickException(
            "`staypulse demo` needs localstripe, the Stripe emulator in the dev extras: "
            "pip install -e '.[dev]' (which `make run` does)"
        )
    if port == 0:
        raise click.BadParameter("the demo talks to its own port, so it needs a fixed one", param_hint="--port")
    _serve_everything(host, port, partial(demo_stack, host=host, port=port))


@main.command()
@host_option
@port_option
def api(host: str, port: int) -> None:
    """The HTTP API only (stateless; run as many as needed)."""
    try:
        with servers_for(_settings(), allow_embedded=False) as settings:
            _serve_http(settings, host, port)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
def worker() -> None:
    """Background jobs only; stops on SIGINT or SIGTERM."""
    try:
        with servers_for(_settings(), allow_embedded=False) as settings:
            freeze_startup_objects()
            run_on_uvloop(_run_worker(settings))
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

"""Resolving where Postgres and Redis are: the configured servers, or embedded ones started for this process."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from service.embedded import EmbeddedServers
from service.settings import Settings, SettingsError

log = logging.getLogger(__name__)


@contextlib.contextmanager
def servers_for(settings: Settings, *, allow_embedded: bool) -> Iterator[Settings]:
    """Yield settings whose URLs point at running servers; embedded ones are stopped on the way out."""
    if settings.database_url and settings.redis_url:
        yield settings
        return
    if settings.database_url or settings.redis_url:
        raise SettingsError("Set both DATABASE_URL and REDIS_URL, or neither to use the embedded servers")
    if not allow_embedded:
        raise SettingsError("DATABASE_URL and REDIS_URL must be set for this command (only `serve` embeds them)")
    embedded = EmbeddedServers.start(settings.data_dir)
    try:
        yield settings.with_servers(embedded.postgres.url, embedded.redis.url)
    finally:
        log.info("stopping embedded PostgreSQL and Redis")
        embedded.stop()

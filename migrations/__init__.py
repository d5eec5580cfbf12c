"""Alembic migrations: the only way the schema changes. `upgrade_to_head` is what `staypulse migrate` runs."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    return config


def upgrade_to_head(database_url: str) -> None:
    """Bring the schema up to date. Runs its own event loop, so call it before the service's loop starts."""
    command.upgrade(alembic_config(database_url), "head")

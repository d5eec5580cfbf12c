"""An operator who forgets a secret in production is stopped at start-up with a message that says what to set."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from service.settings import Settings, SettingsError

SERVERS = {"DATABASE_URL": "postgresql://db.internal/staypulse", "REDIS_URL": "redis://cache.internal:6379/0"}
STRIPE = {
    "STRIPE_API_KEY": "sk_live_operator",
    "STRIPE_PUBLISHABLE_KEY": "pk_live_operator",
    "STRIPE_WEBHOOK_SECRET": "whsec_operator",
}


def test_development_needs_no_configuration() -> None:
    settings = Settings.from_env({})
    assert settings.database_url is None
    assert settings.redis_url is None
    assert settings.jwt_secret


def test_production_refuses_the_development_jwt_secret() -> None:
    with pytest.raises(SettingsError, match="JWT_SECRET"):
        Settings.from_env({"STAYPULSE_ENV": "production", **SERVERS})


def test_production_refuses_embedded_servers() -> None:
    with pytest.raises(SettingsError, match="DATABASE_URL") as raised:
        Settings.from_env({"STAYPULSE_ENV": "production", "JWT_SECRET": "s" * 40})
    assert "REDIS_URL" in str(raised.value)


def test_production_refuses_missing_stripe_secrets() -> None:
    with pytest.raises(SettingsError, match="STRIPE_API_KEY") as raised:
        Settings.from_env({"STAYPULSE_ENV": "production", "JWT_SECRET": "s" * 40, **SERVERS})
    assert "STRIPE_WEBHOOK_SECRET" in str(raised.value)
    assert "STRIPE_PUBLISHABLE_KEY" in str(raised.value)


def test_production_with_everything_set() -> None:
    settings = Settings.from_env({"STAYPULSE_ENV": "production", "JWT_SECRET": "s" * 40, **SERVERS, **STRIPE})
    assert settings.is_production
    assert settings.async_database_url == "postgresql+asyncpg://db.internal/staypulse"


@pytest.mark.parametrize(
    ("name", "value"), [("STAYPULSE_ENV", "staging"), ("JWT_TTL_SECONDS", "soon"), ("JWT_TTL_SECONDS", "-1")]
)
def test_invalid_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_serve_in_production_without_secrets_exits_with_the_reason() -> None:
    environ = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "serve"],
        env={**environ, "STAYPULSE_ENV": "production", "JWT_SECRET": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "Refusing to start in production" in result.stderr
    assert "JWT_SECRET" in result.stderr

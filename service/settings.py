"""Every setting StayPulse reads, taken from the environment in this one place.

Development needs no configuration at all: without `DATABASE_URL` and `REDIS_URL` the service starts embedded
PostgreSQL and Redis (see `service.embedded`). Production refuses to start with a missing or development-only
secret, so nothing unsafe is ever a silent default there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

DEV_JWT_SECRET = "development-only-jwt-secret-never-use-in-production"  # noqa: S105 - refused in production
MIN_SECRET_LENGTH = 32
# Stripe test-mode values that only ever reach localstripe or Stripe's test mode; production refuses them.
DEV_STRIPE_API_KEY = "sk_test_staypulse_development"
DEV_STRIPE_PUBLISHABLE_KEY = "pk_test_staypulse_development"
DEV_STRIPE_WEBHOOK_SECRET = "whsec_staypulse_development"  # noqa: S105 - refused in production
STRIPE_API_BASE = "https://api.stripe.com"

Environment = Literal["development", "production"]


class SettingsError(RuntimeError):
    """A setting is missing or invalid; the message says which and how to fix it."""


@dataclass(frozen=True)
class Settings:
    """Typed, immutable view of the environment."""

    env: Environment
    database_url: str | None
    redis_url: str | None
    data_dir: Path
    jwt_secret: str
    jwt_ttl_seconds: int
    login_rate_limit_per_minute: int
    redis_prefix: str
    log_level: str
    guest_service_fee_bps: int
    host_fee_bps: int
    booking_hold_seconds: int
    calendar_sync_interval_seconds: int
    stripe_api_key: str
    stripe_publishable_key: str
    stripe_webhook_secret: str
    stripe_api_base: str
    # Unset: messages are logged and kept in memory instead of sent (see service.notifications.senders).
    smtp_url: str | None
    sms_api_url: str | None
    sms_api_token: str | None
    cors_allow_origins: tuple[str, ...]
    max_request_body_bytes: int
    # Live metrics WebSocket (see docs/realtime.md).
    ws_ticket_ttl_seconds: int
    ws_heartbeat_seconds: int
    ws_stall_timeout_seconds: int
    # How long an event read by a worker that died stays with it before another worker takes it over.
    events_claim_idle_seconds: int

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def async_database_url(self) -> str:
        """The database URL in the form SQLAlchemy's asyncpg dialect expects."""
        if self.database_url is None:
            raise SettingsError("DATABASE_URL is not resolved yet (embedded PostgreSQL not started)")
        return to_asyncpg_url(self.database_url)

    def with_servers(self, database_url: str, redis_url: str) -> Settings:
        """A copy pointing at the given servers (used once embedded servers are up)."""
        return replace(self, database_url=database_url, redis_url=redis_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env_vars = os.environ if environ is None else environ
        env = env_vars.get("STAYPULSE_ENV", "development")
        if env not in ("development", "production"):
            raise SettingsError(f"STAYPULSE_ENV must be 'development' or 'production', not {env!r}")
        settings = cls(
            env=env,  # type: ignore[arg-type]  # checked just above
            database_url=env_vars.get("DATABASE_URL") or None,
            redis_url=env_vars.get("REDIS_URL") or None,
            data_dir=Path(env_vars.get("STAYPULSE_DATA_DIR", ".staypulse")).resolve(),
            jwt_secret=env_vars.get("JWT_SECRET") or DEV_JWT_SECRET,
            jwt_ttl_seconds=_positive_int(env_vars, "JWT_TTL_SECONDS", 3600),
            login_rate_limit_per_minute=_positive_int(env_vars, "LOGIN_RATE_LIMIT_PER_MINUTE", 10),
            redis_prefix=env_vars.get("STAYPULSE_REDIS_PREFIX", "staypulse"),
            log_level=env_vars.get("LOG_LEVEL", "INFO").upper(),
            guest_service_fee_bps=_non_negative_int(env_vars, "GUEST_SERVICE_FEE_BPS", 1000),
            host_fee_bps=_non_negative_int(env_vars, "HOST_FEE_BPS", 300),
            booking_hold_seconds=_positive_int(env_vars, "BOOKING_HOLD_SECONDS", 15 * 60),
            calendar_sync_interval_seconds=_positive_int(env_vars, "CALENDAR_SYNC_INTERVAL_SECONDS", 15 * 60),
            stripe_api_key=env_vars.get("STRIPE_API_KEY") or DEV_STRIPE_API_KEY,
            stripe_publishable_key=env_vars.get("STRIPE_PUBLISHABLE_KEY") or DEV_STRIPE_PUBLISHABLE_KEY,
            stripe_webhook_secret=env_vars.get("STRIPE_WEBHOOK_SECRET") or DEV_STRIPE_WEBHOOK_SECRET,
            stripe_api_base=(env_vars.get("STRIPE_API_BASE") or STRIPE_API_BASE).rstrip("/"),
            smtp_url=env_vars.get("SMTP_URL") or None,
            sms_api_url=env_vars.get("SMS_API_URL") or None,
            sms_api_token=env_vars.get("SMS_API_TOKEN") or None,
            cors_allow_origins=tuple(
                origin.strip() for origin in env_vars.get("CORS_ALLOW_ORIGINS", "").split(",") if origin.strip()
            ),
            max_request_body_bytes=_positive_int(env_vars, "MAX_REQUEST_BODY_BYTES", 1024 * 1024),
            ws_ticket_ttl_seconds=_positive_int(env_vars, "WS_TICKET_TTL_SECONDS", 30),
            ws_heartbeat_seconds=_positive_int(env_vars, "WS_HEARTBEAT_SECONDS", 15),
            ws_stall_timeout_seconds=_positive_int(env_vars, "WS_STALL_TIMEOUT_SECONDS", 10),
            events_claim_idle_seconds=_positive_int(env_vars, "EVENTS_CLAIM_IDLE_SECONDS", 30),
        )
        if settings.is_production:
            settings.check_production()
        return settings

    def check_production(self) -> None:
        """Refuse to run in production on development defaults."""
        problems = []
        if self.jwt_secret == DEV_JWT_SECRET or len(self.jwt_secret) < MIN_SECRET_LENGTH:
            problems.append(f"JWT_SECRET must be set to a random string of at least {MIN_SECRET_LENGTH} characters")
        if self.database_url is None:
            problems.append("DATABASE_URL must be set (embedded PostgreSQL is for development only)")
        if self.redis_url is None:
            problems.append("REDIS_URL must be set (embedded Redis is for development only)")
        stripe_defaults = {
            "STRIPE_API_KEY": (self.stripe_api_key, DEV_STRIPE_API_KEY),
            "STRIPE_PUBLISHABLE_KEY": (self.stripe_publishable_key, DEV_STRIPE_PUBLISHABLE_KEY),
            "STRIPE_WEBHOOK_SECRET": (self.stripe_webhook_secret, DEV_STRIPE_WEBHOOK_SECRET),
        }
        problems.extend(
            f"{name} must be set (from the Stripe dashboard)"
            for name, (value, default) in stripe_defaults.items()
            if value == default
        )
        if problems:
            raise SettingsError("Refusing to start in production: " + "; ".join(problems))


def to_asyncpg_url(url: str) -> str:
    """Accept the usual `postgresql://` or `postgres://` forms and name the asyncpg driver."""
    for scheme in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+asyncpg://" + url.removeprefix(scheme)
    raise SettingsError(f"DATABASE_URL must start with postgresql://, got {url.split(':', 1)[0]}://")


def database_url_for(server_url: str, database: str) -> str:
    """The same server, another database: swap the path of the URL, keep scheme, host, user and query."""
    head, _, tail = server_url.partition("://")
    authority, _, rest = tail.partition("/")
    query = rest.partition("?")[2]
    return f"{head}://{authority}/{database}" + (f"?{query}" if query else "")


def _int(env_vars: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env_vars.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _positive_int(env_vars: Mapping[str, str], name: str, default: int) -> int:
    return _int(env_vars, name, default, minimum=1)


def _non_negative_int(env_vars: Mapping[str, str], name: str, default: int) -> int:
    return _int(env_vars, name, default, minimum=0)

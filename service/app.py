"""The Litestar application factory: it only wires plugins, middleware and routers together."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Router
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.stores.redis import RedisStore
from redis.asyncio import Redis

from realtime.hub import Hub
from realtime.page import dashboard_router
from realtime.routes import TicketController, metrics_socket
from reporting.routes import HostEarningsController, ReportController, ReportScheduleController
from service.auth.routes import AuthController, login_rate_limit
from service.auth.tokens import TokenIssuer, jwt_auth
from service.bookings.locks import PropertyLocks
from service.bookings.routes import BookingController, PropertyReviewsController
from service.db import api_engine, sqlalchemy_plugin
from service.errors import problem_details_plugin, unexpected_error_response
from service.health import HealthController
from service.hosts.routes import HostMetricsController
from service.logging import RequestIdMiddleware
from service.payments.gateway import StripeGateway
from service.payments.routes import CheckoutController, StripeWebhookController
from service.properties.calendar_routes import PropertyCalendarController
from service.properties.ical_routes import CalendarFeedController, PropertyCalendarSyncController
from service.properties.routes import HostPropertiesController, PropertyController
from service.response_headers import response_headers_hook
from service.settings import Settings
from service.users.routes import UserController

API_PREFIX = "/api/v1"
REDIS_SOCKET_TIMEOUT_S = 5.0


def redis_client(settings: Settings) -> Redis:
    """One connection pool per process; it reconnects by itself after Redis comes back."""
    if settings.redis_url is None:
        raise RuntimeError("REDIS_URL is not resolved (start the embedded servers first)")
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=REDIS_SOCKET_TIMEOUT_S,
        socket_connect_timeout=REDIS_SOCKET_TIMEOUT_S,
        health_check_interval=15,
    )


def create_app(settings: Settings) -> Litestar:
    redis = redis_client(settings)
    engine = api_engine(settings)
    hub = Hub(redis, settings)
    auth = jwt_auth(settings)
    # The login budget's middleware wraps the auth routes only: at app level it built a Request and asked
    # `is_rate_limited` on every request of every route (a twentieth of a booking's CPU).
    auth_routes = Router(path="/", route_handlers=[AuthController], middleware=[login_rate_limit(settings).middleware])
    api = Router(
        path=API_PREFIX,
        route_handlers=[
            auth_routes,
            UserController,
            PropertyController,
            HostPropertiesController,
            PropertyCalendarController,
            BookingController,
            PropertyReviewsController,
            CalendarFeedController,
            PropertyCalendarSyncController,
            CheckoutController,
            StripeWebhookController,
            ReportController,
            ReportScheduleController,
            HostEarningsController,
            HostMetricsController,
            TicketController,
        ],
    )

    def provide(value: Any) -> Provide:
        return Provide(lambda: value, use_cache=True, sync_to_thread=False)

    async def close_redis() -> None:
        await hub.close()
        await redis.aclose()

    return Litestar(
        route_handlers=[api, metrics_socket, dashboard_router, HealthController, PrometheusController],
        plugins=[sqlalchemy_plugin(engine), problem_details_plugin()],
        on_app_init=[auth.on_app_init],
        middleware=[
            RequestIdMiddleware(),
            PrometheusConfig(app_name="staypulse", prefix="staypulse", group_path=True).middleware,
        ],
        stores={"rate_limit": RedisStore(redis, namespace=f"{settings.redis_prefix}:rate_limit")},
        # Also as app state, for hot handlers that take no dependency (see BookingController.create); the engine
        # for those that use a pooled connection rather than the request's session (`service.db.pooled`), and the
        # property locks, whose per-process queues belong to this app's event loop.
        state=State(
            {"settings": settings, "engine": engine, "property_locks": PropertyLocks(redis, settings.redis_prefix)}
        ),
        dependencies={
            "tokens": provide(TokenIssuer(auth, settings.jwt_ttl_seconds)),
            "settings": provide(settings),
            "redis": provide(redis),
            "hub": provide(hub),
            "stripe_gateway": provide(StripeGateway(settings)),
        },
        exception_handlers={Exception: unexpected_error_response},
        openapi_config=OpenAPIConfig(
            title="StayPulse",
            version="1.0.0",
            description="Booking backend with live host analytics.",
            path="/schema",
            render_plugins=[ScalarRenderPlugin()],
        ),
        on_shutdown=[close_redis],
        logging_config=None,
        before_send=[response_headers_hook(production=settings.is_production)],
        cors_config=CORSConfig(allow_origins=list(settings.cors_allow_origins))
        if settings.cors_allow_origins
        else None,
        request_max_body_size=settings.max_request_body_bytes,
    )

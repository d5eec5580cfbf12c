"""Every error leaves the service as RFC 9457 problem+json, rendered by Litestar's problem details plugin.

Domain code raises the exceptions below (a status and a title, the detail saying what went wrong); framework
exceptions, validation failures, an unreachable database or Redis, and anything unexpected are converted here,
in one place.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import asyncpg
import redis.exceptions
import sqlalchemy.exc
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)

log = logging.getLogger(__name__)


class Problem(ProblemDetailsException):
    """Base of StayPulse's domain errors; subclasses fix the status and the title."""

    status_code = HTTPStatus.BAD_REQUEST
    title_text = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail=detail, status_code=self.status_code, title=self.title_text, extra=extra or None)


class NotFound(Problem):
    status_code = HTTPStatus.NOT_FOUND
    title_text = "Not found"


class Conflict(Problem):
    status_code = HTTPStatus.CONFLICT
    title_text = "Conflict"


class Forbidden(Problem):
    status_code = HTTPStatus.FORBIDDEN
    title_text = "Forbidden"


class Unauthorized(Problem):
    status_code = HTTPStatus.UNAUTHORIZED
    title_text = "Unauthorized"


class InvalidRequest(Problem):
    """A request that is well-formed but breaks a domain rule (dates in the wrong order, say)."""

    status_code = HTTPStatus.UNPROCESSABLE_ENTITY
    title_text = "Invalid request"


class InvalidField(Problem):
    """A field that passed the schema but not a check only the service can make (a time zone that does not
    exist, say); shaped like a schema validation error."""

    status_code = HTTPStatus.BAD_REQUEST
    title_text = "Invalid request body"

    def __init__(self, field: str, message: str, source: str = "body") -> None:
        super().__init__(f"{field}: {message}", errors=[{"field": field, "message": message, "source": source}])


def http_exception_to_problem(exc: HTTPException) -> ProblemDetailsException:
    """Framework errors get the status phrase as title and their message as detail.

    Validation errors also list each offending field under `errors`, so a client can point at it.
    """
    title = HTTPStatus(exc.status_code).phrase
    if isinstance(exc, ValidationException):
        errors = [_field_error(item) for item in exc.extra or []] if isinstance(exc.extra, list) else []
        detail = "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors)
        return ProblemDetailsException(
            status_code=exc.status_code,
            title="Invalid request body" if errors else title,
            detail=detail or exc.detail,
            extra={"errors": errors} if errors else None,
            headers=exc.headers,
        )
    return ProblemDetailsException(
        status_code=exc.status_code, title=title, detail=exc.detail, extra=exc.extra, headers=exc.headers
    )


def _field_error(item: Any) -> dict[str, str]:
    if not isinstance(item, dict):
        return {"field": "", "message": str(item), "source": "body"}
    message = str(item.get("message", "invalid value"))
    # msgspec ends its messages with "- at `$.field`"; the field is reported separately.
    message = message.split(" - at `", 1)[0]
    return {
        "field": str(item.get("key") or ""),
        "message": message,
        "source": str(item.get("source") or "body"),
    }


def unavailable_to_problem(exc: Exception) -> ProblemDetailsException:
    """A database or Redis that cannot be reached is the service's trouble, and temporary: 503, retry later."""
    log.warning("dependency unavailable: %s", type(exc).__name__, exc_info=exc)
    return ProblemDetailsException(
        status_code=HTTPStatus.SERVICE_UNAVAILABLE,
        title="Service unavailable",
        detail="A backing service is unreachable; try again shortly.",
        headers={"Retry-After": "5"},
    )


# Postgres refuses these values whatever the code does: NUL characters, text not in UTF-8, numbers too large.
UNSTORABLE_VALUE_STATES = {
    "22021": "Text may not contain NUL characters.",
    "22P05": "Text is not valid UTF-8.",
    "22003": "A number is out of range.",
}


# Postgres cannot serve us right now, which passes: too many clients, out of memory or disk (class 53), shutting
# down, starting up or a cancelled statement (57), a broken connection (08). asyncpg raises these as plain server
# errors, not as connection failures: raw while connecting, wrapped by SQLAlchemy later, told apart by SQLSTATE.
UNAVAILABLE_STATE_PREFIXES = ("53", "57", "08")


def database_error_to_problem(exc: sqlalchemy.exc.DBAPIError) -> ProblemDetailsException:
    """Values no schema rule catches but Postgres refuses are the client's error (400); a server that cannot take
    us now is 503 like an unreachable one; anything else is ours."""
    sqlstate = str(getattr(exc.orig, "sqlstate", ""))
    message = UNSTORABLE_VALUE_STATES.get(sqlstate)
    if message is not None:
        return ProblemDetailsException(status_code=HTTPStatus.BAD_REQUEST, title="Bad Request", detail=message)
    if isinstance(exc, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)) or sqlstate.startswith(
        UNAVAILABLE_STATE_PREFIXES
    ):
        return unavailable_to_problem(exc)
    log.error("database error", exc_info=exc)
    return ProblemDetailsException(
        status_code=HTTPStatus.INTERNAL_SERVER_ERROR,
        title="Internal server error",
        detail="Something went wrong on our side; it has been logged.",
    )


def unexpected_error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Last resort: log the bug with its request id and answer a problem without internals."""
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return ProblemDetailsException(
        status_code=HTTPStatus.INTERNAL_SERVER_ERROR,
        title="Internal server error",
        detail="Something went wrong on our side; it has been logged.",
    ).to_response(request)


def problem_details_plugin() -> ProblemDetailsPlugin:
    return ProblemDetailsPlugin(
        ProblemDetailsConfig(
            exception_to_problem_detail_map={
                HTTPException: http_exception_to_problem,
                sqlalchemy.exc.DBAPIError: database_error_to_problem,
                sqlalchemy.exc.TimeoutError: unavailable_to_problem,
                # Hot paths run statements on the asyncpg connection (service.db.pooled, driver_connection), so
                # a connection lost there surfaces as asyncpg's own error rather than SQLAlchemy's.
                asyncpg.PostgresConnectionError: unavailable_to_problem,
                asyncpg.InterfaceError: unavailable_to_problem,
                asyncpg.exceptions.InsufficientResourcesError: unavailable_to_problem,
                asyncpg.exceptions.OperatorInterventionError: unavailable_to_problem,
                OSError: unavailable_to_problem,
                redis.exceptions.ConnectionError: unavailable_to_problem,
                redis.exceptions.TimeoutError: unavailable_to_problem,
            }
        )
    )

"""Hostile input: schemathesis generates requests for every operation of our own OpenAPI document, as a guest
and as a host, over real HTTP. No input may cause a 5xx, and documented responses must match their schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import given
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.core.result import Err

from service.settings import Settings
from tests.api import PASSWORD, unique_email
from tests.fuzzing import fuzz_settings
from tests.live_server import live_server

EXAMPLES_PER_OPERATION = 12


@pytest.fixture(scope="module")
def base_url(settings: Settings) -> Iterator[str]:
    with live_server(settings) as url:
        yield url


@pytest.fixture(scope="module")
def api_schema(base_url: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{base_url}/schema/openapi.json")


def bearer(base_url: str, roles: list[str]) -> dict[str, str]:
    email = unique_email("fuzz")
    with httpx.Client(base_url=base_url) as http:
        http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD, "name": "F", "roles": roles})
        token = http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def guest_headers(base_url: str) -> dict[str, str]:
    return bearer(base_url, ["guest"])


@pytest.fixture(scope="module")
def host_headers(base_url: str) -> dict[str, str]:
    return bearer(base_url, ["guest", "host"])


CHECKS = [not_a_server_error, response_schema_conformance]


def fuzz_every_operation(api_schema: schemathesis.BaseSchema, headers: dict[str, str]) -> list[str]:
    """Run each operation's generated cases; answers the labels of the operations that failed, with why."""
    failures = []
    for result in api_schema.get_all_operations():
        if isinstance(result, Err):
            failures.append(f"unreadable operation: {result.err()}")
            continue
        operation = result.ok()

        @given(case=operation.as_strategy())
        @fuzz_settings(EXAMPLES_PER_OPERATION)
        def run(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
    return failures


def test_no_input_breaks_the_api_as_a_guest(api_schema: schemathesis.BaseSchema, guest_headers: dict[str, str]) -> None:
    assert fuzz_every_operation(api_schema, guest_headers) == []


def test_no_input_breaks_the_api_as_a_host(api_schema: schemathesis.BaseSchema, host_headers: dict[str, str]) -> None:
    assert fuzz_every_operation(api_schema, host_headers) == []

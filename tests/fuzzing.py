"""The one hypothesis profile of the fuzz tests: a fixed number of examples, derandomized so a run is repeatable,
no deadline or health checks (examples go through a real server, whose speed varies), no example database."""

from __future__ import annotations

from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings


def fuzz_settings(examples: int) -> hypothesis_settings:
    return hypothesis_settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )

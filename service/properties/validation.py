"""Checks that need reference data: real IANA time zones, ISO 4217 currencies, ISO 3166 countries."""

from __future__ import annotations

import functools
import zoneinfo

import pycountry

from service.errors import InvalidField


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_reference_fields(*, timezone: str | None, currency: str | None, country: str | None) -> None:
    if timezone is not None and timezone not in _time_zones():
        raise InvalidField("timezone", f"{timezone!r} is not an IANA time zone (e.g. 'Europe/Lisbon')")
    if currency is not None and pycountry.currencies.get(alpha_3=currency) is None:
        raise InvalidField("currency", f"{currency!r} is not an ISO 4217 currency code")
    if country is not None and pycountry.countries.get(alpha_2=country) is None:
        raise InvalidField("country", f"{country!r} is not an ISO 3166 country code")

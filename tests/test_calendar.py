"""A host sets prices and closes dates; a guest reads the calendar and asks for a quote."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.api import Client, assert_problem, create_property, days_ahead, signed_up_host


def next_weekday(weekday: int, after_days: int = 30) -> dt.date:
    day = days_ahead(after_days)
    return day + dt.timedelta(days=(weekday - day.weekday()) % 7)


async def put_rules(client: Client, prop: dict[str, Any], headers: dict[str, str], **rules: Any) -> dict[str, Any]:
    response = await client.put(f"/api/v1/properties/{prop['id']}/pricing-rules", json=rules, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_pricing_rules_replace_as_a_set_and_count_changed_rows(client: Client) -> None:
    headers = await signed_up_host(client)
    prop = await create_property(client, headers)
    rules = {
        "date_overrides": [{"start": "2099-07-01", "end": "2099-08-01", "nightly_price": 25_000}],
        "weekday_prices": [{"weekday": 4, "nightly_price": 14_000}, {"weekday": 5, "nightly_price": 14_000}],
        "stay_discounts": [{"min_nights": 7, "percent": 10}],
    }
    assert (await put_rules(client, prop, headers, **rules))["changed"] == 4
    same = await put_rules(client, prop, headers, **rules)
    assert same["changed"] == 0
    assert same["rules"] == rules
    fewer = await put_rules(client, prop, headers, **{**rules, "stay_discounts": []})
    assert fewer["changed"] == 1
    public = await client.get(f"/api/v1/properties/{prop['id']}/pricing-rules")
    assert public.json()["stay_discounts"] == []


async def test_overlapping_or_duplicate_rules_are_refused_and_nothing_changes(client: Client) -> None:
    headers = await signed_up_host(client)
    prop = await create_property(client, headers)
    url = f"/api/v1/properties/{prop['id']}/pricing-rules"
    overlapping = {
        "date_overrides": [
            {"start": "2099-07-01", "end": "2099-07-10", "nightly_price": 1},
            {"start": "2099-07-09", "end": "2099-07-20", "nightly_price": 2},
        ]
    }
    assert_problem(await client.put(url, json=overlapping, headers=headers), 400)
    twice = {"weekday_prices": [{"weekday": 1, "nightly_price": 1}, {"weekday": 1, "nightly_price": 2}]}
    assert_problem(await client.put(url, json=twice, headers=headers), 400)
    backwards = {"date_overrides": [{"start": "2099-07-10", "end": "2099-07-01", "nightly_price": 1}]}
    assert_problem(await client.put(url, json=backwards, headers=headers), 400)
    assert_problem(
        await client.put(url, json={"weekday_prices": [{"weekday": 7, "nightly_price": 1}]}, headers=headers), 400
    )
    assert (await client.get(url)).json() == {"date_overrides": [], "weekday_prices": [], "stay_discounts": []}


async def test_quote_follows_the_rules_across_a_boundary_and_a_weekend(client: Client) -> None:
    headers = await signed_up_host(client)
    prop = await create_property(client, headers, nightly_price=10_000, cleaning_fee=3_000, tax_rate_bps=500)
    thursday = next_weekday(3)
    sunday = thursday + dt.timedelta(days=3)
    await put_rules(
        client,
        prop,
        headers,
        weekday_prices=[{"weekday": 4, "nightly_price": 15_000}, {"weekday": 5, "nightly_price": 15_000}],
        date_overrides=[
            {"start": sunday.isoformat(), "end": (sunday + dt.timedelta(days=2)).isoformat(), "nightly_price": 8_000}
        ],
    )
    response = await client.get(
        f"/api/v1/properties/{prop['id']}/quote",
        params={"check_in": thursday.isoformat(), "check_out": (thursday + dt.timedelta(days=5)).isoformat()},
    )
    assert response.status_code == 200, response.text
    quote = response.json()
    assert [n["price"] for n in quote["nightly"]] == [10_000, 15_000, 15_000, 8_000, 8_000]
    assert quote["accommodation"] == 56_000
    assert quote["cleaning_fee"] == 3_000
    assert quote["service_fee"] == 5_900  # default 10% of 59_000
    assert quote["taxes"] == 2_950  # 5% of 59_000
    assert quote["total"] == 59_000 + 5_900 + 2_950
    assert quote["currency"] == "EUR"


async def test_blocks_close_dates_in_availability_and_quotes(client: Client) -> None:
    headers = await signed_up_host(client)
    prop = await create_property(client, headers, min_nights=1)
    base = f"/api/v1/properties/{prop['id']}"
    start = days_ahead(40)
    block = await client.post(
        f"{base}/blocks",
        json={"start": start.isoformat(), "end": (start + dt.timedelta(days=3)).isoformat(), "reason": "painting"},
        headers=headers,
    )
    assert block.status_code == 201
    window = {"from": (start - dt.timedelta(days=1)).isoformat(), "to": (start + dt.timedelta(days=4)).isoformat()}
    days = (await client.get(f"{base}/availability", params=window)).json()["days"]
    assert [(d["available"], d["reason"]) for d in days] == [
        (True, None),
        (False, "blocked"),
        (False, "blocked"),
        (False, "blocked"),
        (True, None),
    ]
    assert all(d["price"] == 10_000 for d in days)
    stay = {"check_in": start.isoformat(), "check_out": (start + dt.timedelta(days=1)).isoformat()}
    assert_problem(await client.get(f"{base}/quote", params=stay), 409)

    listed = (await client.get(f"{base}/blocks", params=window, headers=headers)).json()
    assert [b["reason"] for b in listed] == ["painting"]
    assert (await client.delete(f"{base}/blocks/{block.json()['id']}", headers=headers)).status_code == 204
    assert_problem(await client.delete(f"{base}/blocks/{block.json()['id']}", headers=headers), 404)
    assert (await client.get(f"{base}/quote", params=stay)).status_code == 200


async def test_a_gap_shorter_than_the_minimum_stay_is_not_available(client: Client) -> None:
    headers = await signed_up_host(client)
    prop = await create_property(client, headers, min_nights=3)
    base = f"/api/v1/properties/{prop['id']}"
    start = days_ahead(50)
    for offset in (0, 4):  # blocks leave a two-night gap between them
        body = {
            "start": (start + dt.timedelta(days=offset)).isoformat(),
            "end": (start + dt.timedelta(days=offset + 2)).isoformat(),
        }
        assert (await client.post(f"{base}/blocks", json=body, headers=headers)).status_code == 201
    window = {"from": start.isoformat(), "to": (start + dt.timedelta(days=8)).isoformat()}
    days = (await client.get(f"{base}/availability", params=window)).json()["days"]
    assert [d["reason"] for d in days] == [
        "blocked",
        "blocked",
        "min_nights",
        "min_nights",
        "blocked",
        "blocked",
        None,
        None,
    ]


async def test_past_days_are_not_available(client: Client) -> None:
    headers = await signed_up_host(client)
    prop = await create_property(client, headers, timezone="Pacific/Kiritimati")
    today_there = dt.datetime.now(dt.timezone(dt.timedelta(hours=14))).date()
    window = {
        "from": (today_there - dt.timedelta(days=2)).isoformat(),
        "to": (today_there + dt.timedelta(days=1)).isoformat(),
    }
    days = (await client.get(f"/api/v1/properties/{prop['id']}/availability", params=window)).json()["days"]
    assert [d["reason"] for d in days] == ["past", "past", None]


async def test_bad_stays_are_refused_with_the_reason(client: Client) -> None:
    headers = await signed_up_host(client)
    prop = await create_property(client, headers, max_guests=2, min_nights=2, max_nights=10)
    url = f"/api/v1/properties/{prop['id']}/quote"
    day = days_ahead(30)

    def stay(nights: int, start: dt.date = day, guests: int = 1) -> dict[str, str | int]:
        return {
            "check_in": start.isoformat(),
            "check_out": (start + dt.timedelta(days=nights)).isoformat(),
            "guests": guests,
        }

    cases = [
        (stay(0), 422, "check_out"),
        (stay(-3), 422, "check_out"),
        (stay(366), 422, "check_out"),
        (stay(3, start=days_ahead(-3)), 422, "check_in"),
        (stay(3, guests=3), 422, "guests"),
        (stay(1), 422, "check_out"),
        (stay(11), 422, "check_out"),
    ]
    for params, status, field in cases:
        assert assert_problem(await client.get(url, params=params), status)["field"] == field, params
    assert_problem(await client.get(url, params={"check_in": "tomorrow", "check_out": "2099-01-01"}), 400)
    assert_problem(
        await client.get("/api/v1/properties/00000000-0000-0000-0000-000000000000/quote", params=stay(3)), 404
    )


async def test_blocks_refuse_bad_ranges(client: Client) -> None:
    headers = await signed_up_host(client)
    prop = await create_property(client, headers)
    url = f"/api/v1/properties/{prop['id']}/blocks"
    day = days_ahead(10)
    backwards = {"start": day.isoformat(), "end": (day - dt.timedelta(days=1)).isoformat()}
    assert_problem(await client.post(url, json=backwards, headers=headers), 422)
    past = {"start": days_ahead(-10).isoformat(), "end": days_ahead(-5).isoformat()}
    assert_problem(await client.post(url, json=past, headers=headers), 422)
    missing = "/api/v1/properties/00000000-0000-0000-0000-000000000000/blocks"
    assert_problem(await client.post(missing, json={"start": "2099-01-01", "end": "2099-01-02"}, headers=headers), 404)

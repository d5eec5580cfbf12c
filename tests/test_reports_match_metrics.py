"""A host's earnings report and the live metrics API tell the same story for the same window: both follow
DESIGN.md's metric definitions, one computed by polars from the bookings, the other kept by the event pipeline.

The story goes through the real parts: bookings paid on localstripe and confirmed by signed webhooks, one
cancelled with a partial refund by the moderate policy, then the pipeline relays and aggregates every event.
"""

from __future__ import annotations

import io
from typing import Any

from python_calamine import CalamineWorkbook

from service.demo.card_payment import pay
from service.settings import Settings
from tests.api import Client, book, create_property, days_ahead, register
from tests.api import login as log_in
from tests.payments import checkout, deliver, event
from tests.pipeline import pipeline_for

COMPARED = (
    "bookings_confirmed",
    "bookings_cancelled",
    "bookings_expired",
    "cancellation_rate",
    "average_length_of_stay",
    "gross_earnings",
    "refunds",
    "host_fees",
    "net_earnings",
    "booked_nights",
    "available_nights",
    "accommodation_revenue",
)
MONEY = {"gross_earnings", "refunds", "host_fees", "net_earnings", "accommodation_revenue"}


async def paid_booking(
    client: Client, settings: Settings, guest: dict[str, str], prop: dict[str, Any], ahead: int
) -> str:
    booking = (await book(client, guest, prop, days_ahead(ahead), 2)).json()
    intent = await pay(settings, (await checkout(client, guest, booking["id"]))["payment_intent_id"])
    assert (await deliver(client, settings, event("payment_intent.succeeded", intent))).status_code == 200
    booking_id: str = booking["id"]
    return booking_id


async def test_report_totals_equal_the_metrics_api(client: Client, settings: Settings) -> None:
    host_user = await register(client, roles=["guest", "host"])
    host = await log_in(client, host_user["email"])
    prop = await create_property(client, host, cancellation_policy="moderate", cleaning_fee=2_500)
    guest = await log_in(client, (await register(client))["email"])
    kept = await paid_booking(client, settings, guest, prop, 10)
    cancelled = await paid_booking(client, settings, guest, prop, 3)
    await paid_booking(client, settings, guest, prop, 20)
    refund = await client.post(f"/api/v1/bookings/{cancelled}/cancel", headers=guest)
    assert refund.status_code == 200, refund.text
    assert 0 < refund.json()["refund_due"] < refund.json()["booking"]["price"]["total"]  # moderate: half back
    assert kept
    async with pipeline_for(settings) as pipeline:
        await pipeline.drain()

    window = {"from": days_ahead(-1).isoformat(), "to": days_ahead(30).isoformat()}
    metrics = (await client.get("/api/v1/hosts/me/metrics", params=window, headers=host)).json()["total"]
    export = await client.get("/api/v1/hosts/me/earnings.xlsx", params=window, headers=host)
    assert export.status_code == 200, export.text
    summary = CalamineWorkbook.from_filelike(io.BytesIO(export.content)).get_sheet_by_name("Summary").to_python()
    header_index = next(index for index, row in enumerate(summary) if row[0] == "Currency")
    header = [str(cell).strip().lower().replace(" ", "_") for cell in summary[header_index]]
    [eur] = [dict(zip(header, row, strict=False)) for row in summary[header_index + 1 :] if row[0] == "EUR"]
    figures = {name: float(str(eur[name])) for name in COMPARED}  # numeric cells: money in euros, counts

    figures["average_lead_time_days"] = float(str(eur["average_lead_time_days"]))
    report = {name: round(value * 100) if name in MONEY else value for name, value in figures.items()}
    assert report == {name: metrics[name] for name in (*COMPARED, "average_lead_time_days")}
    assert metrics["refunds"] > 0

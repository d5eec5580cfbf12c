"""A guest pays for a hold through Stripe (localstripe here), Stripe tells us by signed webhook, refunds go back
through Stripe by the cancellation policy, and a lost webhook is caught up by reconciliation."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import uuid
from typing import Any

import pytest

from service.auth.tokens import CurrentUser
from service.bookings.service import cancel_and_refund
from service.demo.card_payment import pay
from service.demo.localstripe import free_port
from service.notifications.delivery import deliver_due_notifications
from service.notifications.senders import senders_for
from service.payments.gateway import StripeGateway
from service.payments.reconciliation import reconcile_payments
from service.payments.refunds import retry_unsettled_refunds
from service.settings import Settings
from tests.api import Client, assert_problem, book, create_property, days_ahead, register, signed_up, signed_up_host
from tests.api import login as log_in
from tests.db import event_types, execute, payloads, worker_sessions
from tests.inboxes import Mailbox, SmsInbox
from tests.invariants import assert_bookings_consistent
from tests.payments import checkout, deliver, event, signature, stripe_refunds

Listing = tuple[dict[str, Any], dict[str, str], dict[str, str]]


@pytest.fixture
async def listing(client: Client) -> Listing:
    """A moderate-policy property, its host's headers and a guest's headers."""
    host = await signed_up_host(client)
    prop = await create_property(client, host, cancellation_policy="moderate")
    _, guest = await signed_up(client)
    return prop, host, guest


async def booking_status(client: Client, headers: dict[str, str], booking_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/bookings/{booking_id}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def paid_booking(
    client: Client, settings: Settings, listing: Listing, start: dt.date
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A hold, checked out and paid on Stripe; answers the booking and the succeeded PaymentIntent."""
    prop, _, guest = listing
    booking = (await book(client, guest, prop, start, 2)).json()
    started = await checkout(client, guest, booking["id"])
    intent = await pay(settings, started["payment_intent_id"])
    return booking, intent


async def expire_hold(settings: Settings, booking_id: str) -> None:
    """Time passing: the hold ran out and the worker expired it."""
    await execute(
        settings,
        "UPDATE bookings SET hold_expires_at = now() - interval '1 minute', status = 'EXPIRED', ended_at = now() "
        "WHERE id = :id",
        id=booking_id,
    )


async def test_guest_pays_and_the_booking_is_confirmed_end_to_end(
    client: Client, settings: Settings, mailbox: Mailbox, sms_inbox: SmsInbox
) -> None:
    host_user = await register(client, roles=["guest", "host"])
    host = await log_in(client, host_user["email"])
    prop = await create_property(client, host, title="Harbour loft")
    guest_user = await register(client, phone="+351912345678")
    guest = await log_in(client, guest_user["email"])
    booking = (await book(client, guest, prop, days_ahead(20), 3)).json()

    started = await checkout(client, guest, booking["id"])
    assert started["publishable_key"] == settings.stripe_publishable_key
    assert started["client_secret"]
    assert started["amount"] == booking["price"]["total"]
    assert await checkout(client, guest, booking["id"]) == started  # the same PaymentIntent again

    intent = await pay(settings, started["payment_intent_id"])
    assert intent["metadata"] == {"booking_id": booking["id"]}
    assert intent["currency"] == "eur"
    response = await deliver(client, settings, event("payment_intent.succeeded", intent))
    assert response.status_code == 200, response.text

    assert (await booking_status(client, guest, booking["id"]))["status"] == "CONFIRMED"
    assert await event_types(settings, booking["id"]) == ["booking.created", "booking.confirmed", "payment.succeeded"]
    [succeeded] = await payloads(settings, booking["id"], "payment.succeeded")
    assert succeeded["payment_intent_id"] == intent["id"]
    assert succeeded["amount"] == booking["price"]["total"]
    assert succeeded["status"] == "CONFIRMED"

    async with worker_sessions(settings) as sessions:
        await deliver_due_notifications(sessions, senders_for(settings))
    [email] = mailbox.to(guest_user["email"])
    assert email["Subject"] == "Booking confirmed: Harbour loft"
    assert booking["id"] in email.get_payload()
    assert len(mailbox.to(host_user["email"])) == 1
    [sms] = sms_inbox.to("+351912345678")
    assert booking["id"] in sms


async def test_checkout_is_for_the_guest_of_a_pending_booking(client: Client, listing: Listing) -> None:
    prop, host, guest = listing
    booking = (await book(client, guest, prop, days_ahead(25), 2)).json()
    url = f"/api/v1/bookings/{booking['id']}/checkout"
    _, stranger = await signed_up(client)
    assert_problem(await client.post(url, headers=stranger), 404)
    assert_problem(await client.post(url, headers=host), 404)
    assert_problem(await client.post(url), 401)
    await client.post(f"/api/v1/bookings/{booking['id']}/cancel", headers=guest)
    assert_problem(await client.post(url, headers=guest), 409)


async def test_forged_or_missing_signature_is_400_and_changes_nothing(
    client: Client, settings: Settings, listing: Listing
) -> None:
    booking, intent = await paid_booking(client, settings, listing, days_ahead(30))
    payload = event("payment_intent.succeeded", intent)
    url = "/api/v1/webhooks/stripe"
    forged = signature("whsec_not_ours", payload)
    assert_problem(await client.post(url, content=payload, headers={"Stripe-Signature": forged}), 400)
    assert_problem(await client.post(url, content=payload), 400)
    stale = signature(
        settings.stripe_webhook_secret, payload, timestamp=int(dt.datetime.now(dt.UTC).timestamp()) - 3600
    )
    assert_problem(await client.post(url, content=payload, headers={"Stripe-Signature": stale}), 400)
    tampered = payload.replace(b'"succeeded"', b'"canceled"')
    good_for_original = signature(settings.stripe_webhook_secret, payload)
    assert_problem(await client.post(url, content=tampered, headers={"Stripe-Signature": good_for_original}), 400)
    _, _, guest = listing
    assert (await booking_status(client, guest, booking["id"]))["status"] == "PENDING"
    assert await event_types(settings, booking["id"]) == ["booking.created"]


async def test_replayed_and_shuffled_events_apply_once(client: Client, settings: Settings, listing: Listing) -> None:
    _, _, guest = listing
    booking, intent = await paid_booking(client, settings, listing, days_ahead(35))
    failed = {
        **intent,
        "status": "requires_payment_method",
        "last_payment_error": {"message": "Your card was declined."},
    }
    succeeded = event("payment_intent.succeeded", intent)
    deliveries = [succeeded] * 10 + [event("payment_intent.payment_failed", failed)] * 3
    deliveries += [event("customer.created", {"id": "cus_1", "object": "customer"})]
    random.Random(5).shuffle(deliveries)
    for payload in deliveries:
        assert (await deliver(client, settings, payload)).status_code == 200
    assert (await booking_status(client, guest, booking["id"]))["status"] == "CONFIRMED"
    events = await event_types(settings, booking["id"])
    assert events.count("booking.confirmed") == 1
    assert events.count("payment.succeeded") == 1
    await assert_bookings_consistent(settings, [booking["id"]])


async def test_payment_failure_keeps_the_hold_with_its_reason(
    client: Client, settings: Settings, listing: Listing
) -> None:
    prop, _, guest = listing
    booking = (await book(client, guest, prop, days_ahead(38), 2)).json()
    started = await checkout(client, guest, booking["id"])
    declined = {
        "id": started["payment_intent_id"],
        "object": "payment_intent",
        "status": "requires_payment_method",
        "amount": started["amount"],
        "currency": "eur",
        "metadata": {"booking_id": booking["id"]},
        "last_payment_error": {"code": "card_declined", "message": "Your card was declined."},
    }
    assert (await deliver(client, settings, event("payment_intent.payment_failed", declined))).status_code == 200
    assert (await booking_status(client, guest, booking["id"]))["status"] == "PENDING"
    again = await checkout(client, guest, booking["id"])
    assert again["failure_reason"] == "Your card was declined."
    assert again["payment_intent_id"] == started["payment_intent_id"]
    assert await event_types(settings, booking["id"]) == ["booking.created", "payment.failed"]
    intent = await pay(settings, started["payment_intent_id"])  # the guest retries with another card
    assert (await deliver(client, settings, event("payment_intent.succeeded", intent))).status_code == 200
    assert (await booking_status(client, guest, booking["id"]))["status"] == "CONFIRMED"


async def test_payment_after_the_hold_ran_out_confirms_when_the_dates_are_free(
    client: Client, settings: Settings, listing: Listing
) -> None:
    _, _, guest = listing
    booking, intent = await paid_booking(client, settings, listing, days_ahead(40))
    await expire_hold(settings, booking["id"])
    assert (await deliver(client, settings, event("payment_intent.succeeded", intent))).status_code == 200
    assert (await booking_status(client, guest, booking["id"]))["status"] == "CONFIRMED"
    assert await stripe_refunds(settings, intent["id"]) == []
    events = await event_types(settings, booking["id"])
    assert events == ["booking.created", "booking.confirmed", "payment.succeeded"]


async def test_payment_after_the_hold_ran_out_is_refunded_when_the_dates_are_taken(
    client: Client, settings: Settings, listing: Listing
) -> None:
    prop, _, guest = listing
    start = days_ahead(45)
    booking, intent = await paid_booking(client, settings, listing, start)
    await expire_hold(settings, booking["id"])
    _, other_guest = await signed_up(client)
    assert (await book(client, other_guest, prop, start, 2)).status_code == 201
    payload = event("payment_intent.succeeded", intent)
    for _ in range(10):  # Stripe retrying: still one refund
        assert (await deliver(client, settings, payload)).status_code == 200
    seen = await booking_status(client, guest, booking["id"])
    assert seen["status"] == "CANCELLED"
    assert seen["cancelled_by"] == "system"
    assert seen["refunded_amount"] == booking["price"]["total"]
    assert await stripe_refunds(settings, intent["id"]) == [booking["price"]["total"]]
    events = await event_types(settings, booking["id"])
    assert events == ["booking.created", "booking.cancelled", "payment.succeeded", "payment.refunded"]
    [refunded] = await payloads(settings, booking["id"], "payment.refunded")
    assert refunded["amount"] == refunded["refunded_amount"] == booking["price"]["total"]
    assert refunded["payment_intent_id"] == intent["id"]
    assert refunded["refund_id"]
    assert dt.datetime.fromisoformat(refunded["refunded_at"]).utcoffset() == dt.timedelta(0)
    await assert_bookings_consistent(settings, [booking["id"]])


@pytest.mark.parametrize(
    ("policy", "days_before", "who", "percent"),
    [
        ("flexible", 1, "guest", 100),
        ("flexible", 0, "guest", 0),
        ("moderate", 5, "guest", 100),
        ("moderate", 4, "guest", 50),
        ("moderate", 1, "guest", 50),
        ("moderate", 0, "guest", 0),
        ("strict", 14, "guest", 100),
        ("strict", 13, "guest", 50),
        ("strict", 7, "guest", 50),
        ("strict", 6, "guest", 0),
        ("strict", 0, "host", 100),
    ],
)
async def test_cancelling_a_paid_stay_refunds_through_stripe_by_policy(
    client: Client, settings: Settings, policy: str, days_before: int, who: str, percent: int
) -> None:
    host = await signed_up_host(client)
    prop = await create_property(client, host, cancellation_policy=policy)
    _, guest = await signed_up(client)
    booking, intent = await paid_booking(client, settings, (prop, host, guest), days_ahead(days_before + 20))
    assert (await deliver(client, settings, event("payment_intent.succeeded", intent))).status_code == 200
    # "Days before check-in" counts in the property's zone: move the stay relative to its local today.
    await execute(
        settings,
        "UPDATE bookings SET check_in = (now() AT TIME ZONE 'Europe/Lisbon')::date + CAST(:days AS integer), "
        "check_out = (now() AT TIME ZONE 'Europe/Lisbon')::date + CAST(:days AS integer) + 2 WHERE id = :id",
        days=days_before,
        id=booking["id"],
    )
    url = f"/api/v1/bookings/{booking['id']}/cancel"
    response = await client.post(url, headers=host if who == "host" else guest)
    assert response.status_code == 200, response.text
    total = booking["price"]["total"]
    expected = -(-total * percent // 100)
    body = response.json()
    assert body["refund_due"] == expected
    assert body["booking"]["refunded_amount"] == expected
    assert await stripe_refunds(settings, intent["id"]) == ([expected] if expected else [])
    if expected:
        assert body["refund"]["status"] == "succeeded"
        [refunded] = await payloads(settings, booking["id"], "payment.refunded")
        assert refunded["amount"] == refunded["refunded_amount"] == expected
    else:
        assert body["refund"] is None
    assert_problem(await client.post(url, headers=guest), 409)  # a second cancel refunds nothing more
    assert await stripe_refunds(settings, intent["id"]) == ([expected] if expected else [])
    await assert_bookings_consistent(settings, [booking["id"]])


async def test_reconciliation_catches_up_a_lost_webhook(client: Client, settings: Settings, listing: Listing) -> None:
    _, _, guest = listing
    booking, intent = await paid_booking(client, settings, listing, days_ahead(60))
    async with worker_sessions(settings) as sessions:
        gateway = StripeGateway(settings)
        await reconcile_payments(sessions, gateway, quiet_for=dt.timedelta(0))
        assert (await booking_status(client, guest, booking["id"]))["status"] == "CONFIRMED"
        # The webhook arriving late, and another round, change nothing more.
        assert (await deliver(client, settings, event("payment_intent.succeeded", intent))).status_code == 200
        await reconcile_payments(sessions, gateway, quiet_for=dt.timedelta(0))
    events = await event_types(settings, booking["id"])
    assert events == ["booking.created", "booking.confirmed", "payment.succeeded"]


async def test_a_refund_stripe_could_not_take_is_sent_by_the_worker_once(
    client: Client, settings: Settings, listing: Listing
) -> None:
    _, host, guest = listing
    booking, intent = await paid_booking(client, settings, listing, days_ahead(70))
    assert (await deliver(client, settings, event("payment_intent.succeeded", intent))).status_code == 200
    stripe_down = StripeGateway(dataclasses.replace(settings, stripe_api_base=f"http://127.0.0.1:{free_port()}"))
    host_user = (await client.get("/api/v1/users/me", headers=host)).json()
    as_host = CurrentUser(id=uuid.UUID(host_user["id"]), roles=frozenset(host_user["roles"]))
    async with worker_sessions(settings) as sessions:
        async with sessions() as session:
            cancelled = await cancel_and_refund(session, stripe_down, uuid.UUID(booking["id"]), as_host)
        assert cancelled.booking.status == "CANCELLED"  # the cancellation stands without Stripe
        assert cancelled.refund is not None
        assert cancelled.refund.status == "requested"
        assert cancelled.refund.last_error
        assert await stripe_refunds(settings, intent["id"]) == []
        gateway = StripeGateway(settings)
        await retry_unsettled_refunds(sessions, gateway)
        await retry_unsettled_refunds(sessions, gateway)
    total = booking["price"]["total"]
    assert await stripe_refunds(settings, intent["id"]) == [total]
    seen = await booking_status(client, guest, booking["id"])
    assert seen["refunded_amount"] == total
    assert len(await payloads(settings, booking["id"], "payment.refunded")) == 1
    await assert_bookings_consistent(settings, [booking["id"]])


async def test_an_unknown_event_is_acknowledged_and_ignored(client: Client, settings: Settings) -> None:
    payload = event("invoice.paid", {"id": "in_1", "object": "invoice"})
    response = await deliver(client, settings, payload)
    assert response.status_code == 200
    assert json.loads(response.content) == {"received": True}

"""The event pipeline end to end: outbox -> relay -> stream -> aggregators -> metrics rows, under failures.

These tests use `own_stack` (a database and Redis prefix of their own), since they judge every outbox row and run
`metrics verify` over the whole database.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import random
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
from click.testing import CliRunner
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.aggregator import CHURNED_TABLES, trim_consumed, trim_point
from ingest.apply import apply_batch
from ingest.contributions import METRIC_COLUMNS
from ingest.pg import connect
from ingest.recompute import rebuild
from ingest.relay import Wakeup, relay_once, take_lead
from ingest.streams import (
    EVENTS_GROUP,
    OutboxMessage,
    dead_letter_stream,
    decode,
    events_stream,
    host_updates_stream,
)
from ingest.vacuum import EVERY_ROWS
from service.bookings.lifecycle import booking_event_fields
from service.bookings.models import Booking
from service.cli import main
from service.embedded import EmbeddedRedis
from service.outbox import record_event
from service.settings import Settings
from tests.api import Client, book, create_property, days_ahead, signed_up, signed_up_host
from tests.conftest import Stack
from tests.db import confirm, execute, expire_hold, run
from tests.invariants import assert_end_state, metrics_differences, pipeline_backlog
from tests.pipeline import Pipeline, pipeline_for, pipeline_jobs
from tests.processes import environment_for
from tests.waiting import eventually

TIMEZONES = ("Europe/Lisbon", "America/New_York", "Asia/Tokyo", "Pacific/Auckland")


async def insert_event(connection: asyncpg.Connection) -> int:
    return int(
        await connection.fetchval(
            "INSERT INTO outbox_events (event_id, type, v, host_id, property_id, payload) "
            "VALUES ($1, 'test.ping', 1, $2, $2, '{}') RETURNING id",
            uuid.uuid4(),
            uuid.uuid4(),
        )
    )


async def stream_fields(pipeline: Pipeline, stream: str) -> list[dict[bytes, bytes]]:
    entries: Any = await pipeline.redis.xrange(stream)
    return [fields for _, fields in entries]


async def stream_seqs(pipeline: Pipeline) -> list[int]:
    return [decode(fields[b"e"]).seq for fields in await stream_fields(pipeline, events_stream(pipeline.settings))]


async def unpublished(settings: Settings) -> int:
    return int((await execute(settings, "SELECT count(*) FROM outbox_events WHERE published_at IS NULL"))[0][0])


async def test_late_commit_is_published_after_the_rows_that_overtook_it(own_stack: Stack) -> None:
    settings = own_stack.settings
    early, late = await connect(settings), await connect(settings)
    try:
        async with pipeline_for(settings) as pipeline:
            early_tx = early.transaction()
            await early_tx.start()
            first = await insert_event(early)  # takes the lower id, commits last
            async with late.transaction():
                second = await insert_event(late)
            assert first < second
            assert (await pipeline.relay_once()).count == 1
            assert await stream_seqs(pipeline) == [second]
            await early_tx.commit()
            assert (await pipeline.relay_once()).count == 1
            assert await stream_seqs(pipeline) == [second, first]
            assert await unpublished(settings) == 0
    finally:
        await early.close()
        await late.close()


async def test_commit_wakes_the_relay_through_notify(own_stack: Stack) -> None:
    wakeup = Wakeup()
    await wakeup.listen(own_stack.settings)
    connection = await connect(own_stack.settings)
    try:
        async with connection.transaction():
            await insert_event(connection)
            assert not wakeup.event.is_set()  # nothing is visible before the commit, so nothing wakes
        await asyncio.wait_for(wakeup.event.wait(), timeout=10)
    finally:
        await connection.close()
        await wakeup.close()


async def test_one_relay_leads_and_another_takes_over_when_its_connection_ends(own_stack: Stack) -> None:
    """The relay lock is held by one relay's connection at a time; when that connection ends (the relay stopped or
    crashed), another relay takes it and carries on where the first stopped: each row once, in id order."""
    settings = own_stack.settings
    connection = await connect(settings)
    relays = [await connect(settings) for _ in range(3)]
    try:
        ids = [await insert_event(connection) for _ in range(300)]
        async with pipeline_for(settings) as pipeline:
            assert [await take_lead(relay) for relay in relays] == [True, False, False]
            assert (await relay_once(relays[0], pipeline.redis, settings, batch_size=40)).count == 40
            await relays[0].close()
            await eventually(lambda: take_lead(relays[1]), "the second relay takes the lead")
            assert not await take_lead(relays[2])
            while await unpublished(settings):
                await relay_once(relays[1], pipeline.redis, settings, batch_size=40)
            assert await stream_seqs(pipeline) == ids
    finally:
        for open_connection in [connection, *relays]:
            await open_connection.close()


async def test_a_round_above_an_id_leaves_older_rows_to_the_sweep(own_stack: Stack) -> None:
    """The relay's rounds look above its newest id minus LATE_IDS; a row committed further behind waits for the
    sweep (`after_id` 0), which finds it."""
    connection = await connect(own_stack.settings)
    try:
        late, newer = await insert_event(connection), await insert_event(connection)
    finally:
        await connection.close()
    async with pipeline_for(own_stack.settings) as pipeline:
        round_above = await pipeline.relay_once(after_id=late)
        assert (round_above.count, round_above.newest_id) == (1, newer)
        sweep = await pipeline.relay_once()
        assert (sweep.count, sweep.newest_id) == (1, late)
        assert await stream_seqs(pipeline) == [newer, late]


async def test_the_relay_and_the_aggregator_vacuum_the_tables_they_churn(own_stack: Stack) -> None:
    """Dead row versions slow every round until VACUUM; the jobs do not wait for autovacuum (off on the development
    machine's Postgres). After `EVERY_ROWS` events relayed and settled, each job has vacuumed its tables."""
    connection = await connect(own_stack.settings)
    tables = ("outbox_events", *CHURNED_TABLES)

    async def vacuums() -> dict[str, int]:
        await connection.execute("SELECT pg_stat_clear_snapshot()")
        rows = await connection.fetch(
            "SELECT relname, vacuum_count FROM pg_stat_user_tables WHERE relname = ANY($1::text[])", list(tables)
        )
        return {row["relname"]: row["vacuum_count"] for row in rows}

    async def applied_and_vacuumed() -> bool:
        now = await vacuums()
        return await unpublished(own_stack.settings) == 0 and all(now[table] > before[table] for table in tables)

    try:
        before = await vacuums()
        await connection.execute(
            "INSERT INTO outbox_events (event_id, type, v, host_id, property_id, payload) "
            "SELECT gen_random_uuid(), 'test.ping', 1, h, h, '{}' FROM generate_series(1, $1), gen_random_uuid() h",
            EVERY_ROWS,
        )
        async with pipeline_jobs(own_stack.settings):
            await eventually(applied_and_vacuumed, "every event relayed and applied, each table vacuumed")
    finally:
        await connection.close()


async def make_activity(client: Client, settings: Settings) -> dict[str, Any]:
    """A little of everything: confirmed, cancelled (refunded), expired and pending bookings, a block removed."""
    host = await signed_up_host(client)
    props = [
        await create_property(client, host, timezone=zone, cancellation_policy="moderate") for zone in TIMEZONES[:2]
    ]
    _, guest = await signed_up(client)
    created = []
    for index, prop in enumerate(props):
        for offset in (0, 10, 20, 30):
            response = await book(client, guest, prop, days_ahead(3 + offset + index), 2 + index)
            assert response.status_code == 201, response.text
            created.append(response.json()["id"])
    for booking_id in created[::2]:
        await confirm(settings, booking_id)
    for booking_id in created[::3]:
        assert (await client.post(f"/api/v1/bookings/{booking_id}/cancel", headers=guest)).status_code == 200
    await expire_hold(settings, created[5])
    block_url = f"/api/v1/properties/{props[0]['id']}/blocks"
    window = {"start": days_ahead(60).isoformat(), "end": days_ahead(65).isoformat()}
    block = (await client.post(block_url, json=window, headers=host)).json()
    assert (await client.delete(f"{block_url}/{block['id']}", headers=host)).status_code == 204
    await client.post(
        block_url, json={"start": days_ahead(70).isoformat(), "end": days_ahead(72).isoformat()}, headers=host
    )
    return {"host": host, "props": props, "bookings": created}


async def metric_rows(settings: Settings) -> dict[str, list[Any]]:
    columns = ", ".join(METRIC_COLUMNS)
    queries = {
        "properties": "SELECT * FROM metric_properties ORDER BY property_id",
        "blocks": "SELECT * FROM metric_blocks ORDER BY block_id",
        "bookings": "SELECT booking_id, last_seq, state, refund_due, refunds, expired_at FROM metric_bookings "
        "ORDER BY booking_id",
        "days": f"SELECT property_id, day, {columns} FROM metric_days "  # noqa: S608 - fixed columns
        f"WHERE ({' + '.join(f'abs({c})' for c in METRIC_COLUMNS)}) > 0 ORDER BY property_id, day",
    }
    return {name: [tuple(row) for row in await execute(settings, sql)] for name, sql in queries.items()}


async def test_duplicate_and_shuffled_delivery_gives_the_same_rows(own_stack: Stack) -> None:
    settings = own_stack.settings
    await make_activity(own_stack.client, settings)
    async with pipeline_for(settings) as pipeline:
        await pipeline.drain()
    in_order = await metric_rows(settings)
    assert in_order["days"]
    connection = await connect(settings)
    try:
        rows = await connection.fetch(
            "SELECT id AS seq, event_id, type, v, occurred_at, host_id, property_id, payload::text AS payload "
            "FROM outbox_events ORDER BY id"
        )
        events = [OutboxMessage(**{**dict(row), "payload": msgspec.json.decode(row["payload"])}) for row in rows]
        rng = random.Random(6)
        for _ in range(3):
            await connection.execute("TRUNCATE metric_properties, metric_blocks, metric_bookings, metric_days")
            delivery = events + rng.sample(events, len(events) // 2)
            rng.shuffle(delivery)
            while delivery:
                size = rng.randint(1, 7)
                batch, delivery = delivery[:size], delivery[size:]
                async with connection.transaction():
                    await apply_batch(connection, batch, settings.host_fee_bps)
            assert await metric_rows(settings) == in_order
    finally:
        await connection.close()


async def pending(pipeline: Pipeline) -> int:
    summary = await pipeline.redis.xpending(events_stream(pipeline.settings), EVENTS_GROUP)
    return int(summary["pending"])


async def test_a_worker_killed_mid_batch_loses_and_double_counts_nothing(own_stack: Stack) -> None:
    settings = own_stack.settings
    activity = await make_activity(own_stack.client, settings)
    async with pipeline_for(settings) as pipeline:
        assert (await pipeline.relay_once()).count > 0
        # Worker A reads a batch and dies before applying it: its messages stay pending under its name.
        doomed = pipeline.consumer()
        read = await doomed.read(block_ms=None, claim=False)
        assert read
        assert await pending(pipeline) == len(read)
        survivor = pipeline.consumer(claim_idle_ms=0)
        assert await survivor.aggregate_once() == len(read)
        assert await pending(pipeline) == 0
        await assert_end_state(settings)

        # Worker B applies and commits a batch but dies before XACK: the batch is applied again, harmlessly.
        await confirm(settings, activity["bookings"][1])
        await pipeline.drain()
        await own_stack.client.post(f"/api/v1/bookings/{activity['bookings'][1]}/cancel", headers=activity["host"])
        assert (await pipeline.relay_once()).count > 0
        committed_only = pipeline.consumer()
        entries = await committed_only.read(block_ms=None, claim=False)
        async with pipeline.pool.acquire() as connection, connection.transaction():
            messages = [decode(fields[b"e"]) for _, fields in entries if fields is not None]
            await apply_batch(connection, messages, settings.host_fee_bps)
        assert await survivor.aggregate_once() == len(entries)
        assert await pending(pipeline) == 0
        await assert_end_state(settings)


async def test_host_updates_name_the_last_change_and_skip_what_moves_no_figure(own_stack: Stack) -> None:
    settings = own_stack.settings
    client = own_stack.client
    host_user, host = await signed_up(client, roles=["guest", "host"])
    prop = await create_property(client, host)
    _, guest = await signed_up(client)
    holds = [(await book(client, guest, prop, days_ahead(start), 2)).json() for start in (9, 15)]
    stream = host_updates_stream(settings, uuid.UUID(host_user["id"]))
    async with pipeline_for(settings) as pipeline:
        await pipeline.drain()
        # The holds move no figure: the property's listing is the host's only update so far.
        assert [fields[b"event_type"] for fields in await stream_fields(pipeline, stream)] == [b"property.created"]
        # Both confirmed before the next round, so one batch; the one confirmed last has the lower id, so neither
        # booking-id order nor chance can make it the cause: only its outbox id can.
        first, last = sorted(holds, key=lambda booking: booking["id"], reverse=True)
        await confirm(settings, first["id"])
        await confirm(settings, last["id"])
        await pipeline.drain()
        updates = await stream_fields(pipeline, stream)
    fields = [{key.decode(): value.decode() for key, value in entry.items()} for entry in updates]
    assert [int(update["seq"]) for update in fields] == [1, 2]
    assert fields[-1]["event_type"] == "booking.confirmed"
    assert fields[-1]["booking_id"] == last["id"]
    assert fields[-1]["property_id"] == prop["id"]
    assert fields[-1]["events"] == "2"


async def test_events_made_while_redis_is_down_arrive_when_it_returns(own_stack: Stack, tmp_path: Path) -> None:
    """The pipeline's Redis is a server of this test's own, stopped and started again; the API keeps its own."""
    side = EmbeddedRedis.start(tmp_path / "redis")
    try:
        settings = dataclasses.replace(own_stack.settings, redis_url=side.url)
        async with pipeline_for(settings) as pipeline:
            await pipeline.drain()
            await asyncio.to_thread(side.stop)
            await make_activity(own_stack.client, settings)
            waiting = await unpublished(settings)
            assert waiting > 0
            with pytest.raises((RedisConnectionError, OSError)):
                await pipeline.relay_once()
            assert await unpublished(settings) == waiting
            side = await asyncio.to_thread(EmbeddedRedis.start, tmp_path / "redis")
            await pipeline.aggregator.ensure_group()
            await pipeline.drain()
            assert await unpublished(settings) == 0
            await assert_end_state(settings)
    finally:
        await asyncio.to_thread(side.stop)


async def test_an_event_that_keeps_failing_goes_to_the_dead_letter_stream(own_stack: Stack) -> None:
    settings = own_stack.settings
    async with pipeline_for(settings) as pipeline:
        stream = events_stream(settings)
        broken = OutboxMessage(
            seq=1,
            event_id=uuid.uuid4(),
            type="booking.confirmed",
            v=1,
            occurred_at=dt.datetime.now(dt.UTC),
            host_id=uuid.uuid4(),
            property_id=uuid.uuid4(),
            payload={"booking_id": str(uuid.uuid4())},  # and nothing else
        )
        await pipeline.redis.xadd(stream, {"e": b"{not json"})
        await pipeline.redis.xadd(stream, {"e": msgspec.json.encode(broken)})
        worker = pipeline.aggregator
        for _ in range(worker.max_attempts - 1):
            assert await worker.aggregate_once() == 0
        assert await worker.aggregate_once() == 2
        assert await pending(pipeline) == 0
        dead = await stream_fields(pipeline, dead_letter_stream(settings))
        errors = [fields[b"error"].decode() for fields in dead]
        assert "undecodable" in errors[0]
        assert "KeyError" in errors[1]
        assert all(int(fields[b"attempts"]) == worker.max_attempts for fields in dead)


async def random_workload(client: Client, settings: Settings, pipeline: Pipeline, operations: int) -> None:
    """Bookings, confirmations, cancellations, expiries, time zone changes and blocks in random order, drained now
    and then."""
    rng = random.Random(20261124)
    hosts = [await signed_up_host(client) for _ in range(2)]
    props = [
        (
            await create_property(client, hosts[i % 2], timezone=zone, nightly_price=rng.randint(5_000, 30_000)),
            hosts[i % 2],
        )
        for i, zone in enumerate(TIMEZONES)
    ]
    guests = [(await signed_up(client))[1] for _ in range(3)]
    live: list[tuple[str, dict[str, str], dict[str, str]]] = []
    blocks: list[tuple[str, str, dict[str, str]]] = []
    for step in range(operations):
        choice = rng.random()
        if choice < 0.45 or not live:
            (prop, host), guest = rng.choice(props), rng.choice(guests)
            response = await book(client, guest, prop, days_ahead(rng.randint(2, 90)), rng.randint(1, 7))
            if response.status_code == 201:
                live.append((response.json()["id"], guest, host))
        elif choice < 0.7:
            await confirm_if_pending(settings, rng.choice(live)[0])
        elif choice < 0.85:
            booking_id, guest, host = rng.choice(live)
            await client.post(f"/api/v1/bookings/{booking_id}/cancel", headers=rng.choice((guest, host)))
        elif choice < 0.9:
            await expire_if_pending(settings, rng.choice(live)[0])
        elif choice < 0.92:
            prop, host = rng.choice(props)
            await client.patch(
                f"/api/v1/properties/{prop['id']}", json={"timezone": rng.choice(TIMEZONES)}, headers=host
            )
        elif choice < 0.97 or not blocks:
            prop, host = rng.choice(props)
            start = days_ahead(rng.randint(2, 90))
            window = {"start": start.isoformat(), "end": (start + dt.timedelta(days=rng.randint(1, 4))).isoformat()}
            response = await client.post(f"/api/v1/properties/{prop['id']}/blocks", json=window, headers=host)
            if response.status_code == 201:
                blocks.append((prop["id"], response.json()["id"], host))
        else:
            prop_id, block_id, host = blocks.pop(rng.randrange(len(blocks)))
            await client.delete(f"/api/v1/properties/{prop_id}/blocks/{block_id}", headers=host)
        if step % 50 == 49:
            await pipeline.drain()


async def confirm_if_pending(settings: Settings, booking_id: str) -> None:
    status = (await execute(settings, "SELECT status FROM bookings WHERE id = :id", id=booking_id))[0][0]
    if status == "PENDING":
        await confirm(settings, booking_id)


async def expire_if_pending(settings: Settings, booking_id: str) -> None:
    status = (await execute(settings, "SELECT status FROM bookings WHERE id = :id", id=booking_id))[0][0]
    if status == "PENDING":
        await expire_hold(settings, booking_id)


def run_cli(settings: Settings, *args: str) -> Any:
    return CliRunner().invoke(main, list(args), env={**os.environ, **environment_for(settings)})


async def test_verify_passes_after_a_random_workload_and_rebuild_keeps_the_numbers(own_stack: Stack) -> None:
    settings = own_stack.settings
    async with pipeline_for(settings) as pipeline:
        await random_workload(own_stack.client, settings, pipeline, operations=300)
        await pipeline.drain()
    await assert_end_state(settings)
    checked = await asyncio.to_thread(run_cli, settings, "metrics", "verify")
    assert checked.exit_code == 0, checked.output
    kept = await metric_rows(settings)
    await rebuild(settings)
    rebuilt = await metric_rows(settings)
    assert rebuilt["days"] == kept["days"]
    assert rebuilt["blocks"] == [row for row in kept["blocks"] if not row[-1]]
    await execute(
        settings, "UPDATE metric_days SET refunds = refunds + 1 WHERE ctid IN (SELECT ctid FROM metric_days LIMIT 1)"
    )
    broken = await asyncio.to_thread(run_cli, settings, "metrics", "verify")
    assert broken.exit_code == 1
    assert "refunds: kept" in broken.output
    repaired = await asyncio.to_thread(run_cli, settings, "metrics", "rebuild")
    assert repaired.exit_code == 0, repaired.output
    await assert_end_state(settings)


async def test_the_stream_is_trimmed_only_below_what_the_group_still_needs(own_stack: Stack) -> None:
    settings = own_stack.settings
    connection = await connect(settings)
    try:
        for _ in range(5):
            await insert_event(connection)
    finally:
        await connection.close()
    async with pipeline_for(settings) as pipeline:
        stream = events_stream(settings)
        await pipeline.relay_once()
        entries: Any = await pipeline.redis.xrange(stream)
        ids = [message_id for message_id, _ in entries]
        assert await trim_point(pipeline.redis, stream) in (b"0-0", "0-0")  # nothing delivered yet
        unacked = await pipeline.consumer().read(block_ms=None, claim=False)
        assert len(unacked) == 5
        assert await trim_point(pipeline.redis, stream) == ids[0]  # all pending: nothing may go
        await pipeline.consumer(claim_idle_ms=0).aggregate_once()
        assert await trim_point(pipeline.redis, stream) == ids[-1]
        await trim_consumed(pipeline.redis, stream)
        entries = await pipeline.redis.xrange(stream)
        assert ids[-1] in [message_id for message_id, _ in entries]


async def test_refunds_from_cancellation_and_payments_are_counted_once(own_stack: Stack) -> None:
    """The payments contract: `payment.refunded` carries the booking fields plus amount, refund_id, refunded_at."""
    settings, client = own_stack.settings, own_stack.client
    host = await signed_up_host(client)
    prop = await create_property(client, host, cancellation_policy="moderate", nightly_price=20_000, cleaning_fee=5_000)
    _, guest = await signed_up(client)
    booking = (await book(client, guest, prop, days_ahead(3), 3)).json()
    await confirm(settings, booking["id"])
    refund_due = (await client.post(f"/api/v1/bookings/{booking['id']}/cancel", headers=guest)).json()["refund_due"]
    host_share = refund_due * 65_000 // booking["price"]["total"]
    window = {"from": days_ahead(-2).isoformat(), "to": days_ahead(10).isoformat()}
    url = "/api/v1/hosts/me/metrics"

    async def refund_paid(session: AsyncSession) -> None:
        row = await session.get_one(Booking, uuid.UUID(booking["id"]))
        row.refunded_amount = refund_due
        await record_event(
            session,
            "payment.refunded",
            host_id=row.host_id,
            property_id=row.property_id,
            **booking_event_fields(row),
            payment_intent_id="pi_test",
            amount=refund_due,
            refund_id="re_test",
            refunded_at=dt.datetime.now(dt.UTC).isoformat(),
        )

    async with pipeline_for(settings) as pipeline:
        await pipeline.drain()
        before = (await client.get(url, params=window, headers=host)).json()["total"]
        assert before["refunds"] == host_share
        await run(settings, refund_paid)
        await pipeline.drain()
    after = (await client.get(url, params=window, headers=host)).json()["total"]
    assert after["refunds"] == host_share
    assert after["host_fees"] == before["host_fees"]
    # Not the whole end state: this test writes a refund event by hand, with no refund or payment behind it.
    assert await pipeline_backlog(settings) == []
    assert await metrics_differences(settings) == []


async def test_worker_jobs_carry_a_confirmation_to_the_hosts_update_stream(own_stack: Stack) -> None:
    """The real loops: the relay woken by NOTIFY, the aggregator blocked on XREADGROUP; awaited, not slept on."""
    settings, client = own_stack.settings, own_stack.client
    host_user, host = await signed_up(client, roles=["guest", "host"])
    prop = await create_property(client, host)
    _, guest = await signed_up(client)
    async with pipeline_jobs(settings):
        booking = (await book(client, guest, prop, days_ahead(12), 2)).json()
        await confirm(settings, booking["id"])
        async with pipeline_for(settings) as pipeline:
            stream = host_updates_stream(settings, uuid.UUID(host_user["id"]))
            last: Any = "0-0"
            causes: list[str] = []
            async with asyncio.timeout(30):
                while "booking.confirmed" not in causes:
                    answer: Any = await pipeline.redis.xread({stream: last}, block=1_000)
                    for _, entries in answer or []:
                        for message_id, fields in entries:
                            last = message_id
                            causes.append(fields[b"event_type"].decode())
        window = {"from": days_ahead(10).isoformat(), "to": days_ahead(20).isoformat()}
        totals = (await client.get("/api/v1/hosts/me/metrics", params=window, headers=host)).json()["total"]
        assert totals["booked_nights"] == 2


async def script_commands(pipeline: Pipeline) -> int:
    """SCRIPT commands the Redis server has run (Redis 7 counts `script|exists` apart, Redis 6 as `script`)."""
    stats = await pipeline.redis.info("commandstats")
    return sum(int(value["calls"]) for name, value in stats.items() if name.startswith("cmdstat_script"))


async def test_announcing_costs_no_script_check_and_survives_a_redis_that_forgot_the_script(own_stack: Stack) -> None:
    """A round announces with a plain EVALSHA in its one pipeline (no `SCRIPT EXISTS` round trip first). A Redis
    that lost the script (restarted, `SCRIPT FLUSH`) answers NOSCRIPT; the round loads it and announces once: the
    host's seqs stay consecutive and the last confirmation is announced."""
    settings, client = own_stack.settings, own_stack.client
    host_user, host = await signed_up(client, roles=["guest", "host"])
    prop = await create_property(client, host)
    _, guest = await signed_up(client)
    stream = host_updates_stream(settings, uuid.UUID(host_user["id"]))

    async def confirmed_booking(days: int) -> str:
        booking = (await book(client, guest, prop, days_ahead(days), 2)).json()
        await confirm(settings, booking["id"])
        return str(booking["id"])

    async with pipeline_for(settings) as pipeline:
        await confirmed_booking(12)
        await pipeline.drain()  # the script is known to Redis from here on
        before = await script_commands(pipeline)
        await confirmed_booking(16)
        await pipeline.drain()
        assert await script_commands(pipeline) == before
        await pipeline.redis.script_flush()
        last = await confirmed_booking(20)
        await pipeline.drain()
        entries: Any = await pipeline.redis.xrange(stream)
    seqs = [int(fields[b"seq"]) for _, fields in entries]
    assert seqs == list(range(1, len(seqs) + 1))
    assert (entries[-1][1][b"event_type"], entries[-1][1][b"booking_id"]) == (b"booking.confirmed", last.encode())

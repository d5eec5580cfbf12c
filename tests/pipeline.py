"""Driving the event pipeline by hand in tests: relay and aggregation rounds until nothing is left."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from redis.asyncio import Redis

from ingest.aggregator import Aggregator, aggregate_events
from ingest.pg import connect, create_pool
from ingest.relay import Published, relay_once, relay_outbox, take_lead
from service.app import redis_client
from service.settings import Settings


@dataclasses.dataclass
class Pipeline:
    pool: asyncpg.Pool
    redis: Redis
    settings: Settings
    aggregator: Aggregator
    relay_connection: asyncpg.Connection

    async def relay_once(self, **options: int) -> Published:
        """A relay round, as the relay that leads: tests driving the pipeline by hand run no other relay, and the
        lock is taken at the first round (a block running the worker's own jobs never drains by hand)."""
        assert await take_lead(self.relay_connection), "another relay holds the relay lock"
        return await relay_once(self.relay_connection, self.redis, self.settings, **options)

    def consumer(self, claim_idle_ms: int | None = None) -> Aggregator:
        """Another member of the consumer group (another worker)."""
        return Aggregator(self.pool, self.redis, self.settings, claim_idle_ms=claim_idle_ms)

    async def drain(self) -> None:
        """Relay every committed outbox row and aggregate every message, as a worker would, until both are idle."""
        while True:
            relayed = (await self.relay_once()).count
            aggregated = await self.aggregator.aggregate_once()
            if not relayed and not aggregated:
                return


@asynccontextmanager
async def pipeline_for(settings: Settings) -> AsyncIterator[Pipeline]:
    pool = await create_pool(settings, size=4)
    relay_connection = await connect(settings)
    redis = redis_client(settings)
    try:
        aggregator = Aggregator(pool, redis, settings)
        await aggregator.ensure_group()
        yield Pipeline(pool, redis, settings, aggregator, relay_connection)
    finally:
        await redis.aclose()
        await relay_connection.close()
        await pool.close()


@asynccontextmanager
async def pipeline_jobs(settings: Settings) -> AsyncIterator[None]:
    """The worker's own relay and aggregator loops, in this process for the block: the relay woken by NOTIFY,
    the aggregator blocked on XREADGROUP."""
    jobs = [asyncio.create_task(relay_outbox(settings)), asyncio.create_task(aggregate_events(settings))]
    try:
        yield
    finally:
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)

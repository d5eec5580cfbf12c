"""Driving the event pipeline by hand in tests: relay and aggregation rounds until nothing is left."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from redis.asyncio import Redis

from ingest.aggregator import Aggregator, aggregate_events
from ingest.pg import create_pool
from ingest.relay import relay_once, relay_outbox
from service.app import redis_client
from service.settings import Settings


@dataclasses.dataclass
class Pipeline:
    pool: asyncpg.Pool
    redis: Redis
    settings: Settings
    aggregator: Aggregator

    def consumer(self, claim_idle_ms: int | None = None) -> Aggregator:
        """Another member of the consumer group (another worker)."""
        return Aggregator(self.pool, self.redis, self.settings, claim_idle_ms=claim_idle_ms)

    async def drain(self) -> None:
        """Relay every committed outbox row and aggregate every message, as a worker would, until both are idle."""
        while True:
            relayed = (await relay_once(self.pool, self.redis, self.settings)).count
            aggregated = await self.aggregator.aggregate_once()
            if not relayed and not aggregated:
                return


@asynccontextmanager
async def pipeline_for(settings: Settings) -> AsyncIterator[Pipeline]:
    pool = await create_pool(settings, size=4)
    redis = redis_client(settings)
    try:
        aggregator = Aggregator(pool, redis, settings)
        await aggregator.ensure_group()
        yield Pipeline(pool, redis, settings, aggregator)
    finally:
        await redis.aclose()
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

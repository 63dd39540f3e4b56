"""The feed-invariant state machine of the unit tests, with every storage port on PostgreSQL and
the caches on Redis (reads down lanes, as servers send them)."""

from __future__ import annotations

import asyncio
import os
from typing import Any, ClassVar

import psycopg
import redis.asyncio as aioredis
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from psycopg_pool import AsyncConnectionPool

from adapters.postgres import connection_pool, migrate
from adapters.redis import HiredisPackedConnection, Lanes, RedisCelebrityWindows, RedisFeedCache, RedisPostBodies
from feedcore import CelebrityWindows, Clock, FeedCache, PostBodies
from tests.integration.conftest import TABLES, postgres_adapters, service_url
from tests.support.feed_machine import POLICIES, FeedMachine
from tests.support.world import Adapters


class PostgresFeedMachine(FeedMachine):
    """One event loop, one pool and one Redis client for all examples; every example starts from
    empty tables and a key prefix of its own."""

    shared_loop: ClassVar[asyncio.AbstractEventLoop]
    pool: ClassVar[AsyncConnectionPool[Any]]
    redis: ClassVar[aioredis.Redis]
    lanes: ClassVar[Lanes]
    redis_prefix: ClassVar[str]
    examples: ClassVar[int] = 0

    def event_loop(self) -> asyncio.AbstractEventLoop:
        return self.shared_loop

    def adapters(self, clock: Clock) -> Adapters:  # the database keeps its own time
        self.shared_loop.run_until_complete(self._truncate())
        return postgres_adapters(self.pool)

    def caches(self) -> tuple[FeedCache, CelebrityWindows, PostBodies]:
        PostgresFeedMachine.examples += 1
        prefix, window, lanes = f"{self.redis_prefix}{self.examples}:", POLICIES.cache_window, self.lanes
        return (
            RedisFeedCache(self.redis, prefix=prefix, window=window, lanes=lanes),
            RedisCelebrityWindows(self.redis, prefix=prefix, window=window, lanes=lanes),
            RedisPostBodies(self.redis, prefix=prefix, lanes=lanes),
        )

    async def _truncate(self) -> None:
        async with self.pool.connection() as connection:
            await connection.execute(f"TRUNCATE {TABLES}")  # constant table names

    def close(self) -> None:
        """The loop and the pool outlive the example."""


def test_the_feed_invariant_holds_on_postgres_and_redis(database_url: str, redis_prefix: str) -> None:
    loop = asyncio.new_event_loop()

    async def open_pool() -> AsyncConnectionPool[Any]:
        async with await psycopg.AsyncConnection.connect(database_url) as connection:
            await migrate(connection)
        pool = connection_pool(database_url, min_size=2, max_size=4)
        await pool.open(wait=True, timeout=10)
        return pool

    PostgresFeedMachine.shared_loop = loop
    PostgresFeedMachine.pool = loop.run_until_complete(open_pool())
    PostgresFeedMachine.redis = aioredis.Redis.from_url(
        service_url("FEEDCORE_REDIS_URL"), connection_class=HiredisPackedConnection
    )
    PostgresFeedMachine.lanes = Lanes.beside(PostgresFeedMachine.redis, size=4)
    PostgresFeedMachine.redis_prefix = f"{redis_prefix}machine:"
    try:
        run_state_machine_as_test(
            PostgresFeedMachine,
            settings=settings(
                max_examples=int(os.environ.get("FEEDCORE_TEST_POSTGRES_EXAMPLES", "40")),
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
                database=None,
            ),
        )
    finally:
        loop.run_until_complete(PostgresFeedMachine.pool.close())
        loop.run_until_complete(PostgresFeedMachine.lanes.close())
        loop.run_until_complete(_forget(PostgresFeedMachine.redis, PostgresFeedMachine.redis_prefix))
        loop.close()


async def _forget(client: aioredis.Redis, prefix: str) -> None:
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()

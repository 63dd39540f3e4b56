"""The feed-invariant state machine of the unit tests, with every storage port on PostgreSQL and
the caches on Redis (reads down lanes, as servers send them), or on a Redis Cluster (where a script
or multi-key command given keys of two slots is refused)."""

from __future__ import annotations

import asyncio
import os
from typing import Any, ClassVar

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from feedcore import CelebrityWindows, Clock, FeedCache, PostBodies
from feedcore.adapters.postgres import connection_pool, migrate
from feedcore.adapters.redis import (
    Lanes,
    RedisCelebrityWindows,
    RedisClient,
    RedisFeedCache,
    RedisPostBodies,
    redis_client,
)
from tests.integration.conftest import TABLES, forget, postgres_adapters, service_url
from tests.support.feed_machine import POLICIES, FeedMachine
from tests.support.world import Adapters


class PostgresFeedMachine(FeedMachine):
    """One event loop, one pool and one Redis client for all examples; every example starts from
    empty tables and a key prefix of its own."""

    shared_loop: ClassVar[asyncio.AbstractEventLoop]
    pool: ClassVar[AsyncConnectionPool[Any]]
    redis: ClassVar[RedisClient]
    lanes: ClassVar[Lanes | None]
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


@pytest.mark.parametrize("server", ["FEEDCORE_REDIS_URL", "FEEDCORE_TEST_REDIS_CLUSTER_URL"])
def test_the_feed_invariant_holds_on_postgres_and_redis(database_url: str, redis_prefix: str, server: str) -> None:
    loop = asyncio.new_event_loop()

    async def open_pool() -> AsyncConnectionPool[Any]:
        async with await psycopg.AsyncConnection.connect(database_url) as connection:
            await migrate(connection)
        pool = connection_pool(database_url, min_size=2, max_size=4)
        await pool.open(wait=True, timeout=10)
        return pool

    PostgresFeedMachine.shared_loop = loop
    PostgresFeedMachine.pool = loop.run_until_complete(open_pool())
    client = redis_client(service_url(server), max_connections=16, timeout=5.0)
    PostgresFeedMachine.redis = client
    PostgresFeedMachine.lanes = Lanes.beside(client, size=4) if isinstance(client, Redis) else None
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
        if PostgresFeedMachine.lanes is not None:
            loop.run_until_complete(PostgresFeedMachine.lanes.close())
        loop.run_until_complete(forget(client, PostgresFeedMachine.redis_prefix))
        loop.run_until_complete(client.aclose())
        loop.close()

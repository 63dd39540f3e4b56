"""Fixtures on the real services that `make test` (or `make infra-up`) provides.

Each test session gets a database of its own, a Redis key prefix of its own and Kafka topics of its
own, so sessions never see each other's data. A service that is not configured or does not answer
fails the tests that need it, with the reason: integration tests are never skipped.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
import redis.asyncio as aioredis
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from psycopg import AsyncConnection, sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool
from redis.exceptions import RedisClusterException

from feedcore.adapters.postgres import (
    PostgresFeedStore,
    PostgresFeedUnitOfWork,
    PostgresIdempotencyLedger,
    PostgresOutbox,
    PostgresPostStore,
    PostgresSocialGraph,
    connection_pool,
    migrate,
)
from feedcore.adapters.redis import HiredisPackedConnection, RedisClient
from feedcore.adapters.redis import redis_client as connect_redis
from tests.support.world import Adapters

SERVICE_VARIABLES = (
    "FEEDCORE_DATABASE_URL",
    "FEEDCORE_REDIS_URL",
    "FEEDCORE_TEST_REDIS_CLUSTER_URL",
    "FEEDCORE_KAFKA_BOOTSTRAP",
)
SESSION = uuid.uuid4().hex[:10]


def service_url(variable: str) -> str:
    value = os.environ.get(variable)
    if not value:
        pytest.fail(f"{variable} is not set: run the integration tests through `make test`, or `make infra-up` first")
    return value


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh database for this test session, dropped at its end."""
    server = service_url("FEEDCORE_DATABASE_URL")
    name = f"feedcore_test_{SESSION}"
    try:
        admin = psycopg.connect(server, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL at FEEDCORE_DATABASE_URL does not answer: {error}")
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield make_conninfo(server, dbname=name)
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def migrated_database(database_url: str) -> str:
    """This session's database with the schema applied, once."""

    async def run() -> None:
        async with await AsyncConnection.connect(database_url) as connection:
            await migrate(connection)

    asyncio.run(run())
    return database_url


@pytest.fixture
async def emptied_pool(migrated_database: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    """A pool on this session's migrated database, its tables emptied first."""
    pool: AsyncConnectionPool[Any] = connection_pool(migrated_database, min_size=1, max_size=4)
    await pool.open(wait=True, timeout=10)
    try:
        async with pool.connection() as connection:
            await connection.execute(f"TRUNCATE {TABLES}")
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def postgres_pool(database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = connection_pool(database_url, min_size=1, max_size=4)
    await pool.open(wait=True, timeout=10)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(scope="session")
def redis_prefix() -> str:
    return f"test:{SESSION}:"


@pytest.fixture
async def redis_client(redis_prefix: str) -> AsyncIterator[aioredis.Redis]:
    """A client whose test keys all start with ``redis_prefix``; they are deleted afterwards."""
    client = aioredis.Redis.from_url(service_url("FEEDCORE_REDIS_URL"), connection_class=HiredisPackedConnection)
    try:
        await client.ping()
    except aioredis.RedisError as error:
        pytest.fail(f"Redis at FEEDCORE_REDIS_URL does not answer: {error}")
    try:
        yield client
    finally:
        keys = [key async for key in client.scan_iter(match=f"{redis_prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
async def redis_cluster(redis_prefix: str) -> AsyncIterator[aioredis.RedisCluster]:
    """A client of the Redis Cluster at FEEDCORE_TEST_REDIS_CLUSTER_URL, as feedcore makes one; the
    test's keys are deleted afterwards."""
    client = connect_redis(service_url("FEEDCORE_TEST_REDIS_CLUSTER_URL"), max_connections=32, timeout=2.0)
    assert isinstance(client, aioredis.RedisCluster)
    try:
        await client.ping()
    except (aioredis.RedisError, RedisClusterException) as error:
        pytest.fail(f"the Redis Cluster at FEEDCORE_TEST_REDIS_CLUSTER_URL does not answer: {error}")
    try:
        yield client
    finally:
        await forget(client, redis_prefix)
        await client.aclose()


async def forget(client: RedisClient, prefix: str) -> None:
    """Delete every key under ``prefix``, one command a key (a cluster's keys lie in many slots)."""
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    async with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.execute_command("UNLINK", key)
        await pipe.execute()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    return service_url("FEEDCORE_KAFKA_BOOTSTRAP")


@pytest.fixture(scope="session")
def kafka_topics(kafka_bootstrap: str) -> Iterator[dict[str, str]]:
    """This session's topics, by role: created before the first test, deleted after the last."""
    topics = {"events": f"test.{SESSION}.events", "dlq": f"test.{SESSION}.events.dlq"}

    async def admin(action: str) -> None:
        client = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap, request_timeout_ms=10_000)
        await client.start()
        try:
            if action == "create":
                await client.create_topics(
                    [NewTopic(t, num_partitions=4, replication_factor=1) for t in topics.values()]
                )
            else:
                await client.delete_topics(list(topics.values()))
        finally:
            await client.close()

    try:
        asyncio.run(admin("create"))
    except Exception as error:  # noqa: BLE001  # any failure here means Kafka is not usable: say so
        pytest.fail(f"Kafka at FEEDCORE_KAFKA_BOOTSTRAP={kafka_bootstrap} could not create topics: {error!r}")
    yield topics
    asyncio.run(admin("delete"))


#: Every table of the schema, for tests that start each case from empty tables.
TABLES = (
    "posts, outbox, idempotency_keys, follows, mutes, blocks, user_counts, feed_entries, feed_horizons, "
    "processed_events"
)


def postgres_adapters(pool: AsyncConnectionPool[Any]) -> Adapters:
    """Every storage port on PostgreSQL, through ``pool``."""
    return Adapters(
        posts=PostgresPostStore(pool),
        graph=PostgresSocialGraph(pool),
        feeds=PostgresFeedStore(pool),
        ledger=PostgresIdempotencyLedger(pool),
        unit_of_work=PostgresFeedUnitOfWork(pool),
        outbox=PostgresOutbox(pool),
    )


def database_name(url: str) -> str:
    return str(conninfo_to_dict(url).get("dbname", ""))

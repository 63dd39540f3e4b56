"""Smoke tests: a row, a key and a message each make the round trip through the real service."""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from psycopg_pool import AsyncConnectionPool

from tests.integration.conftest import SESSION, database_name


async def test_a_row_round_trips_through_postgres(postgres_pool: AsyncConnectionPool, database_url: str) -> None:
    assert database_name(database_url) == f"feedcore_test_{SESSION}"
    async with postgres_pool.connection() as connection:
        await connection.execute("CREATE TABLE IF NOT EXISTS smoke (id bigint PRIMARY KEY, body text NOT NULL)")
        await connection.execute("INSERT INTO smoke VALUES (%s, %s)", (9_223_372_036_854_775_807, "héllo"))
    async with postgres_pool.connection() as connection:
        cursor = await connection.execute("SELECT id, body FROM smoke")
        assert await cursor.fetchall() == [(9_223_372_036_854_775_807, "héllo")]
        name = await (await connection.execute("SELECT current_database()")).fetchone()
        assert name == (f"feedcore_test_{SESSION}",)


async def test_a_key_round_trips_through_redis(redis_client: aioredis.Redis, redis_prefix: str) -> None:
    key = f"{redis_prefix}smoke"
    await redis_client.set(key, b"h\xc3\xa9llo", ex=60)
    assert await redis_client.get(key) == b"h\xc3\xa9llo"
    assert await redis_client.ttl(key) > 0


async def test_a_message_round_trips_through_kafka(kafka_bootstrap: str, kafka_topics: dict[str, str]) -> None:
    topic, key, value = kafka_topics["events"], b"ana", uuid.uuid4().bytes
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()
    group = f"smoke-{SESSION}"
    partition = TopicPartition(topic, sent.partition)

    async def consume_once() -> tuple[bytes | None, int | None]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            async with asyncio.timeout(30):
                while True:
                    batches = await consumer.getmany(timeout_ms=1_000)
                    for records in batches.values():
                        for record in records:
                            if record.value == value:
                                await consumer.commit()
                                return record.key, await consumer.committed(partition)
        finally:
            await consumer.stop()

    received_key, committed = await consume_once()
    assert received_key == key
    assert committed == sent.offset + 1

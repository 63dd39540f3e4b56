"""The embedding facade on PostgreSQL, Redis and Kafka: the same object as in memory, with the relay
and a processor-group member running in the program, or the processor in `feedcore process`."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from feedcore.entrypoints.embedding import Feeds, Settings, open_feeds
from tests.integration.conftest import service_url
from tests.integration.stack import Stack, isolated_stack


def stack_settings(stack: Stack, redis_prefix: str) -> Settings:
    """The stack's topic and group, and keys in Redis under this test's prefix."""
    return Settings(
        kafka_topic=stack.settings["FEEDCORE_KAFKA_TOPIC"],
        kafka_group=stack.settings["FEEDCORE_KAFKA_GROUP"],
        kafka_partitions=4,
        redis_prefix=f"{redis_prefix}{uuid.uuid4().hex[:8]}:",
        retry_max_seconds=1,
    )


def materialised(stack: Stack, user: str) -> int:
    """How many entries the processor wrote into ``user``'s feed in PostgreSQL."""
    return int(stack.scalar("SELECT count(*) FROM feed_entries WHERE user_id = %s", user))


async def whole_feed(feeds: Feeds, user: str) -> list[str]:
    return [post.content async for page in feeds.pages(user, limit=2) for post in page.items]


async def test_the_feeds_settle_through_kafka_with_a_processor_in_the_program(
    tmp_path: Path, redis_prefix: str, redis_client: aioredis.Redis
) -> None:
    with isolated_stack(tmp_path) as stack:
        async with open_feeds(
            stack_settings(stack, redis_prefix),
            database_url=stack.database_url,
            redis_url=service_url("FEEDCORE_REDIS_URL"),
            kafka_bootstrap=service_url("FEEDCORE_KAFKA_BOOTSTRAP"),
        ) as feeds:
            await feeds.follow("ana", "bo")
            posts = [await feeds.publish("bo", f"post {number}") for number in range(5)]
            await feeds.settled()
            assert stack.scalar("SELECT count(*) FROM outbox") == 0
            assert materialised(stack, "ana") == 5
            assert await whole_feed(feeds, "ana") == [f"post {number}" for number in reversed(range(5))]

            await feeds.delete("bo", posts[2].id)
            await feeds.settled()
            assert materialised(stack, "ana") == 4
            assert await whole_feed(feeds, "ana") == ["post 4", "post 3", "post 1", "post 0"]
            assert (await feeds.profile("bo")).posts == 4


async def test_settled_waits_for_a_processor_running_elsewhere(
    tmp_path: Path, redis_prefix: str, redis_client: aioredis.Redis
) -> None:
    with isolated_stack(tmp_path) as stack:
        async with open_feeds(
            stack_settings(stack, redis_prefix),
            database_url=stack.database_url,
            kafka_bootstrap=service_url("FEEDCORE_KAFKA_BOOTSTRAP"),
            run_processor=False,
        ) as feeds:
            await feeds.follow("ana", "bo")
            await feeds.publish("bo", "applied by feedcore process")
            with pytest.raises(TimeoutError):
                await feeds.settled(timeout=3)  # relayed, but no processor yet
            assert stack.scalar("SELECT count(*) FROM outbox") == 0
            assert materialised(stack, "ana") == 0

            stack.spawn("process")
            await feeds.settled(timeout=60)
            assert materialised(stack, "ana") == 1


async def test_on_postgresql_alone_the_fan_out_runs_in_the_program(tmp_path: Path) -> None:
    with isolated_stack(tmp_path) as stack:
        async with open_feeds(database_url=stack.database_url) as feeds:
            await feeds.follow("ana", "bo")
            await feeds.follow("cy", "bo")
            post = await feeds.publish("bo", "through the in-process worker")
            await feeds.settled()
            assert stack.scalar("SELECT count(*) FROM outbox") == 0
            assert (materialised(stack, "ana"), materialised(stack, "cy")) == (1, 1)
            assert (await feeds.home("cy")).items == [post]
        # Kept in PostgreSQL: feeds opened again find everything there.
        async with open_feeds(database_url=stack.database_url, migrate=False) as feeds:
            assert (await feeds.home("ana")).items == [post]
            assert (await feeds.profile("bo")).followers == 2

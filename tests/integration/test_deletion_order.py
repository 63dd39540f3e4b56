"""A deletion and the feed writes of the same post, on PostgreSQL, in either order.

A deletion must learn every feed that holds the post, so that it can drop their rendered pages at
once: a feed write in flight makes it wait, and is then among the holders it reports; a feed write
that comes after it writes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Final

import pytest
from psycopg_pool import AsyncConnectionPool

from feedcore.adapters.postgres import connection_pool
from feedcore.events import PostDeleted, PostPublished, UserFollowed
from feedcore.model import Post, PostId, UserId
from tests.integration.conftest import TABLES, postgres_adapters
from tests.support.world import Adapters

NOW: Final = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
AUTHOR: Final = UserId("author")
FANS: Final = [UserId("fan-1"), UserId("fan-2")]


@pytest.fixture
async def ports(migrated_database: str) -> AsyncIterator[Adapters]:
    pool: AsyncConnectionPool[Any] = connection_pool(migrated_database, min_size=2, max_size=4)
    await pool.open(wait=True, timeout=10)
    try:
        async with pool.connection() as connection:
            await connection.execute(f"TRUNCATE {TABLES}")
        adapters = postgres_adapters(pool)
        for fan in FANS:
            await adapters.graph.follow(fan, AUTHOR, followed(fan))
        yield adapters
    finally:
        await pool.close()


def followed(fan: UserId) -> UserFollowed:
    return UserFollowed(event_id=f"followed-{fan}", occurred_at=NOW, follower_id=fan, followee_id=AUTHOR)


async def published(ports: Adapters, number: int) -> Post:
    post = Post(id=PostId(number), author_id=AUTHOR, content="to be deleted", created_at=NOW)
    event = PostPublished(event_id=f"published-{number}", occurred_at=NOW, post_id=post.id, author_id=AUTHOR)
    await ports.posts.publish(post, event)
    return post


def deleted(post: Post) -> PostDeleted:
    return PostDeleted(event_id=f"deleted-{post.id}", occurred_at=NOW, post_id=post.id, author_id=AUTHOR)


async def test_a_deletion_waits_for_a_fan_out_in_flight_and_reports_its_feeds(ports: Adapters) -> None:
    post = await published(ports, 1)
    async with ports.unit_of_work.begin() as transaction:
        assert await transaction.feeds.add_to_audience(AUTHOR, post.id, after=None, limit=10) == FANS
        deletion = asyncio.ensure_future(ports.posts.delete(post.id, deleted(post)))
        await asyncio.sleep(0.3)
        assert not deletion.done(), "the deletion did not wait for the fan-out's transaction"
        await transaction.commit()

    assert await asyncio.wait_for(deletion, 10) == sorted([AUTHOR, *FANS])


async def test_feed_writes_after_a_deletion_write_nothing(ports: Adapters) -> None:
    post, kept = await published(ports, 2), await published(ports, 3)
    assert await ports.posts.delete(post.id, deleted(post)) == []

    async with ports.unit_of_work.begin() as transaction:
        assert await transaction.feeds.add_to_audience(AUTHOR, post.id, after=None, limit=10) is None
        assert await transaction.feeds.add_to_audiences([(post.id, AUTHOR), (kept.id, AUTHOR)], limit=1) == {
            kept.id: FANS[:1]
        }
        await transaction.feeds.add([FANS[0]], post.id, AUTHOR)
        await transaction.feeds.backfill(FANS[1], [post, kept], horizon=PostId(0))
        await transaction.commit()

    for user in [AUTHOR, *FANS]:  # the kept post, fanned out to the author and fan 1, backfilled to fan 2
        assert await ports.feeds.entries(user, before=None, floor=PostId(0), limit=10) == [kept.id]


async def test_a_backfill_in_flight_holds_a_deletion_back_too(ports: Adapters) -> None:
    post = await published(ports, 4)
    async with ports.unit_of_work.begin() as transaction:
        await transaction.feeds.backfill(FANS[0], [post], horizon=PostId(0))
        deletion = asyncio.ensure_future(ports.posts.delete(post.id, deleted(post)))
        await asyncio.sleep(0.3)
        assert not deletion.done()
        await transaction.commit()

    assert await asyncio.wait_for(deletion, 10) == [FANS[0]]

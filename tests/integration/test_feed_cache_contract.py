"""The FeedCache contract, one body run against the in-memory and the Redis adapter."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from adapters.memory import InMemoryFeedCache
from adapters.redis import RedisFeedCache
from feedcore.model import MAX_POST_ID, PostId, UserId
from feedcore.ports import CachedFeed, FeedCache

ANA = UserId("ana")
BOB = UserId("bob")
WINDOW = 3


@pytest.fixture(params=["memory", "redis"])
def cache(request: pytest.FixtureRequest, redis_client: aioredis.Redis, redis_prefix: str) -> FeedCache:
    if request.param == "memory":
        return InMemoryFeedCache(window=WINDOW)
    return RedisFeedCache(redis_client, prefix=redis_prefix, window=WINDOW)


def ids(*numbers: int) -> list[PostId]:
    return [PostId(number) for number in numbers]


async def test_a_feed_is_not_cached_until_filled(cache: FeedCache) -> None:
    assert await cache.read(ANA, before=None, limit=10) is None
    await cache.add([ANA], PostId(5))
    await cache.remove([ANA], PostId(5))
    assert await cache.read(ANA, before=None, limit=10) is None

    await cache.fill(ANA, [], horizon=PostId(0))

    assert await cache.read(ANA, before=None, limit=10) == CachedFeed(entries=[], horizon=PostId(0))
    assert await cache.read(BOB, before=None, limit=10) is None


async def test_reads_page_newest_first_below_before(cache: FeedCache) -> None:
    await cache.fill(ANA, ids(9, 7, 5), horizon=PostId(0))

    assert await cache.read(ANA, before=None, limit=2) == CachedFeed(entries=ids(9, 7), horizon=PostId(0))
    assert await cache.read(ANA, before=PostId(7), limit=10) == CachedFeed(entries=ids(5), horizon=PostId(0))
    assert await cache.read(ANA, before=PostId(5), limit=10) == CachedFeed(entries=[], horizon=PostId(0))


async def test_ids_beyond_a_double_keep_their_order_and_value(cache: FeedCache) -> None:
    big = ids(MAX_POST_ID, 2**53 + 2, 2**53 + 1)  # neighbours a double could not tell apart
    await cache.fill(ANA, big[1:], horizon=PostId(0))
    await cache.add([ANA], big[0])

    assert await cache.read(ANA, before=None, limit=10) == CachedFeed(entries=big, horizon=PostId(0))
    assert await cache.read(ANA, before=PostId(2**53 + 2), limit=10) == CachedFeed(
        entries=ids(2**53 + 1), horizon=PostId(0)
    )


async def test_a_full_window_drops_the_oldest_and_raises_its_horizon(cache: FeedCache) -> None:
    await cache.fill(ANA, ids(5, 3), horizon=PostId(0))
    await cache.add([ANA, BOB], PostId(7))
    await cache.add([ANA], PostId(9))

    assert await cache.read(ANA, before=None, limit=10) == CachedFeed(entries=ids(9, 7, 5), horizon=PostId(5))
    assert await cache.read(BOB, before=None, limit=10) is None


async def test_a_fill_beyond_the_window_keeps_the_newest(cache: FeedCache) -> None:
    await cache.fill(ANA, ids(9, 8, 6, 4, 2), horizon=PostId(1))

    assert await cache.read(ANA, before=None, limit=10) == CachedFeed(entries=ids(9, 8, 6), horizon=PostId(6))


async def test_entries_below_the_horizon_are_not_kept(cache: FeedCache) -> None:
    await cache.fill(ANA, ids(9, 8, 4), horizon=PostId(8))
    await cache.add([ANA], PostId(2))

    assert await cache.read(ANA, before=None, limit=10) == CachedFeed(entries=ids(9, 8), horizon=PostId(8))


async def test_adding_twice_and_removing_are_idempotent(cache: FeedCache) -> None:
    await cache.fill(ANA, ids(5), horizon=PostId(0))
    await cache.fill(BOB, ids(5), horizon=PostId(0))
    await cache.add([ANA, BOB], PostId(6))
    await cache.add([ANA], PostId(6))
    await cache.remove([ANA, BOB], PostId(5))
    await cache.remove([ANA], PostId(5))

    assert await cache.read(ANA, before=None, limit=10) == CachedFeed(entries=ids(6), horizon=PostId(0))
    assert await cache.read(BOB, before=None, limit=10) == CachedFeed(entries=ids(6), horizon=PostId(0))


async def test_a_refill_replaces_the_feed_and_invalidate_forgets_it(cache: FeedCache) -> None:
    await cache.fill(ANA, ids(9, 7), horizon=PostId(0))
    await cache.fill(ANA, ids(8), horizon=PostId(4))

    assert await cache.read(ANA, before=None, limit=10) == CachedFeed(entries=ids(8), horizon=PostId(4))

    await cache.invalidate(ANA)
    await cache.invalidate(BOB)

    assert await cache.read(ANA, before=None, limit=10) is None

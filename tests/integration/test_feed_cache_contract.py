"""The FeedCache contract, one body run against the in-memory and the Redis adapter."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from adapters.memory import InMemoryFeedCache
from adapters.redis import RedisFeedCache
from feedcore.model import MAX_POST_ID, Post, PostId, UserId
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


def post(number: int, author: UserId = ANA, *, fan_out: bool = True) -> Post:
    return Post(
        id=PostId(number),
        author_id=author,
        content=f"post {number} — ünïcode",
        created_at=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        fan_out=fan_out,
    )


async def test_post_bodies_come_back_as_they_were_kept(cache: FeedCache) -> None:
    big = post(MAX_POST_ID, BOB, fan_out=False)
    await cache.keep_posts([post(1), big])

    assert await cache.posts([PostId(1), PostId(2), PostId(MAX_POST_ID)]) == {PostId(1): post(1), big.id: big}
    assert await cache.posts([]) == {}


async def test_a_forgotten_post_is_known_deleted_and_never_kept_again(cache: FeedCache) -> None:
    await cache.keep_posts([post(1)])
    await cache.forget_post(PostId(1))
    await cache.forget_post(PostId(2))  # never cached: a read that started before may still try
    await cache.keep_posts([post(1), post(2), post(3)])

    assert await cache.posts(ids(1, 2, 3)) == {PostId(1): None, PostId(2): None, PostId(3): post(3)}


async def test_unfanned_windows_are_kept_per_author_apart_from_feeds(cache: FeedCache) -> None:
    assert await cache.read_unfanned([ANA, BOB], before=None, limit=10) == {}
    await cache.add_unfanned(ANA, PostId(4))  # not cached: nothing to add to

    await cache.fill_unfanned(ANA, ids(5, 3), horizon=PostId(0))
    await cache.fill_unfanned(BOB, ids(8), horizon=PostId(2))
    await cache.add_unfanned(ANA, PostId(7))
    await cache.add_unfanned(ANA, PostId(9))  # beyond the window of 3: 3 goes, the horizon rises
    await cache.remove_unfanned(BOB, PostId(8))

    assert await cache.read(ANA, before=None, limit=10) is None
    assert await cache.read_unfanned([ANA, BOB], before=None, limit=10) == {
        ANA: CachedFeed(entries=ids(9, 7, 5), horizon=PostId(5)),
        BOB: CachedFeed(entries=[], horizon=PostId(2)),
    }
    assert await cache.read_unfanned([ANA], before=PostId(9), limit=1) == {
        ANA: CachedFeed(entries=ids(7), horizon=PostId(5))
    }

    await cache.invalidate_unfanned(ANA)

    assert await cache.read_unfanned([ANA, BOB], before=None, limit=10) == {
        BOB: CachedFeed(entries=[], horizon=PostId(2))
    }


async def test_redis_sends_its_scripts_by_sha_and_loads_them_again_when_lost(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    cache = RedisFeedCache(redis_client, prefix=redis_prefix, window=WINDOW)
    for user in (ANA, BOB):
        await cache.fill(user, ids(1), horizon=PostId(0))
        await cache.fill_unfanned(user, ids(2), horizon=PostId(0))
    await redis_client.script_flush()  # as a restarted Redis would have lost them

    await cache.add([ANA, BOB], PostId(5))
    asked = await script_exists_calls(redis_client)
    await cache.add([ANA, BOB], PostId(6))
    unfanned = await cache.read_unfanned([ANA, BOB], before=None, limit=10)

    assert await script_exists_calls(redis_client) == asked  # no round trip to ask first
    assert unfanned == {user: CachedFeed(entries=ids(2), horizon=PostId(0)) for user in (ANA, BOB)}
    for user in (ANA, BOB):
        assert await cache.read(user, before=None, limit=10) == CachedFeed(entries=ids(6, 5, 1), horizon=PostId(0))


async def script_exists_calls(client: aioredis.Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_script|exists", {}).get("calls", 0))


async def test_followed_unfanned_authors_are_kept_per_digest_and_dropped_with_the_feed(cache: FeedCache) -> None:
    cy = UserId("cy")
    assert await cache.read_followed_unfanned(ANA, digest="d1") is None
    await cache.keep_followed_unfanned(ANA, digest="d1", authors=[BOB, cy])
    await cache.keep_followed_unfanned(BOB, digest="d1", authors=[])

    assert await cache.read_followed_unfanned(ANA, digest="d1") == frozenset({BOB, cy})
    assert await cache.read_followed_unfanned(BOB, digest="d1") == frozenset()
    assert await cache.read_followed_unfanned(ANA, digest="d2") is None  # kept for another set of authors

    await cache.invalidate(ANA)

    assert await cache.read_followed_unfanned(ANA, digest="d1") is None
    assert await cache.read_followed_unfanned(BOB, digest="d1") == frozenset()

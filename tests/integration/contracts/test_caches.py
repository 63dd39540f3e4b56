"""The contracts of the caches (FeedCache, CelebrityWindows, PostBodies), each body run against
the in-memory and the Redis adapter."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from feedcore.adapters.memory import InMemoryCelebrityWindows, InMemoryFeedCache, InMemoryPostBodies
from feedcore.adapters.redis import Lanes, RedisCelebrityWindows, RedisClient, RedisFeedCache, RedisPostBodies
from feedcore.model import MAX_POST_ID, Post, PostId, UserId
from feedcore.ports import CachedFeed, CelebrityWindows, FeedCache, FeedView, PostBodies
from tests.integration.stack import free_port

ANA = UserId("ana")
BOB = UserId("bob")
WINDOW = 3


@pytest.fixture
async def lanes(redis_client: aioredis.Redis) -> AsyncIterator[Lanes]:
    lanes = Lanes.beside(redis_client, size=2)
    try:
        yield lanes
    finally:
        await lanes.close()


def client_for(request: pytest.FixtureRequest) -> RedisClient:
    """The client a fixture's parameter names: one Redis server, or the cluster (where every script
    and multi-key command given keys of two slots is refused)."""
    client: RedisClient = request.getfixturevalue(
        "redis_cluster" if request.param == "redis-cluster" else "redis_client"
    )
    return client


@pytest.fixture(params=["memory", "redis", "redis-lanes", "redis-cluster"])
def cache(request: pytest.FixtureRequest, redis_prefix: str) -> FeedCache:
    if request.param == "memory":
        return InMemoryFeedCache(window=WINDOW)
    lanes = request.getfixturevalue("lanes") if request.param == "redis-lanes" else None
    return RedisFeedCache(client_for(request), prefix=redis_prefix, window=WINDOW, lanes=lanes)


@pytest.fixture(params=["memory", "redis", "redis-cluster"])
def celebrities(request: pytest.FixtureRequest, redis_prefix: str) -> CelebrityWindows:
    if request.param == "memory":
        return InMemoryCelebrityWindows(window=WINDOW)
    return RedisCelebrityWindows(client_for(request), prefix=redis_prefix, window=WINDOW)


@pytest.fixture(params=["memory", "redis", "redis-lanes", "redis-cluster"])
def bodies(request: pytest.FixtureRequest, redis_prefix: str) -> PostBodies:
    if request.param == "memory":
        return InMemoryPostBodies()
    lanes = request.getfixturevalue("lanes") if request.param == "redis-lanes" else None
    return RedisPostBodies(client_for(request), prefix=redis_prefix, lanes=lanes)


async def window(cache: FeedCache, user: UserId, *, before: PostId | None = None, limit: int = 10) -> CachedFeed | None:
    return (await cache.view(user, before=before, limit=limit)).window


def ids(*numbers: int) -> list[PostId]:
    return [PostId(number) for number in numbers]


async def fill(windows: FeedCache | CelebrityWindows, user: UserId, entries: list[PostId], *, horizon: PostId) -> None:
    """Fill a window not cached, as a read does."""
    await windows.begin_fill(user)
    assert await windows.finish_fill(user, entries, horizon=horizon)


async def test_a_feed_is_not_cached_until_filled(cache: FeedCache) -> None:
    assert await window(cache, ANA) is None
    await cache.add({PostId(5): [ANA]})
    await cache.remove([ANA], PostId(5))
    assert await window(cache, ANA) is None

    await fill(cache, ANA, [], horizon=PostId(0))

    assert await window(cache, ANA) == CachedFeed(entries=[], horizon=PostId(0))
    assert await window(cache, BOB) is None


async def test_reads_page_newest_first_below_before(cache: FeedCache) -> None:
    await fill(cache, ANA, ids(9, 7, 5), horizon=PostId(0))

    assert await window(cache, ANA, limit=2) == CachedFeed(entries=ids(9, 7), horizon=PostId(0))
    assert await window(cache, ANA, before=PostId(7)) == CachedFeed(entries=ids(5), horizon=PostId(0))
    assert await window(cache, ANA, before=PostId(5)) == CachedFeed(entries=[], horizon=PostId(0))


async def test_ids_beyond_a_double_keep_their_order_and_value(cache: FeedCache) -> None:
    big = ids(MAX_POST_ID, 2**53 + 2, 2**53 + 1)  # neighbours a double could not tell apart
    await fill(cache, ANA, big[1:], horizon=PostId(0))
    await cache.add({big[0]: [ANA]})

    assert await window(cache, ANA) == CachedFeed(entries=big, horizon=PostId(0))
    assert await window(cache, ANA, before=PostId(2**53 + 2)) == CachedFeed(entries=ids(2**53 + 1), horizon=PostId(0))


async def test_a_full_window_drops_the_oldest_and_raises_its_horizon(cache: FeedCache) -> None:
    await fill(cache, ANA, ids(5, 3), horizon=PostId(0))
    await cache.add({PostId(7): [ANA, BOB]})
    await cache.add({PostId(9): [ANA]})

    assert await window(cache, ANA) == CachedFeed(entries=ids(9, 7, 5), horizon=PostId(5))
    assert await window(cache, BOB) is None


async def test_a_fill_beyond_the_window_keeps_the_newest(cache: FeedCache) -> None:
    await fill(cache, ANA, ids(9, 8, 6, 4, 2), horizon=PostId(1))

    assert await window(cache, ANA) == CachedFeed(entries=ids(9, 8, 6), horizon=PostId(6))


async def test_entries_below_the_horizon_are_not_kept(cache: FeedCache) -> None:
    await fill(cache, ANA, ids(9, 8, 4), horizon=PostId(8))
    await cache.add({PostId(2): [ANA]})

    assert await window(cache, ANA) == CachedFeed(entries=ids(9, 8), horizon=PostId(8))


async def test_many_posts_are_added_at_once(cache: FeedCache) -> None:
    await fill(cache, ANA, ids(5), horizon=PostId(0))
    await fill(cache, BOB, ids(4), horizon=PostId(0))
    await cache.add({PostId(7): [ANA, BOB, UserId("cold")], PostId(6): [ANA], PostId(8): []})

    assert await window(cache, ANA) == CachedFeed(entries=ids(7, 6, 5), horizon=PostId(0))
    assert await window(cache, BOB) == CachedFeed(entries=ids(7, 4), horizon=PostId(0))
    assert await window(cache, UserId("cold")) is None


async def test_adding_twice_and_removing_are_idempotent(cache: FeedCache) -> None:
    await fill(cache, ANA, ids(5), horizon=PostId(0))
    await fill(cache, BOB, ids(5), horizon=PostId(0))
    await cache.add({PostId(6): [ANA, BOB]})
    await cache.add({PostId(6): [ANA]})
    await cache.remove([ANA, BOB], PostId(5))
    await cache.remove([ANA], PostId(5))

    assert await window(cache, ANA) == CachedFeed(entries=ids(6), horizon=PostId(0))
    assert await window(cache, BOB) == CachedFeed(entries=ids(6), horizon=PostId(0))


async def test_drop_forgets_the_feed_and_the_next_fill_replaces_it(cache: FeedCache) -> None:
    await fill(cache, ANA, ids(9, 7), horizon=PostId(0))
    await cache.drop(ANA)
    await cache.drop(BOB)

    assert await window(cache, ANA) is None

    await fill(cache, ANA, ids(8), horizon=PostId(4))

    assert await window(cache, ANA) == CachedFeed(entries=ids(8), horizon=PostId(4))


def post(number: int, author: UserId = ANA, *, fan_out: bool = True) -> Post:
    return Post(
        id=PostId(number),
        author_id=author,
        content=f"post {number} — ünïcode",
        created_at=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        fan_out=fan_out,
    )


async def test_post_bodies_come_back_as_they_were_kept(bodies: PostBodies) -> None:
    big = post(MAX_POST_ID, BOB, fan_out=False)
    await bodies.keep([post(1), big])

    assert await bodies.get([PostId(1), PostId(2), PostId(MAX_POST_ID)]) == {PostId(1): post(1), big.id: big}
    assert await bodies.get([]) == {}


async def test_a_buried_post_is_known_deleted_and_never_kept_again(bodies: PostBodies) -> None:
    await bodies.keep([post(1)])
    await bodies.bury(PostId(1))
    await bodies.bury(PostId(2))  # never cached: a read that started before may still try
    await bodies.keep([post(1), post(2), post(3)])

    assert await bodies.get(ids(1, 2, 3)) == {PostId(1): None, PostId(2): None, PostId(3): post(3)}


async def test_celebrity_windows_are_kept_per_author(celebrities: CelebrityWindows) -> None:
    assert await celebrities.read([ANA, BOB], before=None, limit=10) == {}
    await celebrities.add(ANA, PostId(4))  # not cached: nothing to add to

    await fill(celebrities, ANA, ids(5, 3), horizon=PostId(0))
    await fill(celebrities, BOB, ids(8), horizon=PostId(2))
    await celebrities.add(ANA, PostId(7))
    await celebrities.add(ANA, PostId(9))  # beyond the window of 3: 3 goes, the horizon rises
    await celebrities.remove(BOB, PostId(8))

    assert await celebrities.read([ANA, BOB], before=None, limit=10) == {
        ANA: CachedFeed(entries=ids(9, 7, 5), horizon=PostId(5)),
        BOB: CachedFeed(entries=[], horizon=PostId(2)),
    }
    assert await celebrities.read([ANA], before=PostId(9), limit=1) == {
        ANA: CachedFeed(entries=ids(7), horizon=PostId(5))
    }

    await celebrities.drop(ANA)

    assert await celebrities.read([ANA, BOB], before=None, limit=10) == {BOB: CachedFeed(entries=[], horizon=PostId(2))}


async def test_celebrity_windows_are_apart_from_feeds(redis_client: aioredis.Redis, redis_prefix: str) -> None:
    cache = RedisFeedCache(redis_client, prefix=redis_prefix, window=WINDOW)
    celebrities = RedisCelebrityWindows(redis_client, prefix=redis_prefix, window=WINDOW)
    await fill(celebrities, ANA, ids(5), horizon=PostId(0))

    assert await window(cache, ANA) is None


async def test_redis_sends_its_scripts_by_sha_and_loads_them_again_when_lost(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    cache = RedisFeedCache(redis_client, prefix=redis_prefix, window=WINDOW)
    celebrities = RedisCelebrityWindows(redis_client, prefix=redis_prefix, window=WINDOW)
    for user in (ANA, BOB):
        await fill(cache, user, ids(1), horizon=PostId(0))
        await fill(celebrities, user, ids(2), horizon=PostId(0))
    await redis_client.script_flush()  # as a restarted Redis would have lost them

    await cache.add({PostId(5): [ANA, BOB]})
    asked = await script_exists_calls(redis_client)
    await cache.add({PostId(6): [ANA, BOB]})
    read = await celebrities.read([ANA, BOB], before=None, limit=10)

    assert await script_exists_calls(redis_client) == asked  # no round trip to ask first
    assert read == {user: CachedFeed(entries=ids(2), horizon=PostId(0)) for user in (ANA, BOB)}
    for user in (ANA, BOB):
        assert await window(cache, user) == CachedFeed(entries=ids(6, 5, 1), horizon=PostId(0))


async def script_exists_calls(client: aioredis.Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_script|exists", {}).get("calls", 0))


async def test_the_celebrities_seen_are_kept_per_version_and_dropped_with_the_feed(cache: FeedCache) -> None:
    cy = UserId("cy")

    async def seen(user: UserId, version: str) -> frozenset[UserId] | None:
        return (await cache.view(user, before=None, limit=1, celebrities=version)).celebrities

    assert await seen(ANA, "v1") is None
    await cache.keep_celebrities(ANA, celebrities="v1", seen=[BOB, cy])
    await cache.keep_celebrities(BOB, celebrities="v1", seen=[])

    assert await seen(ANA, "v1") == frozenset({BOB, cy})
    assert await seen(BOB, "v1") == frozenset()
    assert await seen(ANA, "v2") is None  # kept for another set of celebrities
    assert (await cache.view(ANA, before=None, limit=1)).celebrities is None  # not asked for

    await cache.drop(ANA)

    assert await seen(ANA, "v1") is None
    assert await seen(BOB, "v1") == frozenset()


async def keep(cache: FeedCache, user: UserId, rendered: bytes, *, page: str = "p") -> str:
    """Begin a page with a view, and keep it with the view's stamp; returns the stamp."""
    stamp = (await cache.view(user, before=None, limit=2, page=page)).stamp
    await cache.keep_page(user, page=page, rendered=rendered, stamp=stamp)
    return stamp


async def page_of(cache: FeedCache, user: UserId, page: str = "p") -> bytes | None:
    return (await cache.view(user, before=None, limit=2, page=page)).page


async def test_a_page_kept_is_served_alone_by_name(cache: FeedCache) -> None:
    await fill(cache, ANA, ids(9, 7), horizon=PostId(0))
    begun = await cache.view(ANA, before=None, limit=2, page="p")
    assert (begun.page, begun.window) == (None, CachedFeed(entries=ids(9, 7), horizon=PostId(0)))
    assert begun.stamp

    await cache.keep_page(ANA, page="p", rendered=b'{"items":[]}', stamp=begun.stamp)
    await keep(cache, ANA, b"another", page="q")

    assert await cache.view(ANA, before=None, limit=2, page="p") == FeedView(page=b'{"items":[]}')
    assert await page_of(cache, ANA, "q") == b"another"
    assert await page_of(cache, ANA, "r") is None
    assert await page_of(cache, BOB) is None


async def test_no_page_is_kept_for_a_feed_not_cached(cache: FeedCache) -> None:
    assert (await cache.view(ANA, before=None, limit=2, page="p")).stamp == ""
    await cache.keep_page(ANA, page="p", rendered=b"page", stamp="")
    await cache.keep_page(ANA, page="p", rendered=b"page", stamp="made up")

    assert await page_of(cache, ANA) is None


@pytest.mark.parametrize(
    "change",
    ["add", "remove", "drop", "drop_pages"],
)
async def test_every_change_to_a_feed_drops_its_pages_and_refuses_pages_begun_before(
    cache: FeedCache, change: str
) -> None:
    await fill(cache, ANA, ids(5, 3), horizon=PostId(0))
    await fill(cache, BOB, ids(5, 3), horizon=PostId(0))
    await keep(cache, ANA, b"kept")
    await keep(cache, BOB, b"kept")
    begun = (await cache.view(ANA, before=None, limit=2, page="q")).stamp

    match change:
        case "add":
            await cache.add({PostId(8): [ANA]})
        case "remove":
            await cache.remove([ANA], PostId(5))
        case "drop":
            await cache.drop(ANA)
            await fill(cache, ANA, ids(5, 3), horizon=PostId(0))
        case "drop_pages":
            await cache.drop_pages([ANA, UserId("cold")])
    await cache.keep_page(ANA, page="q", rendered=b"stale", stamp=begun)

    assert await page_of(cache, ANA) is None
    assert await page_of(cache, ANA, "q") is None
    assert await page_of(cache, BOB) == b"kept"
    await keep(cache, ANA, b"new")
    assert await page_of(cache, ANA) == b"new"


@pytest.mark.parametrize("change", ["add", "fill"])
async def test_a_page_outliving_its_evicted_window_goes_with_the_next_change(
    redis_client: aioredis.Redis, redis_prefix: str, change: str
) -> None:
    cache = RedisFeedCache(redis_client, prefix=redis_prefix, window=WINDOW)
    await fill(cache, ANA, ids(5), horizon=PostId(0))
    await keep(cache, ANA, b"kept")
    await redis_client.delete(f"{redis_prefix}feed:{{ana}}")  # as an eviction would

    if change == "add":
        await cache.add({PostId(7): [ANA]})
    else:
        await fill(cache, ANA, ids(5), horizon=PostId(0))

    assert await page_of(cache, ANA) is None


async def test_adding_what_changes_nothing_keeps_the_pages(cache: FeedCache) -> None:
    await fill(cache, ANA, ids(5, 3), horizon=PostId(3))
    await keep(cache, ANA, b"kept")
    await cache.add({PostId(5): [ANA]})  # there already
    await cache.add({PostId(2): [ANA]})  # below the horizon

    assert await page_of(cache, ANA) == b"kept"


async def test_a_lane_whose_connection_the_server_closed_sends_its_command_again(redis_client: aioredis.Redis) -> None:
    lanes = Lanes.beside(redis_client, size=1)
    try:
        assert await lanes.execute("SET", "lane", "open") == b"OK"
        # The lane's connection among others, as a restart of Redis closes them all: not an outage
        # (which would drop every cached key again, in every process, once for each connection).
        await redis_client.client_kill_filter(_type="normal", skipme=True)
        assert await lanes.execute("PING") == b"PONG"
    finally:
        await lanes.close()


async def test_a_lane_to_a_server_that_is_away_fails() -> None:
    lanes = Lanes(lambda: aioredis.Connection(host="127.0.0.1", port=free_port(), socket_connect_timeout=1), size=1)
    try:
        with pytest.raises(aioredis.ConnectionError):
            await lanes.execute("PING")
    finally:
        await lanes.close()


async def test_a_lane_gives_up_on_a_command_not_answered_in_time(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    pool = redis_client.connection_pool
    lanes = Lanes(lambda: pool.connection_class(**pool.connection_kwargs), size=1, timeout=0.1)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await lanes.execute("BLPOP", f"{redis_prefix}nothing", 5)  # blocks this connection, not Redis
        assert time.monotonic() - started < 1
        assert await lanes.execute("PING") == b"PONG"  # on a connection opened again
    finally:
        await lanes.close()


async def test_a_fill_begun_and_finished_caches_the_feed(cache: FeedCache) -> None:
    await cache.begin_fill(ANA)
    assert await window(cache, ANA) is None  # begun is not cached

    assert await cache.finish_fill(ANA, ids(9, 7), horizon=PostId(0))

    assert await window(cache, ANA) == CachedFeed(entries=ids(9, 7), horizon=PostId(0))
    assert not await cache.finish_fill(ANA, ids(5), horizon=PostId(0))  # nothing begun: nothing kept
    assert not await cache.finish_fill(BOB, ids(5), horizon=PostId(0))
    assert await window(cache, BOB) is None


@pytest.mark.parametrize("change", ["add", "remove", "drop"])
async def test_a_change_while_a_fill_is_under_way_makes_it_keep_nothing(cache: FeedCache, change: str) -> None:
    await fill(cache, BOB, ids(5), horizon=PostId(0))  # in the set of cached users, as ana will be
    await cache.begin_fill(ANA)
    match change:
        case "add":
            await cache.add({PostId(8): [ANA, BOB]})
        case "remove":
            await cache.remove([ANA], PostId(7))
        case "drop":
            await cache.drop(ANA)

    assert not await cache.finish_fill(ANA, ids(9, 7), horizon=PostId(0))

    assert await window(cache, ANA) is None
    await cache.begin_fill(ANA)  # the next read begins again
    assert await cache.finish_fill(ANA, ids(9, 8), horizon=PostId(0))
    assert await window(cache, ANA) == CachedFeed(entries=ids(9, 8), horizon=PostId(0))


async def test_of_two_fills_begun_together_the_first_finished_is_kept(cache: FeedCache) -> None:
    await cache.begin_fill(ANA)
    await cache.begin_fill(ANA)  # another reader's, while the first is under way

    assert await cache.finish_fill(ANA, ids(9), horizon=PostId(0))
    assert not await cache.finish_fill(ANA, ids(7), horizon=PostId(0))

    assert await window(cache, ANA) == CachedFeed(entries=ids(9), horizon=PostId(0))


async def test_a_fill_begun_on_a_cached_feed_changes_nothing(cache: FeedCache) -> None:
    await fill(cache, ANA, ids(5), horizon=PostId(0))
    await cache.begin_fill(ANA)
    await cache.add({PostId(6): [ANA]})

    assert not await cache.finish_fill(ANA, ids(9), horizon=PostId(0))

    assert await window(cache, ANA) == CachedFeed(entries=ids(6, 5), horizon=PostId(0))


async def test_celebrity_windows_fill_as_feeds_do(celebrities: CelebrityWindows) -> None:
    await celebrities.begin_fill(ANA)
    await celebrities.add(ANA, PostId(6))
    assert not await celebrities.finish_fill(ANA, ids(5), horizon=PostId(0))
    assert await celebrities.read([ANA], before=None, limit=10) == {}

    await celebrities.begin_fill(ANA)
    assert await celebrities.finish_fill(ANA, ids(6, 5), horizon=PostId(0))
    await celebrities.remove(ANA, PostId(5))
    assert await celebrities.read([ANA], before=None, limit=10) == {ANA: CachedFeed(entries=ids(6), horizon=PostId(0))}

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from feedcore import (
    Forbidden,
    InvalidCursor,
    InvalidLimit,
    Policies,
    Post,
    PostId,
    UserId,
)
from tests.support.world import World


def ids(posts: list[Post]) -> list[int]:
    return [post.id for post in posts]


async def test_a_feed_holds_own_and_followees_posts_newest_first(world: World) -> None:
    await world.follow("ana", "bo")
    posts = [await world.publish(author) for author in ("bo", "ana", "cy", "bo")]
    await world.drain()
    assert ids((await world.feed("ana")).items) == [posts[3].id, posts[1].id, posts[0].id]


async def test_only_the_owner_reads_a_feed(world: World) -> None:
    with pytest.raises(Forbidden):
        await world.feed("ana", viewer="bo")


@pytest.mark.parametrize("limit", [0, 101])
async def test_a_limit_out_of_range_is_refused(world: World, limit: int) -> None:
    with pytest.raises(InvalidLimit):
        await world.feed("ana", limit=limit)


@pytest.mark.parametrize("cursor", ["", "nope", "!!!!", "eyJ4IjoxfQ"])
async def test_a_bad_cursor_is_refused(world: World, cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        await world.feed("ana", cursor=cursor)


async def test_paging_is_stable_while_new_posts_arrive(world: World) -> None:
    await world.follow("ana", "bo")
    old = [await world.publish("bo") for _ in range(6)]
    await world.drain()
    first = await world.feed("ana", limit=3)
    for _ in range(4):
        await world.publish("bo")
    await world.drain()
    second = await world.feed("ana", limit=3, cursor=first.next_cursor)
    assert ids(first.items + second.items) == ids(old[::-1])
    assert second.next_cursor is None


# Read before the change: not at all (the feed is cold), once (the window is cached), twice (its
# first page is kept rendered, and the third read is served it).
READS_BEFORE = pytest.mark.parametrize("reads_before", [0, 1, 2], ids=["cold", "cached", "page kept"])


@READS_BEFORE
async def test_an_unfollow_hides_posts_before_it_is_processed(world: World, reads_before: int) -> None:
    await world.follow("ana", "bo")
    await world.publish("bo")
    await world.drain()
    for _ in range(reads_before):
        assert len((await world.feed("ana")).items) == 1
    await world.unfollow("ana", "bo")
    assert (await world.feed("ana")).items == []


@READS_BEFORE
async def test_a_deletion_hides_the_post_before_it_is_processed(world: World, reads_before: int) -> None:
    await world.follow("ana", "bo")
    post = await world.publish("bo")
    await world.drain()
    for _ in range(reads_before):
        assert len((await world.feed("ana")).items) == 1
    await world.delete("bo", post.id)
    assert (await world.feed("ana")).items == []


async def test_a_kept_page_is_served_without_the_window_or_the_bodies(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.follow("ana", "bo")
    posts = [await world.publish("bo") for _ in range(3)]
    await world.drain()
    for _ in range(2):  # the window fills, then the page is kept
        assert ids((await world.feed("ana")).items) == ids(posts[::-1])

    async def unreachable(*args: object, **kwargs: object) -> None:
        raise AssertionError("a kept page was read past")

    assert world.bodies is not None
    monkeypatch.setattr(world.bodies, "get", unreachable)
    monkeypatch.setattr(world.posts, "get_many", unreachable)
    assert ids((await world.feed("ana")).items) == ids(posts[::-1])
    monkeypatch.undo()
    newer = await world.publish("bo")
    await world.drain()  # the processor adds it to the window, which drops the kept page
    assert ids((await world.feed("ana")).items) == ids([newer, *posts[::-1]])


async def test_a_cached_page_needs_neither_the_post_store_nor_the_graph(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.follow("ana", "bo")
    posts = [await world.publish(author) for author in ("bo", "ana", "bo")]
    await world.drain()
    assert ids((await world.feed("ana")).items) == ids(posts[::-1])  # the first read fills the cache

    async def unreachable(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached page went to the store")

    monkeypatch.setattr(world.posts, "get_many", unreachable)
    monkeypatch.setattr(world.graph, "seen_among", unreachable)
    monkeypatch.setattr(world.feeds, "horizon", unreachable)
    assert ids((await world.feed("ana")).items) == ids(posts[::-1])


async def test_the_celebrity_merge_reads_the_cached_window_of_unfanned_posts(
    small_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    for follower in ("ana", "cy", "di"):
        await small_world.follow(follower, "star")
    first = await small_world.publish("star")
    await small_world.drain()
    assert ids(await small_world.whole_feed("ana")) == [first.id]  # rebuilds the star's window
    second = await small_world.publish("star")
    await small_world.drain()  # the processor adds it to the window

    async def unreachable(*args: object, **kwargs: object) -> None:
        raise AssertionError("the merge went to the post store")

    monkeypatch.setattr(small_world.posts, "latest", unreachable)
    monkeypatch.setattr(small_world.posts, "get_many", unreachable)
    assert ids((await small_world.feed("ana")).items) == [second.id, first.id]


async def test_the_celebrities_a_reader_follows_are_asked_of_the_graph_once(
    small_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    for follower in ("ana", "cy", "di"):
        await small_world.follow(follower, "star")
    for follower in ("cy", "di", "ed"):
        await small_world.follow(follower, "nova")  # a celebrity ana does not follow
    posts = [await small_world.publish(author) for author in ("star", "nova", "star")]
    await small_world.drain()
    assert ids(await small_world.whole_feed("ana")) == [posts[2].id, posts[0].id]

    async def unreachable(*args: object, **kwargs: object) -> None:
        raise AssertionError("the read asked the graph or the feed store again")

    with monkeypatch.context() as patched:
        patched.setattr(small_world.graph, "seen_among", unreachable)
        # The cached copy is complete to the feed's beginning: the merge needs no store horizon.
        patched.setattr(small_world.feeds, "horizon", unreachable)
        assert ids(await small_world.whole_feed("ana")) == [posts[2].id, posts[0].id]
    # A new celebrity changes the set of unfanned authors: the graph is asked again.
    for follower in ("ana", "cy", "di"):
        await small_world.follow(follower, "zed")
    await small_world.drain()
    newest = await small_world.publish("zed")
    await small_world.drain()
    assert ids(await small_world.whole_feed("ana")) == [newest.id, posts[2].id, posts[0].id]


@pytest.mark.parametrize("read_before", [False, True])
async def test_following_and_unfollowing_a_celebrity_show_at_once(small_world: World, read_before: bool) -> None:
    for follower in ("cy", "di", "ed"):
        await small_world.follow(follower, "star")
    star = await small_world.publish("star")
    await small_world.drain()
    if read_before:
        assert ids(await small_world.whole_feed("ana")) == []  # keeps that ana follows no celebrity
    await small_world.follow("ana", "star")
    assert ids(await small_world.whole_feed("ana")) == [star.id]  # before the follow is processed
    await small_world.drain()
    assert ids(await small_world.whole_feed("ana")) == [star.id]
    await small_world.unfollow("ana", "star")
    assert ids(await small_world.whole_feed("ana")) == []


async def test_a_celebrity_s_posts_merge_in_at_read_time(small_world: World) -> None:
    for follower in ("ana", "cy", "di"):
        await small_world.follow(follower, "star")
    before = await small_world.publish("bo")
    await small_world.follow("ana", "bo")
    star = await small_world.publish("star")
    after = await small_world.publish("bo")
    await small_world.drain()
    assert not star.fan_out
    assert await small_world.feeds.entries(UserId("ana"), before=None, floor=PostId(0), limit=10) == [
        after.id,
        before.id,
    ]
    assert ids(await small_world.whole_feed("ana", [1])) == [after.id, star.id, before.id]


async def test_a_celebrity_s_old_posts_survive_dropping_below_the_threshold(small_world: World) -> None:
    for follower in ("ana", "cy", "di"):
        await small_world.follow(follower, "star")
    unfanned = await small_world.publish("star")
    await small_world.unfollow("di", "star")
    fanned = await small_world.publish("star")
    await small_world.drain()
    assert (unfanned.fan_out, fanned.fan_out) == (False, True)
    assert ids(await small_world.whole_feed("ana")) == [fanned.id, unfanned.id]


async def test_a_feed_continues_past_the_backfill_from_timelines(small_world: World) -> None:
    posts = [await small_world.publish("bo") for _ in range(7)]
    await small_world.drain()
    await small_world.follow("ana", "bo")
    await small_world.drain()
    horizon = await small_world.feeds.horizon(UserId("ana"))
    assert horizon == posts[-3].id
    assert len(await small_world.feeds.entries(UserId("ana"), before=None, floor=PostId(0), limit=100)) == 3
    assert ids(await small_world.whole_feed("ana", [2])) == ids(posts[::-1])


async def test_a_feed_continues_past_the_cache_window_from_the_store(small_world: World) -> None:
    await small_world.follow("ana", "bo")
    await small_world.drain()
    await small_world.feed("ana")  # makes the feed cached, so fan-out writes through
    posts = [await small_world.publish("bo") for _ in range(9)]
    await small_world.drain()
    assert small_world.cache is not None
    cached = (await small_world.cache.view(UserId("ana"), before=None, limit=100)).window
    assert cached is not None
    assert cached.entries == ids(posts[:-5:-1])
    assert ids(await small_world.whole_feed("ana", [3])) == ids(posts[::-1])


async def test_a_cold_feed_is_rebuilt_on_read(world: World) -> None:
    await world.follow("ana", "bo")
    post = await world.publish("bo")
    await world.drain()
    assert world.cache is not None
    assert (await world.cache.view(UserId("ana"), before=None, limit=10)).window is None
    assert ids((await world.feed("ana")).items) == [post.id]
    cached = (await world.cache.view(UserId("ana"), before=None, limit=10)).window
    assert cached is not None
    assert cached.entries == [post.id]


async def test_feeds_work_without_a_cache() -> None:
    world = World(Policies(backfill_limit=1), cached=False)
    old, new = await world.publish("bo"), await world.publish("bo")
    await world.follow("ana", "bo")
    await world.drain()
    assert ids(await world.whole_feed("ana", [1])) == [new.id, old.id]


async def test_an_empty_feed_is_one_empty_page(world: World) -> None:
    page = await world.feed("ana")
    assert (page.items, page.next_cursor) == ([], None)


async def test_a_post_applied_while_a_cold_feed_is_rebuilt_is_not_lost_from_the_cache(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.follow("ana", "bo")
    first = await world.publish("bo")
    await world.drain()
    entries = world.feeds.entries
    arrived: list[Post] = []

    async def entries_then_a_post_arrives(
        user: UserId, *, before: PostId | None, floor: PostId, limit: int
    ) -> list[PostId]:
        found = await entries(user, before=before, floor=floor, limit=limit)
        if not arrived:
            # Between the rebuild's read of the store and its fill of the cache, the processor
            # applies a new post: to the store, and not to the cache, where the feed is still cold.
            arrived.append(await world.publish("bo"))
            await world.drain()
        return found

    monkeypatch.setattr(world.feeds, "entries", entries_then_a_post_arrives)
    await world.feed("ana")
    monkeypatch.setattr(world.feeds, "entries", entries)

    assert ids((await world.feed("ana")).items) == [arrived[0].id, first.id]


async def test_concurrent_first_reads_of_a_cold_feed_rebuild_it_once(world: World) -> None:
    await world.follow("ana", "bo")
    posts = [await world.publish("bo") for _ in range(3)]
    await world.drain()
    assert world.cache is not None
    await world.cache.drop(UserId("ana"))
    fills: list[UserId] = []
    fill = world.cache.finish_fill

    async def counted(user: UserId, entries: Sequence[PostId], *, horizon: PostId) -> bool:
        fills.append(user)
        await asyncio.sleep(0)  # let the other reads arrive while this rebuild is under way
        return await fill(user, entries, horizon=horizon)

    world.cache.finish_fill = counted  # type: ignore[method-assign]

    pages = await asyncio.gather(*(world.feed("ana") for _ in range(10)))

    assert fills == [UserId("ana")]
    assert [ids(page.items) for page in pages] == [ids(posts[::-1])] * 10


async def test_a_cached_copy_left_behind_by_a_crash_is_never_served_twice() -> None:
    world = World(Policies(backfill_limit=2))
    own = await world.publish("cy")
    followed = [await world.publish("ana") for _ in range(3)]
    await world.drain()
    assert ids((await world.feed("cy")).items) == [own.id]  # cy's feed is now cached, horizon 0
    await world.follow("cy", "ana")
    await world.relay()
    [follow] = [delivery.event for delivery in world.bus.take(10)]
    # The processor commits the truncated backfill (the store's horizon rises to the second newest
    # post of ana's) and dies before it drops cy's cached copy, which still reaches down to 0.
    await world.make_processor(None).apply(follow)

    busy = [post.id for post in await world.whole_feed("cy", [2])]

    assert busy == sorted(set(busy), reverse=True), "a post served twice, or out of order"
    assert set(busy) <= {own.id, *(post.id for post in followed)}
    world.bus.rewind()
    await world.drain()  # the redelivery drops the copy
    assert [post.id for post in await world.whole_feed("cy", [2])] == [*(p.id for p in followed[::-1]), own.id]


async def test_a_mute_shows_at_once_on_a_kept_page_and_the_feed_is_served_from_the_cache_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.follow("ana", "bo")
    await world.follow("ana", "cy")
    posts = [await world.publish(author) for author in ("bo", "cy", "bo")]
    await world.drain()
    for _ in range(2):  # the second read is served the page the first one kept
        assert ids((await world.feed("ana")).items) == ids(posts[::-1])

    await world.mute("ana", "bo")
    assert ids((await world.feed("ana")).items) == [posts[1].id]  # before the processor purged the feed
    await world.drain()
    assert ids((await world.feed("ana")).items) == [posts[1].id]

    async def unreachable(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached page went to the store")

    monkeypatch.setattr(world.posts, "get_many", unreachable)
    monkeypatch.setattr(world.graph, "seen_among", unreachable)
    monkeypatch.setattr(world.feeds, "horizon", unreachable)
    assert ids((await world.feed("ana")).items) == [posts[1].id]

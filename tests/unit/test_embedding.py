"""The embedding facade on the in-memory adapters: one object, every use case, the fan-out as a task."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from feedcore import (
    Event,
    FollowBlocked,
    Forbidden,
    InvalidCursor,
    InvalidLimit,
    InvalidPostId,
    InvalidUserId,
    PostNotFound,
    SelfFollow,
    Unavailable,
)
from feedcore.adapters.memory import InMemoryOutbox
from feedcore.entrypoints.container import build_containers
from feedcore.entrypoints.embedding import Feeds, Settings, open_feeds
from feedcore.entrypoints.settings import ConfigurationError


async def test_a_post_reaches_a_followers_feed_once_the_fan_out_has_settled() -> None:
    async with open_feeds() as feeds:
        await feeds.follow("ana", "bo")
        await feeds.home("ana")  # now cached: only the fan-out brings it bo's next post
        post = await feeds.publish("bo", "hello")
        await feeds.settled()
        page = await feeds.home("ana", limit=20)
    assert page.items == [post]
    assert page.next_cursor is None


async def test_pages_walk_a_whole_feed_newest_first_each_post_once() -> None:
    async with open_feeds() as feeds:
        await feeds.follow("ana", "bo")
        await feeds.follow("ana", "cy")
        published = [await feeds.publish(author, f"post {n}") for n in range(7) for author in ("bo", "cy", "dee")]
        await feeds.settled()
        pages = [page async for page in feeds.pages("ana", limit=3)]
    expected = [post.id for post in reversed(published) if post.author_id != "dee"]
    assert [post.id for page in pages for post in page.items] == expected
    assert [len(page.items) for page in pages] == [3, 3, 3, 3, 2]
    assert pages[-1].next_cursor is None


async def test_deleting_and_unfollowing_leave_the_feed() -> None:
    async with open_feeds() as feeds:
        await feeds.follow("ana", "bo")
        await feeds.follow("ana", "cy")
        kept = await feeds.publish("bo", "kept")
        deleted = await feeds.publish("bo", "deleted")
        await feeds.publish("cy", "unfollowed")
        await feeds.settled()
        await feeds.delete("bo", deleted.id)
        await feeds.unfollow("ana", "cy")
        await feeds.settled()
        assert (await feeds.home("ana")).items == [kept]
        with pytest.raises(PostNotFound):
            await feeds.post(str(deleted.id))
        assert await feeds.post(str(kept.id)) == kept


async def test_timelines_profiles_and_the_lists_of_follows() -> None:
    async with open_feeds() as feeds:
        for follower in ("cy", "ana"):
            await feeds.follow(follower, "bo")
        await feeds.follow("bo", "dee")
        first = await feeds.publish("bo", "one")
        second = await feeds.publish("bo", "two")
        timeline = await feeds.timeline("bo", limit=1)
        assert timeline.items == [second]
        assert (await feeds.timeline("bo", cursor=timeline.next_cursor)).items == [first]
        profile = await feeds.profile("bo")
        assert (profile.followers, profile.following, profile.posts) == (2, 1, 2)
        assert (await feeds.followers("bo")).items == ["ana", "cy"]
        assert (await feeds.following("bo")).items == ["dee"]


async def test_an_idempotency_key_makes_a_repeat_return_the_first_post() -> None:
    async with open_feeds() as feeds:
        first = await feeds.publish("bo", "once", idempotency_key="k-1")
        again = await feeds.publish("bo", "once", idempotency_key="k-1")
        assert again == first
        assert (await feeds.profile("bo")).posts == 1


async def test_errors_are_the_cores() -> None:
    async with open_feeds() as feeds:
        post = await feeds.publish("bo", "mine")
        with pytest.raises(SelfFollow):
            await feeds.follow("ana", "ana")
        with pytest.raises(Forbidden):
            await feeds.delete("ana", post.id)
        with pytest.raises(InvalidUserId):
            await feeds.publish("not a user id", "hello")
        with pytest.raises(InvalidPostId):
            await feeds.post("not-a-number")
        with pytest.raises(InvalidPostId):
            await feeds.post(-1)
        with pytest.raises(InvalidLimit):
            await feeds.home("ana", limit=0)
        with pytest.raises(InvalidCursor):
            await feeds.home("ana", cursor="garbage")


async def test_the_settings_choose_the_policies() -> None:
    async with open_feeds(Settings(backfill_limit=2)) as feeds:
        posts = [await feeds.publish("bo", f"post {n}") for n in range(3)]
        await feeds.follow("ana", "bo")
        await feeds.settled()
        # The follow backfilled two posts; the third comes from bo's timeline, under the same cursor.
        assert [post async for page in feeds.pages("ana", limit=1) for post in page.items] == posts[::-1]


def _feeds_with_pending(unapplied: list[int]) -> tuple[Feeds, InMemoryOutbox]:
    """Feeds with no fan-out running: the test moves the events, and ``unapplied[0]`` says how
    many of those on the bus wait to be applied."""
    built = build_containers(Settings())

    async def count() -> int:
        return unapplied[0]

    outbox = built.storage.outbox()
    assert isinstance(outbox, InMemoryOutbox)
    feeds = Feeds(
        posts=built.app.posts(),
        social=built.app.social(),
        home_feeds=built.app.home_feeds(),
        outbox=outbox,
        unapplied=count,
    )
    return feeds, outbox


async def test_settled_waits_for_the_outbox_and_then_for_the_bus() -> None:
    unapplied = [0]
    feeds, outbox = _feeds_with_pending(unapplied)
    await feeds.publish("bo", "waiting")
    with pytest.raises(TimeoutError):
        await feeds.settled(timeout=0.05)

    async def relay_then_apply() -> None:
        async def onto_the_bus(events: Sequence[Event]) -> None:
            unapplied[0] = len(events)

        await outbox.relay(onto_the_bus, limit=10)
        await asyncio.sleep(0.05)
        unapplied[0] = 0

    moving = asyncio.create_task(relay_then_apply())
    with pytest.raises(TimeoutError):
        await feeds.settled(timeout=0.03)
    await feeds.settled(timeout=1)
    assert moving.done()


async def test_a_database_out_of_reach_is_unavailable() -> None:
    settings = Settings(database_timeout_seconds=0.2)
    with pytest.raises(Unavailable):
        async with open_feeds(settings, database_url="postgresql://feedcore@127.0.0.1:1/nowhere"):
            pass


def test_real_adapters_need_no_token_secret_without_a_server() -> None:
    # Only a server signs tokens: the facade, `feedcore process` and `feedcore relay` have none.
    settings = Settings(database_url="postgresql://feedcore@127.0.0.1:1/nowhere", kafka_bootstrap="127.0.0.1:1")
    assert "pool" in build_containers(settings).storage.providers  # the PostgreSQL storage
    with pytest.raises(ConfigurationError, match="JWT_SECRET"):
        build_containers(settings, secret="")


async def test_mutes_and_blocks_show_in_the_home_feed_at_once() -> None:
    async with open_feeds() as feeds:
        await feeds.follow("ana", "bo")
        await feeds.follow("ana", "cy")
        await feeds.publish("bo", "from bo")
        await feeds.publish("cy", "from cy")
        await feeds.settled()
        await feeds.mute("ana", "bo")
        assert [post.author_id for post in (await feeds.home("ana")).items] == ["cy"]
        await feeds.unmute("ana", "bo")
        await feeds.settled()
        assert [post.author_id for post in (await feeds.home("ana")).items] == ["cy", "bo"]
        await feeds.block("cy", "ana")
        assert [post.author_id for post in (await feeds.home("ana")).items] == ["bo"]
        with pytest.raises(FollowBlocked):
            await feeds.follow("ana", "cy")
        await feeds.unblock("cy", "ana")
        await feeds.follow("ana", "cy")

from __future__ import annotations

from collections.abc import Sequence

import pytest

from feedcore import Event, Policies, PostId, UserId
from feedcore.adapters.memory import InMemoryFeedStore
from tests.support.world import World


async def published_events(world: World) -> list[Event]:
    events: list[Event] = []

    async def collect(batch: Sequence[Event]) -> None:
        events.extend(batch)

    while await world.outbox.relay(collect, limit=100):
        pass
    return events


async def remove_everywhere(world: World, post_id: PostId) -> list[UserId]:
    """Take a post out of every feed, as the processor would; returns whose feeds held it."""
    async with world.unit_of_work.begin() as transaction:
        holders = await transaction.feeds.remove_post(post_id)
        await transaction.commit()
    return holders


async def entries(world: World, user: str) -> list[PostId]:
    return await world.feeds.entries(UserId(user), before=None, floor=PostId(0), limit=1_000)


async def test_an_event_s_store_work_happens_once_per_consumer(world: World) -> None:
    await world.follow("bo", "ana")
    post = await world.publish("ana")
    follow, publish = await published_events(world)
    assert await world.processor.apply(follow)
    assert await world.processor.apply(publish)
    # Take the entry out behind the processor's back: a second application would put it back.
    assert await remove_everywhere(world, post.id) == ["ana", "bo"]
    assert not await world.processor.apply(publish)
    assert await entries(world, "bo") == []
    assert await world.ledger.applied("feedcore-test", [publish.event_id]) == {publish.event_id}
    assert not await world.ledger.applied("another-consumer", [publish.event_id])


async def test_fan_out_reaches_the_author_and_every_follower_in_chunks() -> None:
    world = World(Policies(fanout_chunk=2))
    followers = [f"fan{n}" for n in range(5)]
    for follower in followers:
        await world.follow(follower, "ana")
    await world.drain()
    chunks: list[list[UserId]] = []
    assert isinstance(world.feeds, InMemoryFeedStore)
    add = world.feeds.add_now

    def record(users: Sequence[UserId], post_id: PostId, author_id: UserId) -> None:
        chunks.append(list(users))
        add(users, post_id, author_id)

    world.feeds.add_now = record  # type: ignore[method-assign]
    post = await world.publish("ana")
    await world.drain()
    assert chunks == [["ana", "fan0", "fan1"], ["fan2", "fan3"], ["fan4"]]  # the author rides with the first chunk
    for user in ["ana", *followers]:
        assert await entries(world, user) == [post.id]


async def test_a_failed_fan_out_commits_nothing_and_is_redone_whole(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(world.policies.__class__(fanout_chunk=1))
    for follower in ("bo", "cy"):
        await world.follow(follower, "ana")
    post = await world.publish("ana")
    events = await published_events(world)
    for event in events[:-1]:
        await world.processor.apply(event)
    audience = world.graph.audience
    calls = 0

    async def fail_on_second_chunk(user: UserId, *, after: UserId | None, limit: int) -> list[UserId]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionError("graph went away")
        return await audience(user, after=after, limit=limit)

    monkeypatch.setattr(world.graph, "audience", fail_on_second_chunk)
    with pytest.raises(ConnectionError):
        await world.processor.apply(events[-1])
    assert await entries(world, "ana") == []
    assert not await world.ledger.applied("feedcore-test", [events[-1].event_id])
    monkeypatch.setattr(world.graph, "audience", audience)
    assert await world.processor.apply(events[-1])
    for user in ("ana", "bo", "cy"):
        assert await entries(world, user) == [post.id]


async def test_a_post_deleted_before_its_fan_out_is_not_fanned_out(world: World) -> None:
    await world.follow("bo", "ana")
    post = await world.publish("ana")
    await world.delete("ana", post.id)
    await world.drain()
    assert await entries(world, "bo") == []
    assert await remove_everywhere(world, post.id) == []


async def test_a_lost_cache_update_is_repaired_when_the_event_comes_again(world: World) -> None:
    await world.follow("bo", "ana")
    await world.drain()
    await world.feed("bo")  # cached from now on
    post = await world.publish("ana")
    [event] = await published_events(world)
    no_cache = world.make_processor(None)
    assert await no_cache.apply(event)  # store committed; the process died before the cache
    assert not await world.processor.apply(event)
    assert world.cache is not None
    cached = (await world.cache.view(UserId("bo"), before=None, limit=10)).window
    assert cached is not None
    assert cached.entries == [post.id]


async def test_a_batch_is_committed_after_it_is_applied(world: World) -> None:
    await world.follow("bo", "ana")
    await world.publish("ana")
    await world.relay()
    assert world.bus.lag == 2
    assert await world.processor.process_batch(world.bus, max_events=10, max_wait=0) == 2
    assert world.bus.lag == 0
    assert await world.processor.process_batch(world.bus, max_events=10, max_wait=0) == 0


async def test_a_mute_purges_the_author_from_the_feed_fan_out_skips_the_muter_and_an_unmute_backfills(
    world: World,
) -> None:
    await world.follow("bo", "ana")
    await world.follow("cy", "ana")
    before = await world.publish("ana")
    await world.drain()
    assert await entries(world, "bo") == [before.id]

    await world.mute("bo", "ana")
    await world.drain()
    assert await entries(world, "bo") == []
    during = await world.publish("ana")
    await world.drain()
    assert await entries(world, "bo") == []
    assert await entries(world, "cy") == [during.id, before.id]

    await world.unmute("bo", "ana")
    await world.drain()
    assert await entries(world, "bo") == [during.id, before.id]


async def test_a_late_mute_event_leaves_a_feed_alone_once_the_user_has_unmuted(world: World) -> None:
    await world.follow("bo", "ana")
    post = await world.publish("ana")
    await world.drain()
    await world.mute("bo", "ana")
    await world.unmute("bo", "ana")
    mute, unmute = await published_events(world)

    assert await world.processor.apply(mute)  # applied, but the truth is "not muted": nothing purged
    assert await entries(world, "bo") == [post.id]
    assert await world.processor.apply(unmute)
    assert await entries(world, "bo") == [post.id]

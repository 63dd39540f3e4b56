"""Live feeds in the core: one announcement per batch, and what a stream that is not read holds."""

from __future__ import annotations

import pytest

from feedcore import (
    FeedProcessor,
    FeedsChanged,
    LiveFeeds,
    PostAdded,
    PostId,
    PostsRemoved,
    Removal,
    RemovalsLost,
    TooManyStreams,
    UserId,
)
from feedcore.adapters.memory import InMemoryFeedChanges
from tests.support.world import World


class Recorded:
    def __init__(self) -> None:
        self.announced: list[FeedsChanged] = []

    async def announce(self, change: FeedsChanged) -> None:
        self.announced.append(change)


async def test_a_batch_of_events_is_announced_once(world: World) -> None:
    await world.follow("ana", "bo")
    await world.follow("cy", "bo")
    await world.drain()
    recorded = Recorded()
    processor = FeedProcessor(
        consumer="announcing",
        posts=world.posts,
        graph=world.graph,
        unit_of_work=world.unit_of_work,
        policies=world.policies,
        changes=recorded,  # type: ignore[arg-type]  # announces only; nobody listens here
    )
    posts = [await world.publish("bo", f"post {n}") for n in range(3)]
    await world.delete("bo", posts[0].id)
    await world.unfollow("cy", "bo")
    await world.relay()
    world.bus.rewind()
    applied = await processor.apply_all([delivery.event for delivery in world.bus.take(100)])
    assert len(applied) == 5
    (change,) = recorded.announced
    assert set(change.grown) == {"ana", "bo"}  # cy had unfollowed when the batch was applied
    assert change.regraphed == ["cy"]
    assert Removal(author=UserId("bo"), users=[UserId("cy")]) in change.removals
    deleted = [removal for removal in change.removals if removal.post_id == posts[0].id]
    assert len(deleted) == 1


async def test_redelivered_events_are_not_announced_again(world: World) -> None:
    recorded = Recorded()
    processor = FeedProcessor(
        consumer="announcing",
        posts=world.posts,
        graph=world.graph,
        unit_of_work=world.unit_of_work,
        policies=world.policies,
        changes=recorded,  # type: ignore[arg-type]  # announces only
    )
    await world.publish("bo")
    await world.relay()
    events = [delivery.event for delivery in world.bus.take(100)]
    await processor.apply_all(events)
    await processor.apply_all(events)
    assert len(recorded.announced) == 1


async def test_a_stream_not_read_holds_a_bounded_number_of_removals(world: World) -> None:
    live = LiveFeeds(feeds=world.home_feeds, changes=InMemoryFeedChanges(), max_streams=4, max_removals=10)
    stream = await live.open(UserId("ana"), UserId("ana"), last_event_id=None)
    for post_id in range(1, 1_001):
        live.apply(FeedsChanged(removals=[Removal(author=UserId("bo"), post_id=PostId(post_id), users=[stream.owner])]))
    events = await stream.next(idle=1.0)
    assert events is not None
    assert events[0] == RemovalsLost()
    assert all(isinstance(event, PostsRemoved) for event in events[1:])
    held = sum(len(event.post_ids) for event in events[1:] if isinstance(event, PostsRemoved))
    assert held <= 10
    stream.close()
    assert live.open_streams == 0


async def test_a_stream_reads_its_feed_when_woken_and_only_then(world: World) -> None:
    await world.follow("ana", "bo")
    live = LiveFeeds(feeds=world.home_feeds, changes=InMemoryFeedChanges(), max_streams=4)
    stream = await live.open(UserId("ana"), UserId("ana"), last_event_id=None)
    post = await world.publish("bo", "new")
    await world.drain()
    assert await stream.next(idle=0.05) == []  # nobody announced it: nothing read
    live.apply(FeedsChanged(grown=[UserId("ana")]))
    assert await stream.next(idle=1.0) == [PostAdded(post=post)]
    live.apply(FeedsChanged(grown=[UserId("ana")]))
    assert await stream.next(idle=1.0) == []  # woken, nothing newer: no repeat
    stream.close()


async def test_without_announcements_streams_poll_their_feed(world: World) -> None:
    await world.follow("ana", "bo")
    live = LiveFeeds(feeds=world.home_feeds, changes=None, max_streams=4, poll_seconds=0.05)
    stream = await live.open(UserId("ana"), UserId("ana"), last_event_id=None)
    post = await world.publish("bo", "new")
    await world.drain()
    assert await stream.next(idle=5.0) == [PostAdded(post=post)]
    stream.close()


async def test_a_post_fanned_out_after_a_newer_one_is_still_sent_once(world: World) -> None:
    await world.follow("ana", "bo")
    await world.follow("ana", "cy")
    await world.drain()
    live = LiveFeeds(feeds=world.home_feeds, changes=InMemoryFeedChanges(), max_streams=4)
    stream = await live.open(UserId("ana"), UserId("ana"), last_event_id=None)
    older = await world.publish("bo", "older, applied last")
    newer = await world.publish("cy", "newer, applied first")
    await world.relay()
    world.bus.rewind()
    events = {event.post_id: event for event in (delivery.event for delivery in world.bus.take(100))}  # type: ignore[union-attr]
    for post in (newer, older):
        await world.processor.apply(events[post.id])
        live.apply(FeedsChanged(grown=[UserId("ana")]))
        assert await stream.next(idle=1.0) == [PostAdded(post=post)]
    live.apply(FeedsChanged(grown=[UserId("ana")]))
    assert await stream.next(idle=1.0) == []
    stream.close()


async def test_ending_every_stream_ends_those_open_and_refuses_new_ones(world: World) -> None:
    live = LiveFeeds(feeds=world.home_feeds, changes=InMemoryFeedChanges(), max_streams=4)
    stream = await live.open(UserId("ana"), UserId("ana"), last_event_id=None)
    live.end_all()
    assert await stream.next(idle=1.0) is None
    with pytest.raises(TooManyStreams):
        await live.open(UserId("bo"), UserId("bo"), last_event_id=None)

from __future__ import annotations

from collections.abc import Sequence

import pytest

from feedcore import (
    Event,
    Forbidden,
    InvalidContent,
    InvalidCursor,
    InvalidLimit,
    PostId,
    PostNotFound,
    PostPublished,
    UserId,
)
from feedcore.model import encode_user_cursor
from tests.support.world import World


async def test_a_published_post_can_be_read_back(world: World) -> None:
    post = await world.publish("ana", "first!")
    assert await world.posting.get(post.id) == post
    assert (post.author_id, post.content, post.created_at) == ("ana", "first!", world.clock.now())


async def test_publishing_leaves_one_event_in_the_outbox(world: World) -> None:
    post = await world.publish("ana")
    published: list[Sequence[Event]] = []

    async def publish(events: Sequence[Event]) -> None:
        published.append(events)

    assert await world.outbox.relay(publish, limit=10) == 1
    [[event]] = published
    assert event == PostPublished(
        event_id=event.event_id, occurred_at=post.created_at, post_id=post.id, author_id=UserId("ana")
    )


@pytest.mark.parametrize("content", ["", "x" * 5_001])
async def test_content_outside_the_limits_is_refused_and_changes_nothing(world: World, content: str) -> None:
    with pytest.raises(InvalidContent):
        await world.publish("ana", content)
    assert await world.outbox.backlog() == 0
    assert (await world.profile("ana")).posts == 0


async def test_posts_of_an_author_above_the_threshold_are_not_fanned_out(small_world: World) -> None:
    for follower in ("bo", "cy"):
        await small_world.follow(follower, "ana")
    assert (await small_world.publish("ana")).fan_out
    await small_world.follow("di", "ana")
    assert not (await small_world.publish("ana")).fan_out


async def test_reading_a_missing_post_is_not_found(world: World) -> None:
    with pytest.raises(PostNotFound):
        await world.posting.get(PostId(12345))


async def test_the_author_deletes_a_post(world: World) -> None:
    post = await world.publish("ana")
    await world.delete("ana", post.id)
    with pytest.raises(PostNotFound):
        await world.posting.get(post.id)
    assert (await world.profile("ana")).posts == 0


async def test_nobody_else_may_delete_a_post(world: World) -> None:
    post = await world.publish("ana")
    with pytest.raises(Forbidden):
        await world.delete("bo", post.id)
    assert await world.posting.get(post.id) == post


async def test_deleting_twice_or_a_missing_post_is_not_found(world: World) -> None:
    post = await world.publish("ana")
    await world.delete("ana", post.id)
    for post_id in (post.id, PostId(999)):
        with pytest.raises(PostNotFound):
            await world.delete("ana", post_id)


async def test_an_author_timeline_pages_newest_first(world: World) -> None:
    posts = [await world.publish("ana", f"#{n}") for n in range(5)]
    await world.publish("bo")
    first = await world.timeline("ana", limit=2)
    assert first.items == [posts[4], posts[3]]
    assert first.next_cursor is not None
    second = await world.timeline("ana", limit=2, cursor=first.next_cursor)
    third = await world.timeline("ana", limit=2, cursor=second.next_cursor)
    assert second.items + third.items == [posts[2], posts[1], posts[0]]
    assert third.next_cursor is None


async def test_a_timeline_of_exactly_one_page_has_no_next_cursor(world: World) -> None:
    for _ in range(3):
        await world.publish("ana")
    assert (await world.timeline("ana", limit=3)).next_cursor is None


async def test_deleted_posts_leave_the_timeline(world: World) -> None:
    kept, gone = await world.publish("ana"), await world.publish("ana")
    await world.delete("ana", gone.id)
    assert (await world.timeline("ana")).items == [kept]


@pytest.mark.parametrize("limit", [0, -1, 101])
async def test_limits_out_of_range_are_refused(world: World, limit: int) -> None:
    with pytest.raises(InvalidLimit):
        await world.timeline("ana", limit=limit)


async def test_a_cursor_of_another_kind_of_list_is_refused(world: World) -> None:
    with pytest.raises(InvalidCursor):
        await world.timeline("ana", cursor=encode_user_cursor(UserId("bo")))


async def test_profiles_count_posts_and_both_sides_of_the_graph(world: World) -> None:
    await world.follow("bo", "ana")
    await world.follow("cy", "ana")
    await world.follow("ana", "cy")
    await world.publish("ana")
    profile = await world.profile("ana")
    assert (profile.user_id, profile.followers, profile.following, profile.posts) == ("ana", 2, 1, 1)
    assert (await world.profile("nobody")).posts == 0

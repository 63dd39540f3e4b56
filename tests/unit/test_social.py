from __future__ import annotations

from collections.abc import Sequence

import pytest

from feedcore import FollowBlocked, SelfBlock, SelfFollow, SelfMute, UserMuted, UserUnfollowed, UserUnmuted
from feedcore.events import Event
from tests.support.world import World


async def relayed(world: World) -> list[Event]:
    """Every event waiting in the outbox, oldest first (the outbox is emptied)."""
    events: list[Event] = []

    async def keep(batch: Sequence[Event]) -> None:
        events.extend(batch)

    while await world.outbox.relay(keep, limit=100):
        pass
    return events


async def test_following_is_idempotent_and_emits_one_event(world: World) -> None:
    await world.follow("bo", "ana")
    await world.follow("bo", "ana")
    assert await world.outbox.backlog() == 1
    assert (await world.profile("ana")).followers == 1


async def test_unfollowing_is_idempotent_and_emits_one_event(world: World) -> None:
    await world.follow("bo", "ana")
    await world.unfollow("bo", "ana")
    await world.unfollow("bo", "ana")
    await world.unfollow("bo", "never-followed")
    assert await world.outbox.backlog() == 2
    assert (await world.profile("ana")).followers == 0


async def test_following_oneself_is_refused_and_changes_nothing(world: World) -> None:
    with pytest.raises(SelfFollow):
        await world.follow("ana", "ana")
    assert await world.outbox.backlog() == 0
    assert (await world.profile("ana")).following == 0


async def test_followers_and_following_page_in_id_order(world: World) -> None:
    for follower in ("di", "bo", "cy", "eve"):
        await world.follow(follower, "ana")
        await world.follow("ana", follower)
    for read in (world.followers, world.following):
        first = await read("ana", limit=3)
        assert first.items == ["bo", "cy", "di"]
        rest = await read("ana", limit=3, cursor=first.next_cursor)
        assert (rest.items, rest.next_cursor) == (["eve"], None)


async def test_lists_of_users_nobody_follows_are_empty(world: World) -> None:
    page = await world.followers("ana")
    assert (page.items, page.next_cursor) == ([], None)


async def test_muting_and_unmuting_are_idempotent_and_emit_one_event_each(world: World) -> None:
    await world.mute("ana", "bo")
    await world.mute("ana", "bo")
    await world.unmute("ana", "bo")
    await world.unmute("ana", "bo")
    await world.unmute("ana", "never-muted")

    events = await relayed(world)
    assert [type(event) for event in events] == [UserMuted, UserUnmuted]
    assert [(event.user_id, event.muted_id) for event in events if isinstance(event, UserMuted | UserUnmuted)] == [
        ("ana", "bo"),
        ("ana", "bo"),
    ]


async def test_muting_or_blocking_oneself_is_refused_and_changes_nothing(world: World) -> None:
    with pytest.raises(SelfMute):
        await world.mute("ana", "ana")
    with pytest.raises(SelfBlock):
        await world.block("ana", "ana")
    assert await world.outbox.backlog() == 0


async def test_a_block_unfollows_both_ways_with_one_event_per_follow(world: World) -> None:
    await world.follow("ana", "bo")
    await world.follow("bo", "ana")
    await world.follow("cy", "bo")
    await relayed(world)

    await world.block("bo", "ana")
    await world.block("bo", "ana")

    events = await relayed(world)
    assert all(isinstance(event, UserUnfollowed) for event in events)
    assert sorted((event.follower_id, event.followee_id) for event in events if isinstance(event, UserUnfollowed)) == [
        ("ana", "bo"),
        ("bo", "ana"),
    ]
    assert (await world.profile("bo")).followers == 1  # cy's follow stays
    assert (await world.profile("ana")).followers == 0


async def test_a_block_refuses_follows_both_ways_until_lifted_and_restores_nothing(world: World) -> None:
    await world.follow("ana", "bo")
    await world.block("ana", "bo")
    for follower, followee in [("ana", "bo"), ("bo", "ana")]:
        with pytest.raises(FollowBlocked):
            await world.follow(follower, followee)

    await world.unblock("ana", "bo")
    assert (await world.profile("ana")).following == 0
    await world.follow("bo", "ana")
    assert (await world.profile("ana")).followers == 1

from __future__ import annotations

import pytest

from feedcore import SelfFollow
from tests.support.world import World


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

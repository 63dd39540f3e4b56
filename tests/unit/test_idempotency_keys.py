from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from feedcore import IdempotencyKeyInFlight, IdempotencyKeyReused, InvalidIdempotencyKey, Post, UserId
from tests.unit.world import World


async def test_the_same_request_again_returns_the_first_post_and_stores_nothing(world: World) -> None:
    first = await world.publish("ana", "hi", key="k-1")
    again = await world.publish("ana", "hi", key="k-1")
    assert again == first
    assert (await world.profile("ana")).posts == 1
    assert await world.outbox.backlog() == 1


async def test_the_key_with_other_content_is_refused(world: World) -> None:
    await world.publish("ana", "hi", key="k-1")
    with pytest.raises(IdempotencyKeyReused):
        await world.publish("ana", "bye", key="k-1")
    assert (await world.profile("ana")).posts == 1


async def test_keys_are_scoped_per_user(world: World) -> None:
    mine = await world.publish("ana", "hi", key="k-1")
    theirs = await world.publish("bo", "hi", key="k-1")
    assert mine.id != theirs.id


async def test_a_retry_while_the_first_is_in_flight_is_a_conflict(world: World) -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    publish = world.posts.publish

    async def slow_publish(*args: object, **kwargs: object) -> None:
        entered.set()
        await release.wait()
        await publish(*args, **kwargs)  # type: ignore[arg-type]

    world.posts.publish = slow_publish  # type: ignore[method-assign]
    first = asyncio.ensure_future(world.publish("ana", "hi", key="k-1"))
    await entered.wait()
    with pytest.raises(IdempotencyKeyInFlight):
        await world.publish("ana", "hi", key="k-1")
    release.set()
    post = await first
    world.posts.publish = publish  # type: ignore[method-assign]
    assert await world.publish("ana", "hi", key="k-1") == post


async def test_a_failed_request_frees_its_key(world: World) -> None:
    publish = world.posts.publish

    async def failing(*_: object, **__: object) -> None:
        raise ConnectionError("store went away")

    world.posts.publish = failing  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await world.publish("ana", "hi", key="k-1")
    world.posts.publish = publish  # type: ignore[method-assign]
    post = await world.publish("ana", "hi", key="k-1")
    assert isinstance(post, Post)
    assert (await world.profile("ana")).posts == 1


async def test_keys_expire_after_a_day(world: World) -> None:
    first = await world.publish("ana", "hi", key="k-1")
    world.clock.advance(timedelta(hours=23))
    assert await world.publish("ana", "hi", key="k-1") == first
    world.clock.advance(timedelta(hours=1, seconds=1))
    assert await world.publish("ana", "hi", key="k-1") != first


@pytest.mark.parametrize("key", ["", "with space", "x" * 256, "é"])
async def test_malformed_keys_are_refused_and_change_nothing(world: World, key: str) -> None:
    with pytest.raises(InvalidIdempotencyKey):
        await world.publish("ana", "hi", key=key)
    assert (await world.profile(UserId("ana"))).posts == 0

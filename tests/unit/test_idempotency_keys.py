from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from feedcore import (
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    IdempotencyRecord,
    InvalidContent,
    InvalidIdempotencyKey,
    Post,
    UserId,
)
from tests.support.world import World


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
    publish = world.posts.publish

    async def held_by_another_request(*_: object, **__: object) -> IdempotencyRecord:
        return IdempotencyRecord(fingerprint=hashlib.sha256(b"hi").hexdigest(), post=None)

    world.posts.publish = held_by_another_request  # type: ignore[method-assign]
    with pytest.raises(IdempotencyKeyInFlight):
        await world.publish("ana", "hi", key="k-1")
    with pytest.raises(IdempotencyKeyReused):
        await world.publish("ana", "bye", key="k-1")
    world.posts.publish = publish  # type: ignore[method-assign]
    assert (await world.profile("ana")).posts == 0


async def test_a_refused_request_leaves_its_key_free(world: World) -> None:
    with pytest.raises(InvalidContent):
        await world.publish("ana", "", key="k-1")
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

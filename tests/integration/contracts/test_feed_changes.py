"""The FeedChanges contract, on the in-memory adapter and on Redis pub/sub (a server and a cluster)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from feedcore.adapters.memory import InMemoryFeedChanges
from feedcore.adapters.redis import RedisFeedChanges
from feedcore.model import PostId, UserId
from feedcore.ports import FeedChanges, FeedsChanged, Removal
from tests.integration.contracts.test_caches import client_for

WAIT = 5.0


@pytest.fixture(params=["memory", "redis", "redis-cluster"])
def changes(request: pytest.FixtureRequest, redis_prefix: str) -> FeedChanges:
    if request.param == "memory":
        return InMemoryFeedChanges()
    return RedisFeedChanges(client_for(request), prefix=redis_prefix)


@contextlib.asynccontextmanager
async def listening(changes: FeedChanges) -> AsyncIterator[AsyncIterator[FeedsChanged | None]]:
    """A listener that has heard its first None: subscribed, announcements from now on reach it."""
    listener = changes.listen()
    try:
        async with asyncio.timeout(WAIT):
            assert await anext(listener) is None
        yield listener
    finally:
        await listener.aclose()  # type: ignore[attr-defined]  # an async generator, in every adapter


async def heard(listener: AsyncIterator[FeedsChanged | None]) -> FeedsChanged | None:
    async with asyncio.timeout(WAIT):
        return await anext(listener)


CHANGE = FeedsChanged(
    grown=[UserId("ana"), UserId("bo")],
    merged=[UserId("star")],
    regraphed=[UserId("cy")],
    removals=[
        Removal(author=UserId("bo"), post_id=PostId(2**62 + 1), users=[UserId("ana")]),
        Removal(author=UserId("dee")),
    ],
)


async def test_every_listener_hears_each_announcement_in_order(changes: FeedChanges) -> None:
    async with listening(changes) as first, listening(changes) as second:
        await changes.announce(CHANGE)
        await changes.announce(FeedsChanged(grown=[UserId("eve")]))
        for listener in (first, second):
            assert await heard(listener) == CHANGE
            assert await heard(listener) == FeedsChanged(grown=[UserId("eve")])


async def test_what_was_announced_before_a_listener_came_is_not_heard(changes: FeedChanges) -> None:
    await changes.announce(FeedsChanged(grown=[UserId("early")]))  # nobody listens: dropped, no error
    async with listening(changes) as listener:
        await changes.announce(FeedsChanged(grown=[UserId("late")]))
        assert await heard(listener) == FeedsChanged(grown=[UserId("late")])

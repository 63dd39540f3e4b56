"""Outbox: the relay's side."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from feedcore.events import Event
from tests.integration.contracts.blocks import (
    ANA,
    BOB,
    WAIT,
    BusDown,
    Collector,
    deleted,
    drain,
    failing_publish,
    followed,
    post,
    publish_all,
    published,
    unfollowed,
)
from tests.support.world import Adapters


class TestOutbox:
    async def test_events_come_out_oldest_first(self, ports: Adapters) -> None:
        first, second = post(2, BOB), post(1, ANA)
        await ports.posts.publish(first, published(first))
        await ports.graph.follow(ANA, BOB, followed(ANA, BOB))
        await ports.posts.publish(second, published(second))
        await ports.posts.delete(first.id, deleted(first))
        await ports.graph.unfollow(ANA, BOB, unfollowed(ANA, BOB))
        appended: list[Event] = [
            published(first),
            followed(ANA, BOB),
            published(second),
            deleted(first),
            unfollowed(ANA, BOB),
        ]

        collector = Collector()
        assert await ports.outbox.relay(collector, limit=2) == 2
        assert await ports.outbox.relay(collector, limit=2) == 2
        assert await ports.outbox.relay(collector, limit=2) == 1
        assert await ports.outbox.relay(collector, limit=2) == 0

        assert collector.batches == [appended[0:2], appended[2:4], appended[4:5]]

    async def test_the_backlog_counts_what_waits_up_to_a_limit(self, ports: Adapters) -> None:
        await publish_all(ports, [post(number) for number in (1, 2, 3)])

        assert await ports.outbox.backlog() == 3
        assert await ports.outbox.backlog(at_most=2) == 2
        assert await ports.outbox.relay(Collector(), limit=1) == 1
        assert await ports.outbox.backlog(at_most=10) == 2

    async def test_a_failed_publish_leaves_the_events(self, ports: Adapters) -> None:
        posts = [post(number) for number in (1, 2, 3)]
        await publish_all(ports, posts)

        with pytest.raises(BusDown):
            await ports.outbox.relay(failing_publish, limit=2)
        with pytest.raises(BusDown):
            await ports.outbox.relay(failing_publish, limit=10)

        assert await drain(ports.outbox) == [published(item) for item in posts]

    async def test_concurrent_relays_hand_out_disjoint_batches(self, ports: Adapters) -> None:
        posts = [post(number) for number in range(1, 6)]
        await publish_all(ports, posts)
        entered, release = asyncio.Event(), asyncio.Event()
        held: list[Event] = []

        async def blocked_publish(events: Sequence[Event]) -> None:
            held.extend(events)
            entered.set()
            await release.wait()

        first = asyncio.create_task(ports.outbox.relay(blocked_publish, limit=2))
        try:
            async with asyncio.timeout(WAIT):
                await entered.wait()
            second = Collector()
            async with asyncio.timeout(WAIT):
                assert await ports.outbox.relay(second, limit=2) == 2
        finally:
            release.set()
        async with asyncio.timeout(WAIT):
            assert await first == 2

        assert held == [published(posts[0]), published(posts[1])]
        assert second.events == [published(posts[2]), published(posts[3])]
        assert await drain(ports.outbox) == [published(posts[4])]

    async def test_a_blocked_relay_that_fails_hands_its_batch_out_again(self, ports: Adapters) -> None:
        posts = [post(number) for number in range(1, 4)]
        await publish_all(ports, posts)
        entered, release = asyncio.Event(), asyncio.Event()

        async def blocked_then_failing(events: Sequence[Event]) -> None:
            entered.set()
            await release.wait()
            raise BusDown(f"{len(events)} events not published")

        first = asyncio.create_task(ports.outbox.relay(blocked_then_failing, limit=2))
        try:
            async with asyncio.timeout(WAIT):
                await entered.wait()
            async with asyncio.timeout(WAIT):
                during = await drain(ports.outbox)
        finally:
            release.set()
        with pytest.raises(BusDown):
            await first

        assert during == [published(posts[2])]
        assert await drain(ports.outbox) == [published(posts[0]), published(posts[1])]

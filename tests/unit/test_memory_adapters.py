"""Behaviour of the in-memory adapters that the contract of their ports leaves to them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedcore import Event, PostId, PostPublished, UserId
from feedcore.adapters.memory import InMemoryEventBus, InMemoryFeedCache, InMemoryOutbox
from feedcore.adapters.memory._sorted import SortedKeys

AT = datetime(2026, 1, 1, tzinfo=UTC)


def published(n: int, author: str = "ana") -> PostPublished:
    return PostPublished(event_id=str(n), occurred_at=AT, post_id=PostId(n), author_id=UserId(author))


@given(st.sets(st.integers(min_value=0, max_value=50)), st.integers(0, 60), st.integers(0, 60), st.integers(1, 10))
def test_sorted_keys_slice_like_a_sorted_list(keys: set[int], low: int, high: int, limit: int) -> None:
    sorted_keys: SortedKeys[int] = SortedKeys()
    for key in keys:
        assert sorted_keys.add(key)
        assert not sorted_keys.add(key)
    ordered = sorted(keys)
    assert list(sorted_keys) == ordered
    assert (
        sorted_keys.descending(before=high, floor=low, limit=limit)
        == [k for k in ordered if low <= k < high][::-1][:limit]
    )
    assert sorted_keys.ascending(after=low, limit=limit) == [k for k in ordered if k > low][:limit]
    assert sorted_keys.discard(low) == (low in keys)
    assert low not in sorted_keys


class TestEventBus:
    async def test_one_key_keeps_its_order_and_uncommitted_events_come_again(self) -> None:
        bus = InMemoryEventBus(partitions=3)
        await bus.publish([published(n) for n in range(1, 6)])
        partition = bus.partition_of("ana")
        first = bus.take(2, partition=partition)
        assert [d.event.event_id for d in first] == ["1", "2"]
        await bus.commit(first)
        assert [d.event.event_id for d in bus.take(2, partition=partition)] == ["3", "4"]
        bus.rewind()
        assert [d.event.event_id for d in bus.take(10)] == ["3", "4", "5"]
        assert bus.lag == 3

    async def test_receive_waits_for_the_first_event(self) -> None:
        bus = InMemoryEventBus()
        waiting = asyncio.ensure_future(bus.receive(max_events=5, max_wait=5))
        await asyncio.sleep(0)
        await bus.publish([published(1)])
        assert [d.event for d in await waiting] == [published(1)]
        assert await bus.receive(max_events=5, max_wait=0.01) == []

    async def test_commits_never_move_backwards(self) -> None:
        bus = InMemoryEventBus(partitions=1)
        await bus.publish([published(n) for n in range(1, 4)])
        deliveries = bus.take(3)
        await bus.commit(deliveries[2:])
        await bus.commit(deliveries[:1])
        assert bus.lag == 0


class TestOutbox:
    async def test_events_leave_only_once_published(self) -> None:
        outbox = InMemoryOutbox()
        outbox.append(published(1))

        async def fail(_: Sequence[Event]) -> None:
            raise ConnectionError

        with pytest.raises(ConnectionError):
            await outbox.relay(fail, limit=10)
        assert len(outbox) == 1
        sent: list[Event] = []

        async def send(events: Sequence[Event]) -> None:
            sent.extend(events)

        assert await outbox.relay(send, limit=10) == 1
        assert (sent, len(outbox)) == ([published(1)], 0)

    async def test_concurrent_relays_claim_different_events(self) -> None:
        outbox = InMemoryOutbox()
        for n in range(1, 4):
            outbox.append(published(n))
        release = asyncio.Event()
        batches: list[list[str]] = []

        async def slow(events: Sequence[Event]) -> None:
            await release.wait()
            batches.append([e.event_id for e in events])

        async def fast(events: Sequence[Event]) -> None:
            batches.append([e.event_id for e in events])

        first = asyncio.ensure_future(outbox.relay(slow, limit=2))
        await asyncio.sleep(0)
        assert await outbox.relay(fast, limit=5) == 1
        release.set()
        assert await first == 2
        assert batches == [["3"], ["1", "2"]]


class TestFeedCache:
    async def test_the_least_recently_read_feed_is_evicted_first(self) -> None:
        cache = InMemoryFeedCache(window=3, max_users=2)

        async def fill(user: UserId) -> None:
            await cache.begin_fill(user)
            assert await cache.finish_fill(user, [], horizon=PostId(0))

        for name in ("a", "b"):
            await fill(UserId(name))
        await cache.view(UserId("a"), before=None, limit=1)
        await fill(UserId("c"))
        assert (await cache.view(UserId("b"), before=None, limit=1)).window is None
        assert (await cache.view(UserId("a"), before=None, limit=1)).window is not None

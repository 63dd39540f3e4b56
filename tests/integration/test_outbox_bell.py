"""The relay on PostgreSQL wakes for this process's own writes, and polls only for the others'."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

import pytest
from psycopg_pool import AsyncConnectionPool

from feedcore.adapters.postgres import (
    OutboxBell,
    PostgresOutbox,
    PostgresPostStore,
    PostgresSocialGraph,
)
from feedcore.entrypoints.loops import run_relay
from feedcore.events import Event, PostDeleted, PostPublished, UserFollowed
from feedcore.model import Post, PostId, UserId

NOW: Final = datetime(2026, 7, 8, 9, 10, 11, tzinfo=UTC)
#: Far longer than any wake-up takes: a relay that waited for its poll would miss every deadline.
POLL_EVERY: Final = 30.0


@pytest.fixture
def pool(emptied_pool: AsyncConnectionPool[Any]) -> AsyncConnectionPool[Any]:
    return emptied_pool


class Relayed:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.arrived = asyncio.Event()

    async def publish(self, events: Sequence[Event]) -> None:
        self.events += events
        self.arrived.set()

    async def next(self, within: float) -> float:
        """Seconds until the next batch is published."""
        started = time.monotonic()
        await asyncio.wait_for(self.arrived.wait(), within)
        self.arrived.clear()
        return time.monotonic() - started


async def test_the_relay_wakes_for_each_write_of_its_process(pool: AsyncConnectionPool[Any]) -> None:
    bell = OutboxBell()
    posts, graph = PostgresPostStore(pool, bell=bell), PostgresSocialGraph(pool, bell=bell)
    relayed, stop = Relayed(), asyncio.Event()
    relay = asyncio.create_task(
        run_relay(PostgresOutbox(pool, bell=bell, poll_every=POLL_EVERY), relayed.publish, stop)
    )
    try:
        await asyncio.sleep(0.2)  # the relay has found the outbox empty and waits
        post = Post(id=PostId(1), author_id=UserId("ana"), content="wake up", created_at=NOW)
        await posts.publish(
            post, PostPublished(event_id="p", occurred_at=NOW, post_id=post.id, author_id=post.author_id)
        )
        assert await relayed.next(within=5) < 1
        await graph.follow(
            UserId("bo"),
            UserId("ana"),
            UserFollowed(event_id="f", occurred_at=NOW, follower_id="bo", followee_id="ana"),
        )
        assert await relayed.next(within=5) < 1
        await posts.delete(post.id, _deleted(post))
        assert await relayed.next(within=5) < 1
    finally:
        stop.set()
        await relay
    assert [event.event_id for event in relayed.events] == ["p", "f", "d"]


async def test_rows_of_other_processes_are_relayed_at_the_next_poll(pool: AsyncConnectionPool[Any]) -> None:
    elsewhere = PostgresPostStore(pool, bell=OutboxBell())  # another process's store: not this relay's bell
    relayed, stop = Relayed(), asyncio.Event()
    relay = asyncio.create_task(run_relay(PostgresOutbox(pool, poll_every=0.5), relayed.publish, stop))
    try:
        await asyncio.sleep(0.2)
        post = Post(id=PostId(2), author_id=UserId("ana"), content="poll", created_at=NOW)
        await elsewhere.publish(
            post, PostPublished(event_id="p2", occurred_at=NOW, post_id=post.id, author_id=post.author_id)
        )
        assert await relayed.next(within=5) < 1.5
    finally:
        stop.set()
        await relay


def _deleted(post: Post) -> PostDeleted:
    return PostDeleted(event_id="d", occurred_at=NOW, post_id=post.id, author_id=post.author_id)

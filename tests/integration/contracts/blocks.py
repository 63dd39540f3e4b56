"""What the contract tests build their cases from."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from psycopg_pool import AsyncConnectionPool

from feedcore.adapters.postgres import connection_pool
from feedcore.events import Event, PostDeleted, PostPublished, UserFollowed, UserMuted, UserUnfollowed, UserUnmuted
from feedcore.model import Post, PostId, UserId
from feedcore.ports import Outbox
from tests.integration.conftest import TABLES, postgres_adapters
from tests.support.world import Adapters

BASE_TIME: Final = datetime(2026, 3, 4, 5, 6, 7, 891_234, tzinfo=UTC)
OCCURRED_AT: Final = datetime(2026, 3, 4, 5, 6, 8, 123_456, tzinfo=UTC)
WAIT: Final = 10.0

ANA: Final = UserId("ana")
BOB: Final = UserId("bob")
CID: Final = UserId("cid")
DEE: Final = UserId("dee")


def post(number: int, author: UserId = ANA, *, fan_out: bool = True) -> Post:
    return Post(
        id=PostId(number),
        author_id=author,
        content=f"post {number} by {author}: héllo ✓",
        created_at=BASE_TIME + timedelta(seconds=number % 100_000, microseconds=number % 997),
        fan_out=fan_out,
    )


def ids_of(*numbers: int) -> list[PostId]:
    return [PostId(number) for number in numbers]


def published(item: Post) -> PostPublished:
    return PostPublished(
        event_id=f"published-{item.id}", occurred_at=OCCURRED_AT, post_id=item.id, author_id=item.author_id
    )


def deleted(item: Post) -> PostDeleted:
    return PostDeleted(
        event_id=f"deleted-{item.id}", occurred_at=OCCURRED_AT, post_id=item.id, author_id=item.author_id
    )


def followed(follower: UserId, followee: UserId, tag: str = "") -> UserFollowed:
    return UserFollowed(
        event_id=f"followed-{follower}-{followee}{tag}",
        occurred_at=OCCURRED_AT,
        follower_id=follower,
        followee_id=followee,
    )


def unfollowed(follower: UserId, followee: UserId, tag: str = "") -> UserUnfollowed:
    return UserUnfollowed(
        event_id=f"unfollowed-{follower}-{followee}{tag}",
        occurred_at=OCCURRED_AT,
        follower_id=follower,
        followee_id=followee,
    )


def muted(user: UserId, author: UserId, tag: str = "") -> UserMuted:
    return UserMuted(event_id=f"muted-{user}-{author}{tag}", occurred_at=OCCURRED_AT, user_id=user, muted_id=author)


def unmuted(user: UserId, author: UserId, tag: str = "") -> UserUnmuted:
    return UserUnmuted(event_id=f"unmuted-{user}-{author}{tag}", occurred_at=OCCURRED_AT, user_id=user, muted_id=author)


async def publish_all(ports: Adapters, posts: Sequence[Post]) -> None:
    for item in posts:
        await ports.posts.publish(item, published(item))


class Collector:
    """A publish function that keeps every batch it is handed."""

    def __init__(self) -> None:
        self.batches: list[list[Event]] = []

    async def __call__(self, events: Sequence[Event]) -> None:
        self.batches.append(list(events))

    @property
    def events(self) -> list[Event]:
        return [event for batch in self.batches for event in batch]


class BusDown(Exception):
    """What a failing publish function raises."""


async def failing_publish(events: Sequence[Event]) -> None:
    raise BusDown(f"{len(events)} events not published")


async def drain(outbox: Outbox) -> list[Event]:
    """Relay until the outbox is empty; every event published, oldest first."""
    collector = Collector()
    while await outbox.relay(collector, limit=3):
        pass
    return collector.events


def ids(posts: Sequence[Post]) -> list[int]:
    return [int(item.id) for item in posts]


@asynccontextmanager
async def postgres_ports(database: str) -> AsyncIterator[tuple[Adapters, AsyncConnectionPool[Any]]]:
    """The PostgreSQL adapters on empty tables, and their pool."""
    pool = connection_pool(database, min_size=1, max_size=4)
    await pool.open(wait=True, timeout=WAIT)
    try:
        async with pool.connection() as connection:
            await connection.execute(f"TRUNCATE {TABLES}")
        yield postgres_adapters(pool), pool
    finally:
        await pool.close()

"""The PostgreSQL post store's copy of the set of celebrities, which every feed read asks for."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Final

import pytest
from psycopg_pool import AsyncConnectionPool

from feedcore.adapters.postgres import PostgresPostStore
from feedcore.events import PostDeleted, PostPublished
from feedcore.model import Post, PostId, UserId

NOW: Final = datetime(2026, 9, 10, 11, 12, 13, tzinfo=UTC)
STAR: Final = UserId("star")


@pytest.fixture
def pool(emptied_pool: AsyncConnectionPool[Any]) -> AsyncConnectionPool[Any]:
    return emptied_pool


class Counted:
    """Counts the connections taken from a pool: one per query of the store's."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.taken = 0
        self._connection = pool.connection

        @asynccontextmanager
        async def connection(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            self.taken += 1
            async with self._connection(*args, **kwargs) as taken:
                yield taken

        self.connection = connection


@pytest.fixture
def counted(pool: AsyncConnectionPool[Any], monkeypatch: pytest.MonkeyPatch) -> Counted:
    counter = Counted(pool)
    monkeypatch.setattr(pool, "connection", counter.connection)
    return counter


def unfanned(number: int) -> tuple[Post, PostPublished]:
    post = Post(id=PostId(number), author_id=STAR, content="merged at read time", created_at=NOW, fan_out=False)
    return post, PostPublished(event_id=f"p{number}", occurred_at=NOW, post_id=post.id, author_id=STAR)


async def test_an_expired_copy_is_asked_for_once_while_reads_go_on_with_it(
    pool: AsyncConnectionPool[Any], counted: Counted
) -> None:
    store = PostgresPostStore(pool, celebrities_ttl=0.05)
    assert await store.celebrities() == frozenset()
    await PostgresPostStore(pool).publish(*unfanned(1))  # by another process: this copy does not know yet
    await asyncio.sleep(0.1)
    counted.taken = 0

    answers = await asyncio.gather(*(store.celebrities() for _ in range(50)))

    assert answers == [frozenset()] * 50  # the copy, at once
    await asyncio.sleep(0.1)
    assert counted.taken == 1  # one query for all of them
    assert await store.celebrities() == frozenset({STAR})


async def test_this_store_s_publishes_and_deletions_show_at_once(pool: AsyncConnectionPool[Any]) -> None:
    store = PostgresPostStore(pool, celebrities_ttl=3600)
    assert await store.celebrities() == frozenset()
    post, published = unfanned(2)
    await store.publish(post, published)
    assert await store.celebrities() == frozenset({STAR})
    await store.delete(post.id, PostDeleted(event_id="d2", occurred_at=NOW, post_id=post.id, author_id=STAR))
    assert await store.celebrities() == frozenset()

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from adapters.redis.cache import RedisFeedCache
from feedcore.model import Post, PostId, UserId
from feedcore.ports import CachedFeed

_log = logging.getLogger(__name__)
T = TypeVar("T")
#: What says Redis is away or too slow, as opposed to a bug.
UNAVAILABLE: tuple[type[Exception], ...] = (RedisError, OSError, TimeoutError)


class ResilientFeedCache:
    """A Redis feed cache that Redis being down or slow never fails.

    While Redis fails, reads report every feed as not cached (the core then reads PostgreSQL) and
    writes are skipped, and no request waits for Redis: after one failure it is left alone until it
    answers again (asked every ``pause`` seconds, in the background). A process that saw Redis fail
    may have skipped writes (a post's tombstone among them), so the moment Redis answers, it drops
    every key under its prefix, and only then uses Redis again: each feed, window and body is
    rebuilt from PostgreSQL on its next read, none is left stale.
    """

    def __init__(
        self,
        cache: RedisFeedCache,
        client: Redis,
        *,
        prefix: str,
        pause: float = 1.0,
        on_fallback: Callable[[str], None] | None = None,
    ) -> None:
        self._cache = cache
        self._client = client
        self._pattern = f"{prefix}*"
        self._pause = pause
        self._on_fallback = on_fallback
        self._dirty = False
        self._recovery: asyncio.Task[None] | None = None

    async def read(self, user: UserId, *, before: PostId | None, limit: int) -> CachedFeed | None:
        return await self._guarded("read", lambda: self._cache.read(user, before=before, limit=limit), None)

    async def fill(self, user: UserId, entries: Sequence[PostId], *, horizon: PostId) -> None:
        await self._guarded("fill", lambda: self._cache.fill(user, entries, horizon=horizon), None)

    async def add(self, users: Sequence[UserId], post_id: PostId) -> None:
        await self._guarded("add", lambda: self._cache.add(users, post_id), None)

    async def remove(self, users: Sequence[UserId], post_id: PostId) -> None:
        await self._guarded("remove", lambda: self._cache.remove(users, post_id), None)

    async def invalidate(self, user: UserId) -> None:
        await self._guarded("invalidate", lambda: self._cache.invalidate(user), None)

    async def read_followed_unfanned(self, user: UserId, *, digest: str) -> frozenset[UserId] | None:
        return await self._guarded(
            "read_followed", lambda: self._cache.read_followed_unfanned(user, digest=digest), None
        )

    async def keep_followed_unfanned(self, user: UserId, *, digest: str, authors: Collection[UserId]) -> None:
        await self._guarded(
            "keep_followed", lambda: self._cache.keep_followed_unfanned(user, digest=digest, authors=authors), None
        )

    async def read_unfanned(
        self, authors: Collection[UserId], *, before: PostId | None, limit: int
    ) -> dict[UserId, CachedFeed]:
        return await self._guarded(
            "read_unfanned", lambda: self._cache.read_unfanned(authors, before=before, limit=limit), {}
        )

    async def fill_unfanned(self, author: UserId, entries: Sequence[PostId], *, horizon: PostId) -> None:
        await self._guarded("fill_unfanned", lambda: self._cache.fill_unfanned(author, entries, horizon=horizon), None)

    async def add_unfanned(self, author: UserId, post_id: PostId) -> None:
        await self._guarded("add_unfanned", lambda: self._cache.add_unfanned(author, post_id), None)

    async def remove_unfanned(self, author: UserId, post_id: PostId) -> None:
        await self._guarded("remove_unfanned", lambda: self._cache.remove_unfanned(author, post_id), None)

    async def invalidate_unfanned(self, author: UserId) -> None:
        await self._guarded("invalidate_unfanned", lambda: self._cache.invalidate_unfanned(author), None)

    async def posts(self, post_ids: Collection[PostId]) -> dict[PostId, Post | None]:
        return await self._guarded("posts", lambda: self._cache.posts(post_ids), {})

    async def keep_posts(self, posts: Sequence[Post]) -> None:
        await self._guarded("keep_posts", lambda: self._cache.keep_posts(posts), None)

    async def forget_post(self, post_id: PostId) -> None:
        await self._guarded("forget_post", lambda: self._cache.forget_post(post_id), None)

    async def _guarded(self, operation: str, action: Callable[[], Awaitable[T]], fallback: T) -> T:
        if self._dirty:
            self._fell_back(operation)
            return fallback
        try:
            return await action()
        except UNAVAILABLE as error:
            _log.warning("Redis unavailable (%r): feeds are read from PostgreSQL until it is back", error)
            self._dirty = True
            if self._recovery is None or self._recovery.done():
                # A context of its own: the request that saw the failure is not the recovery's.
                self._recovery = asyncio.create_task(self._recover(), context=contextvars.Context())
            self._fell_back(operation)
            return fallback

    async def _recover(self) -> None:
        while self._dirty:
            await asyncio.sleep(self._pause)
            try:
                await self._drop_every_feed()
            except UNAVAILABLE:
                continue

    async def _drop_every_feed(self) -> None:
        keys = [key async for key in self._client.scan_iter(match=self._pattern, count=1_000)]
        async with self._client.pipeline(transaction=False) as pipe:
            for key in keys:  # one key a command: keys of a cluster live in many slots
                pipe.unlink(key)
            dropped = sum(await pipe.execute())
        self._dirty = False
        _log.warning("Redis is back: dropped %d cached keys that may have missed writes", dropped)

    def _fell_back(self, operation: str) -> None:
        if self._on_fallback is not None:
            self._on_fallback(operation)

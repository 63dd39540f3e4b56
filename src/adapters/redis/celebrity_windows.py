"""Celebrity windows in Redis: each celebrity's posts that were not fanned out."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from feedcore.adapters.redis.windows import RedisWindows
from feedcore.model import PostId, UserId
from feedcore.ports import CachedFeed


class RedisCelebrityWindows(RedisWindows):
    """The newest ``window`` unfanned posts of each celebrity read lately; expire as feeds do."""

    def _key(self, author: UserId) -> str:
        return f"{self._prefix}celebrity:{{{author}}}"

    async def read(self, authors: Collection[UserId], *, before: PostId | None, limit: int) -> dict[UserId, CachedFeed]:
        ordered = list(authors)

        async def read() -> dict[UserId, CachedFeed]:
            found = await self._windows.read([self._key(author) for author in ordered], before, limit)
            return {author: window for author, window in zip(ordered, found, strict=True) if window is not None}

        return await self._guard.run("read_celebrities", read, {})

    async def add(self, author: UserId, post_id: PostId) -> None:
        await self._guard.run("add_celebrity", lambda: self._windows.add([([self._key(author)], post_id)]), None)

    async def remove(self, author: UserId, post_id: PostId) -> None:
        keys = [self._key(author)]
        await self._guard.run("remove_celebrity", lambda: self._windows.remove([keys], post_id), None)

    async def begin_fill(self, author: UserId) -> None:
        await self._guard.run("begin_fill_celebrity", lambda: self._windows.begin(self._key(author)), None)

    async def finish_fill(self, author: UserId, entries: Sequence[PostId], *, horizon: PostId) -> bool:
        keys = [self._key(author)]
        return await self._guard.run(
            "fill_celebrity", lambda: self._windows.finish(keys, entries, horizon), fallback=False
        )

    async def drop(self, author: UserId) -> None:
        await self._guard.run("drop_celebrity", lambda: self._client.delete(self._key(author)), None)

"""The feed cache in Redis: each user's window, the celebrities the user sees, and rendered first
pages, all under the user's hash tag."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final

from feedcore.adapters.redis.windows import RedisWindows, below, text, window_of
from feedcore.model import PostId, UserId
from feedcore.ports import FeedView

# A feed read past a kept page: the celebrities seen (when a version is given, ARGV[5]); and when
# the feed is cached, the pages' stamp (set from ARGV[6] when there is none, and only when a page
# was asked for, ARGV[1]), the horizon member and the slice, renewing the window's TTL. KEYS: the
# window, its pages, the celebrities seen; ARGV: page name or "", upper bound (BYLEX), limit,
# ttl (ms), version or "", a new stamp.
_VIEW: Final = """
local seen = false
if ARGV[5] ~= '' then seen = redis.call('GET', KEYS[3]) end
local top = redis.call('ZRANGE', KEYS[1], '(0', '-', 'BYLEX', 'REV', 'LIMIT', 0, 1)
if #top == 0 or string.sub(top[1], 1, 2) ~= '!h' then return {false, seen} end
local stamp = ''
if ARGV[1] ~= '' then
  redis.call('HSETNX', KEYS[2], '~', ARGV[6])
  stamp = redis.call('HGET', KEYS[2], '~')
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
local entries = redis.call('ZRANGE', KEYS[1], ARGV[2], '[0', 'BYLEX', 'REV', 'LIMIT', 0, tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {false, seen, stamp, top[1], entries}
"""

# Keeps a rendered page, if the stamp is still the pages' own (no change dropped them since) and
# the feed is still cached. KEYS: the pages, the window; ARGV: stamp, page name, page, ttl (ms).
_KEEP_PAGE: Final = """
if redis.call('HGET', KEYS[1], '~') ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""


class RedisFeedCache(RedisWindows):
    """The newest ``window`` entries of active users' feeds, with the celebrities each user sees and
    their rendered first pages.

    A feed stays cached ``ttl`` after it was last filled, changed or read past a kept page (a read
    of a kept page writes nothing); feeds nobody reads expire, so inactive users cost nothing (and
    Redis may evict any key early: it is only rebuilt).

    The ``cached`` set lets fan-out skip, in one command, the followers whose feeds are not cached
    (most of them, as most users are not reading at any moment) rather than ask Redis about each. A
    user joins it before their feed is first filled, and never leaves it: a member whose feed has
    since expired costs one no-op script per post.
    """

    SCRIPTS = (_VIEW, _KEEP_PAGE)

    def _keys(self, user: UserId) -> tuple[str, str, str]:
        """The user's window, pages and celebrities seen: one hash slot, the user's."""
        tag = f"{{{user}}}"
        return f"{self._prefix}feed:{tag}", f"{self._prefix}pages:{tag}", f"{self._prefix}seen:{tag}"

    @property
    def _registry(self) -> str:
        return self.registry(self._prefix)

    @staticmethod
    def registry(prefix: str) -> str:
        """The key of the set of users who may have a cached feed (see the class)."""
        return f"{prefix}cached"

    async def view(
        self,
        user: UserId,
        *,
        before: PostId | None,
        limit: int,
        page: str | None = None,
        celebrities: str | None = None,
    ) -> FeedView:
        return await self._guard.run("read", lambda: self._view(user, before, limit, page, celebrities), FeedView())

    async def _view(
        self, user: UserId, before: PostId | None, limit: int, page: str | None, celebrities: str | None
    ) -> FeedView:
        keys = self._keys(user)
        if page is not None:
            # A kept page is one plain HGET: no script, nothing written. Pages need not be checked
            # against the window: whatever changes the feed drops them.
            kept = await self._execute("HGET", keys[1], page)
            if kept is not None:
                return FeedView(page=kept)
        stamp = next(self._stamps) if page is not None else ""
        args = (page or "", below(before), limit, self._windows.ttl_ms, celebrities or "", stamp)
        reply = await self._scripts.run(self._shas[_VIEW], keys, args)
        seen = _seen(reply[1], celebrities)
        if len(reply) == 2:
            return FeedView(celebrities=seen)
        return FeedView(window=window_of([reply[3], *reply[4]]), celebrities=seen, stamp=text(reply[2]))

    async def add(self, additions: Mapping[PostId, Sequence[UserId]]) -> None:
        await self._guard.run("add", lambda: self._add(additions), None)

    async def _add(self, additions: Mapping[PostId, Sequence[UserId]]) -> None:
        # One question to the registry for the users of all the posts, one pipeline for all of them.
        cached = set(await self._cached_among(list({user for users in additions.values() for user in users})))
        await self._windows.add(
            [
                (self._keys(user)[:2], post_id)
                for post_id, users in additions.items()
                for user in users
                if user in cached
            ]
        )

    async def remove(self, users: Sequence[UserId], post_id: PostId) -> None:
        await self._guard.run("remove", lambda: self._remove(users, post_id), None)

    async def _remove(self, users: Sequence[UserId], post_id: PostId) -> None:
        cached = await self._cached_among(users)
        if cached:
            await self._windows.remove([self._keys(user)[:2] for user in cached], post_id)

    async def begin_fill(self, user: UserId) -> None:
        async def begin() -> None:
            await self._client.sadd(self._registry, user)  # first: see the class
            await self._windows.begin(self._keys(user)[0])

        await self._guard.run("begin_fill", begin, None)

    async def finish_fill(self, user: UserId, entries: Sequence[PostId], *, horizon: PostId) -> bool:
        keys = self._keys(user)[:2]
        return await self._guard.run("fill", lambda: self._windows.finish(keys, entries, horizon), fallback=False)

    async def drop(self, user: UserId) -> None:
        await self._guard.run("drop", lambda: self._client.delete(*self._keys(user)), None)

    async def keep_celebrities(self, user: UserId, *, celebrities: str, seen: Collection[UserId]) -> None:
        # User ids hold no line breaks (USER_ID_PATTERN).
        kept = "\n".join([celebrities, *sorted(seen)])
        key = self._keys(user)[2]
        await self._guard.run("keep_celebrities", lambda: self._client.set(key, kept, px=self._windows.ttl_ms), None)

    async def keep_page(self, user: UserId, *, page: str, rendered: bytes, stamp: str) -> None:
        feed, pages, _ = self._keys(user)
        args = (stamp, page, rendered, self._windows.ttl_ms)
        await self._guard.run("keep_page", lambda: self._scripts.run(self._shas[_KEEP_PAGE], (pages, feed), args), None)

    async def drop_pages(self, users: Sequence[UserId]) -> None:
        await self._guard.run("drop_pages", lambda: self._drop_pages(users), None)

    async def _drop_pages(self, users: Sequence[UserId]) -> None:
        if not users:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for user in users:  # one key a command (the users' keys live in many slots), a plain one
                pipe.execute_command("DEL", self._keys(user)[1])  # (a cluster's pipeline runs delete() at once)
            await pipe.execute()

    async def _cached_among(self, users: Sequence[UserId]) -> list[UserId]:
        if not users:
            return []
        flags = await self._client.smismember(self._registry, list(users))
        return [user for user, flag in zip(users, flags, strict=True) if flag]


def _seen(kept: Any, celebrities: str | None) -> frozenset[UserId] | None:
    if kept is None or celebrities is None:
        return None
    version, *authors = text(kept).split("\n")
    return frozenset(UserId(author) for author in authors) if version == celebrities else None

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import timedelta
from typing import Any, Final

import msgspec
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from feedcore.model import Post, PostId, UserId, from_sortable_key, sortable_key
from feedcore.ports import CachedFeed

# One sorted set per cached feed. Every member has score 0, so the set is ordered by member, and
# members are post ids as fixed-width digit strings (ids exceed a double's 53 bits: they cannot be
# scores). The feed's horizon lives in the same set as one member below every digit string,
# "!h<id>": a feed and its horizon are one key, so they are evicted, expired and replaced together,
# and a cluster keeps them in one slot.
_HORIZON: Final = "!h"

# A deleted post's body key holds this instead of the body, so that no late fill brings it back.
_DELETED: Final = b"-"

# Adds one post to one cached feed: only when the feed is cached and the post is at or above its
# horizon; the oldest entries beyond the window go, and the horizon rises to the oldest kept.
# KEYS[1] the feed; ARGV: member, window, ttl (ms).
_ADD: Final = """
local found = redis.call('ZRANGE', KEYS[1], '-', '(0', 'BYLEX', 'LIMIT', 0, 1)
if #found == 0 then return 0 end
local horizon = string.sub(found[1], 3)
if ARGV[1] < horizon then return 0 end
redis.call('ZADD', KEYS[1], 0, ARGV[1])
local window = tonumber(ARGV[2])
local excess = redis.call('ZCARD', KEYS[1]) - 1 - window
if excess > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 1, excess)
  local lowest = redis.call('ZRANGE', KEYS[1], 1, 1)[1]
  if lowest > horizon then
    redis.call('ZREM', KEYS[1], found[1])
    redis.call('ZADD', KEYS[1], 0, '!h' .. lowest)
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""


# Reads one page of one cached feed, and renews its TTL: nothing at all when the feed is not
# cached, else its horizon member followed by the page. KEYS[1] the feed; ARGV: upper bound
# (BYLEX), limit, ttl (ms).
_READ: Final = """
local found = redis.call('ZRANGE', KEYS[1], '(0', '-', 'BYLEX', 'REV', 'LIMIT', 0, 1)
if #found == 0 then return {} end
local page = redis.call('ZRANGE', KEYS[1], ARGV[1], '[0', 'BYLEX', 'REV', 'LIMIT', 0, tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
table.insert(page, 1, found[1])
return page
"""


class RedisFeedCache:
    """The newest ``window`` entries of active users' feeds, in Redis, with the same window over
    each author's unfanned posts, and post bodies.

    A feed read or filled stays cached ``ttl`` after its last read; feeds nobody reads expire, so
    inactive users cost nothing (and Redis may evict any key early: it is only rebuilt). Keys::

        {prefix}feed:{user}         a user's feed (the user is the hash tag)
        {prefix}followed:{user}     the unfanned authors the user follows, after the digest they
                                    were worked out for (one line each)
        {prefix}unfanned:{author}   an author's posts that were not fanned out
        {prefix}post:{id}           a post's body (msgspec JSON), or "-" once it is deleted
        {prefix}cached              every user whose feed was ever cached (a set)

    The set lets fan-out skip, in one command, the followers whose feeds are not cached (most of
    them, as most users are not reading at any moment) rather than ask Redis about each. A user
    joins it before their feed is first filled, and never leaves it: a member whose feed has since
    expired costs one no-op script per post.

    Bodies are read with one MGET: on a cluster, use a client that splits it by slot.
    """

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "feedcore:",
        window: int = 800,
        ttl: timedelta = timedelta(days=1),
        post_ttl: timedelta = timedelta(days=1),
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._window = window
        self._ttl_ms = int(ttl.total_seconds() * 1000)
        self._post_ttl_ms = int(post_ttl.total_seconds() * 1000)
        # A tombstone outlives any body that a read begun before the deletion could still write.
        self._deleted_ttl_ms = 2 * self._post_ttl_ms
        self._add = client.register_script(_ADD)
        self._read = client.register_script(_READ)
        self._encode = msgspec.json.Encoder().encode
        self._decode = msgspec.json.Decoder(Post).decode

    def _key(self, user: UserId) -> str:
        return f"{self._prefix}feed:{{{user}}}"  # {user}: the hash tag

    def _followed_key(self, user: UserId) -> str:
        return f"{self._prefix}followed:{{{user}}}"  # in the slot of the user's feed

    def _unfanned_key(self, author: UserId) -> str:
        return f"{self._prefix}unfanned:{{{author}}}"

    def _post_key(self, post_id: PostId) -> str:
        return f"{self._prefix}post:{post_id}"

    @property
    def _registry(self) -> str:
        return f"{self._prefix}cached"

    async def _cached_among(self, users: Sequence[UserId]) -> list[UserId]:
        if not users:
            return []
        flags = await self._client.smismember(self._registry, list(users))
        return [user for user, flag in zip(users, flags, strict=True) if flag]

    async def read(self, user: UserId, *, before: PostId | None, limit: int) -> CachedFeed | None:
        return _window(await self._read(keys=[self._key(user)], args=_read_args(before, limit, self._ttl_ms)))

    async def fill(self, user: UserId, entries: Sequence[PostId], *, horizon: PostId) -> None:
        await self._client.sadd(self._registry, user)  # first: see the class
        await self._fill(self._key(user), entries, horizon)

    async def add(self, users: Sequence[UserId], post_id: PostId) -> None:
        await self._add_to([self._key(user) for user in await self._cached_among(users)], post_id)

    async def remove(self, users: Sequence[UserId], post_id: PostId) -> None:
        await self._remove_from([self._key(user) for user in await self._cached_among(users)], post_id)

    async def invalidate(self, user: UserId) -> None:
        await self._client.delete(self._key(user), self._followed_key(user))

    async def read_followed_unfanned(self, user: UserId, *, digest: str) -> frozenset[UserId] | None:
        kept = await self._client.get(self._followed_key(user))
        if kept is None:
            return None
        kept_digest, *authors = _text(kept).split("\n")
        return frozenset(UserId(author) for author in authors) if kept_digest == digest else None

    async def keep_followed_unfanned(self, user: UserId, *, digest: str, authors: Collection[UserId]) -> None:
        # User ids hold no line breaks (USER_ID_PATTERN).
        await self._client.set(self._followed_key(user), "\n".join([digest, *sorted(authors)]), px=self._ttl_ms)

    async def read_unfanned(
        self, authors: Collection[UserId], *, before: PostId | None, limit: int
    ) -> dict[UserId, CachedFeed]:
        ordered = list(authors)
        args = _read_args(before, limit, self._ttl_ms)
        if len(ordered) == 1:
            replies = [await self._read(keys=[self._unfanned_key(ordered[0])], args=args)]
        else:
            replies = await self._each(self._read, [self._unfanned_key(author) for author in ordered], args)
        found = {author: _window(reply) for author, reply in zip(ordered, replies, strict=True)}
        return {author: cached for author, cached in found.items() if cached is not None}

    async def fill_unfanned(self, author: UserId, entries: Sequence[PostId], *, horizon: PostId) -> None:
        await self._fill(self._unfanned_key(author), entries, horizon)

    async def add_unfanned(self, author: UserId, post_id: PostId) -> None:
        await self._add_to([self._unfanned_key(author)], post_id)

    async def remove_unfanned(self, author: UserId, post_id: PostId) -> None:
        await self._remove_from([self._unfanned_key(author)], post_id)

    async def invalidate_unfanned(self, author: UserId) -> None:
        await self._client.delete(self._unfanned_key(author))

    async def posts(self, post_ids: Collection[PostId]) -> dict[PostId, Post | None]:
        ordered = list(post_ids)
        if not ordered:
            return {}
        found: dict[PostId, Post | None] = {}
        for post_id, value in zip(ordered, await self._client.mget([self._post_key(i) for i in ordered]), strict=True):
            if value == _DELETED:
                found[post_id] = None
            elif value is not None:
                found[post_id] = self._decode(value)
        return found

    async def keep_posts(self, posts: Sequence[Post]) -> None:
        if not posts:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for post in posts:
                # NX: a tombstone stays; a body already there is the same body.
                pipe.set(self._post_key(post.id), self._encode(post), nx=True, px=self._post_ttl_ms)
            await pipe.execute()

    async def forget_post(self, post_id: PostId) -> None:
        await self._client.set(self._post_key(post_id), _DELETED, px=self._deleted_ttl_ms)

    async def _fill(self, key: str, entries: Sequence[PostId], horizon: PostId) -> None:
        kept = sorted({entry for entry in entries if entry >= horizon}, reverse=True)
        if len(kept) > self._window:
            kept = kept[: self._window]
            horizon = max(horizon, kept[-1])
        members: dict[str, float] = {sortable_key(entry): 0 for entry in kept}
        members[_HORIZON + sortable_key(horizon)] = 0
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.zadd(key, members)
            pipe.pexpire(key, self._ttl_ms)
            await pipe.execute()

    async def _add_to(self, keys: Sequence[str], post_id: PostId) -> None:
        if not keys:
            return
        await self._each(self._add, keys, [sortable_key(post_id), self._window, self._ttl_ms])

    async def _each(self, script: AsyncScript, keys: Sequence[str], args: list[Any]) -> list[Any]:
        """``script`` on each of ``keys`` with the same ``args``, in one pipeline of EVALSHAs.

        redis-py's own pipelined scripts ask SCRIPT EXISTS first, one round trip more per
        pipeline; here a script Redis has lost (a restart, SCRIPT FLUSH) is loaded and the whole
        pipeline sent again, which the scripts allow: each one run twice leaves what it left once.
        """
        try:
            return await self._evalsha_each(script.sha, keys, args)
        except NoScriptError:
            await self._client.script_load(script.script)
            return await self._evalsha_each(script.sha, keys, args)

    async def _evalsha_each(self, sha: str, keys: Sequence[str], args: list[Any]) -> list[Any]:
        async with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.evalsha(sha, 1, key, *args)
            return list(await pipe.execute())

    async def _remove_from(self, keys: Sequence[str], post_id: PostId) -> None:
        if not keys:
            return
        member = sortable_key(post_id)
        async with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.zrem(key, member)
            await pipe.execute()


def _read_args(before: PostId | None, limit: int, ttl_ms: int) -> list[Any]:
    return ["+" if before is None else f"({sortable_key(before)}", limit, ttl_ms]


def _window(found: list[Any]) -> CachedFeed | None:
    """A read script's reply as a cached window: its horizon member, then the page."""
    if not found:
        return None
    horizon = from_sortable_key(_text(found[0])[len(_HORIZON) :])
    entries = [from_sortable_key(_text(member)) for member in found[1:]]
    return CachedFeed(entries=[entry for entry in entries if entry >= horizon], horizon=horizon)


def _text(member: Any) -> str:
    return member.decode() if isinstance(member, bytes) else str(member)

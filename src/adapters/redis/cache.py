"""The feed cache, celebrity windows and post bodies in Redis.

Keys, under a prefix (``feedcore:`` by default)::

    feed:{user}          a user's cached window (a sorted set; the user is the hash tag)
    pages:{user}         the user's rendered first pages, and the stamp they are kept under
    seen:{user}          the celebrities the user sees, after the version of the set of celebrities
                         they were worked out for (one line each)
    cached               every user whose feed was ever cached (a set)
    celebrity:{author}   a celebrity's posts that were not fanned out (a sorted set)
    post:{id}            a post's body (msgspec JSON), or "-" once it is deleted

Everything of one user's is in the user's hash slot, so that every script and transaction touches
one slot of a cluster. Bodies are read with one MGET: on a cluster, use a client that splits it by
slot.

Given :class:`Lanes`, the single commands of reads (scripts, MGET) go through them rather than
through the client's pool.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import timedelta
from typing import Any, Final, Protocol, TypeVar

import msgspec
from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from adapters.redis.connection import Lanes
from feedcore.model import Post, PostId, UserId, from_sortable_key, sortable_key
from feedcore.ports import CachedFeed, FeedView

T = TypeVar("T")

# One sorted set per cached window. Every member has score 0, so the set is ordered by member, and
# members are post ids as fixed-width digit strings (ids exceed a double's 53 bits: they cannot be
# scores). The window's horizon lives in the same set as one member below every digit string,
# "!h<id>": a window and its horizon are one key, so they are evicted, expired and replaced
# together.
_HORIZON: Final = "!h"
# A fill begun and not finished holds only "!f" (a reader finds the feed not cached); a change
# that reaches it meanwhile adds "!d", and the fill then keeps nothing. Both sort below "!h".
_FILLING: Final = "!f"
#: The field of a user's pages hash that holds the stamp pages are kept under.
_STAMP: Final = "~"
# A deleted post's body key holds this instead of the body, so that no late fill brings it back.
_DELETED: Final = b"-"

# Adds one post to one cached window: only when the window is cached and the post is at or above
# its horizon; the oldest entries beyond the size go, and the horizon rises to the oldest kept. A
# fill under way is marked changed instead. A feed's rendered pages go with any change, and with
# any addition to a window that is gone (pages may outlive it: evicted, or expired a moment before
# them). KEYS[1] the window, KEYS[2] (feeds only) its pages; ARGV: member, size, ttl (ms).
_ADD: Final = """
local found = redis.call('ZRANGE', KEYS[1], '-', '(0', 'BYLEX', 'LIMIT', 0, 1)
if #found == 0 then
  if KEYS[2] then redis.call('DEL', KEYS[2]) end
  return 0
end
if string.sub(found[1], 1, 2) ~= '!h' then
  redis.call('ZADD', KEYS[1], 0, '!d')
  return 0
end
local horizon = string.sub(found[1], 3)
if ARGV[1] < horizon then return 0 end
if redis.call('ZADD', KEYS[1], 0, ARGV[1]) == 0 then return 0 end
if KEYS[2] then redis.call('DEL', KEYS[2]) end
local size = tonumber(ARGV[2])
local excess = redis.call('ZCARD', KEYS[1]) - 1 - size
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

# Reads one slice of one cached window and renews its TTL: nothing at all when it is not cached,
# else its horizon member followed by the slice. KEYS[1] the window; ARGV: upper bound (BYLEX),
# limit, ttl (ms).
_READ: Final = """
local found = redis.call('ZRANGE', KEYS[1], '(0', '-', 'BYLEX', 'REV', 'LIMIT', 0, 1)
if #found == 0 or string.sub(found[1], 1, 2) ~= '!h' then return {} end
local page = redis.call('ZRANGE', KEYS[1], ARGV[1], '[0', 'BYLEX', 'REV', 'LIMIT', 0, tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
table.insert(page, 1, found[1])
return page
"""

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


# Removes one post from one cached window (or marks a fill under way changed); a feed's rendered
# pages go, whether the window is there or not. KEYS[1] the window, KEYS[2] (feeds only) its pages;
# ARGV: member.
_REMOVE: Final = """
local found = redis.call('ZRANGE', KEYS[1], '-', '(0', 'BYLEX', 'LIMIT', 0, 1)
if #found > 0 and string.sub(found[1], 1, 2) ~= '!h' then
  redis.call('ZADD', KEYS[1], 0, '!d')
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
if KEYS[2] then redis.call('DEL', KEYS[2]) end
return 0
"""

# Begins a fill: the window becomes "!f" unless it exists (cached, or a fill already begun, whose
# finish this one's shares). KEYS[1] the window; ARGV: how long an unfinished fill stands (ms).
_BEGIN: Final = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('ZADD', KEYS[1], 0, '!f')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

# Finishes a fill: the members replace "!f" when nothing changed the window since it was begun,
# and the feed's pages go; a fill that a change reached is dropped, so that the next read begins
# again; a window filled meanwhile by another is left as it is. KEYS[1] the window, KEYS[2] (feeds
# only) its pages; ARGV: ttl (ms), then the members, horizon included.
_FINISH: Final = """
local found = redis.call('ZRANGE', KEYS[1], '-', '(0', 'BYLEX', 'LIMIT', 0, 1)
if #found == 0 or found[1] ~= '!f' then
  if #found > 0 and found[1] == '!d' then redis.call('DEL', KEYS[1]) end
  return 0
end
redis.call('DEL', KEYS[1])
local members = {}
for i = 2, #ARGV do
  members[#members + 1] = 0
  members[#members + 1] = ARGV[i]
end
redis.call('ZADD', KEYS[1], unpack(members))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
if KEYS[2] then redis.call('DEL', KEYS[2]) end
return 1
"""
#: How long a fill begun and never finished (its reader died) keeps the window from being filled.
_FILL_WITHIN_MS: Final = 60_000


class Guard(Protocol):
    """How the adapters meet Redis failing: :class:`adapters.redis.RedisOutages`, or not at all."""

    async def run(self, operation: str, action: Callable[[], Awaitable[T]], fallback: T) -> T:
        """``action``'s result, or ``fallback`` when Redis is away."""
        ...


class Unguarded:
    """Redis errors go to the caller."""

    async def run(self, operation: str, action: Callable[[], Awaitable[T]], fallback: T) -> T:
        return await action()


class _Scripts:
    """Lua scripts run by SHA; one that Redis has lost (a restart, SCRIPT FLUSH) is loaded and run
    again. redis-py's pipelined scripts ask SCRIPT EXISTS first, one round trip more per pipeline:
    here a pipeline is sent again instead, which the scripts allow (each one run twice leaves what
    it left once)."""

    def __init__(self, client: Redis, lanes: Lanes | None) -> None:
        self._client = client
        self._execute = lanes.execute if lanes is not None else client.execute_command
        self._source: dict[str, str] = {}

    def register(self, source: str) -> str:
        sha = self._client.register_script(source).sha
        self._source[sha] = source
        return sha

    async def run(self, sha: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return await self._execute("EVALSHA", sha, len(keys), *keys, *args)
        except NoScriptError:
            await self._client.script_load(self._source[sha])
            return await self._execute("EVALSHA", sha, len(keys), *keys, *args)

    async def each(self, sha: str, calls: Sequence[tuple[Sequence[str], Sequence[Any]]]) -> list[Any]:
        """``sha`` once for each (keys, arguments) of ``calls``, in one pipeline."""
        if not calls:
            return []
        try:
            return await self._pipelined(sha, calls)
        except NoScriptError:
            await self._client.script_load(self._source[sha])
            return await self._pipelined(sha, calls)

    async def _pipelined(self, sha: str, calls: Sequence[tuple[Sequence[str], Sequence[Any]]]) -> list[Any]:
        async with self._client.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(sha, len(keys), *keys, *args)
            return list(await pipe.execute())


class _Windows:
    """Cached windows of ids (feeds, or celebrities' posts) under one kind of key."""

    def __init__(self, scripts: _Scripts, *, size: int, ttl_ms: int) -> None:
        self._scripts = scripts
        self._size = size
        self.ttl_ms = ttl_ms
        self._add_sha = scripts.register(_ADD)
        self._read_sha = scripts.register(_READ)
        self._remove_sha = scripts.register(_REMOVE)
        self._begin_sha = scripts.register(_BEGIN)
        self._finish_sha = scripts.register(_FINISH)

    async def read(self, keys: Sequence[str], before: PostId | None, limit: int) -> list[CachedFeed | None]:
        args = read_args(before, limit, self.ttl_ms)
        if len(keys) == 1:
            return [window_of(await self._scripts.run(self._read_sha, keys, args))]
        return [window_of(reply) for reply in await self._scripts.each(self._read_sha, [([key], args) for key in keys])]

    def _members(self, entries: Sequence[PostId], horizon: PostId) -> list[str]:
        """The members of a window of ``entries`` (those within the size) and its horizon."""
        kept = sorted({entry for entry in entries if entry >= horizon}, reverse=True)
        if len(kept) > self._size:
            kept = kept[: self._size]
            horizon = max(horizon, kept[-1])
        return [*map(sortable_key, kept), _HORIZON + sortable_key(horizon)]

    def fill_into(self, pipe: Any, key: str, entries: Sequence[PostId], horizon: PostId) -> None:
        pipe.delete(key)
        pipe.zadd(key, dict.fromkeys(self._members(entries, horizon), 0))
        pipe.pexpire(key, self.ttl_ms)

    async def begin(self, key: str) -> None:
        await self._scripts.run(self._begin_sha, [key], [_FILL_WITHIN_MS])

    async def finish(self, keys: Sequence[str], entries: Sequence[PostId], horizon: PostId) -> bool:
        args = [self.ttl_ms, *self._members(entries, horizon)]
        return bool(await self._scripts.run(self._finish_sha, keys, args))

    async def remove(self, calls: Sequence[Sequence[str]], post_id: PostId) -> None:
        """``post_id`` out of the window under each keys of ``calls`` (the window, and for feeds its pages)."""
        member = sortable_key(post_id)
        await self._scripts.each(self._remove_sha, [(keys, (member,)) for keys in calls])

    async def add(self, additions: Sequence[tuple[Sequence[str], PostId]]) -> None:
        """Each post to the window under its keys (the window, and for feeds its pages)."""
        calls = [(keys, (sortable_key(post_id), self._size, self.ttl_ms)) for keys, post_id in additions]
        await self._scripts.each(self._add_sha, calls)


class _RedisWindows:
    """What the two adapters of cached windows share: the client, the lanes, and a key prefix."""

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "feedcore:",
        window: int = 800,
        ttl: timedelta = timedelta(days=1),
        guard: Guard | None = None,
        lanes: Lanes | None = None,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._guard = guard or Unguarded()
        self._scripts = _Scripts(client, lanes)
        self._execute = lanes.execute if lanes is not None else client.execute_command
        self._windows = _Windows(self._scripts, size=window, ttl_ms=int(ttl.total_seconds() * 1000))


class RedisFeedCache(_RedisWindows):
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

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "feedcore:",
        window: int = 800,
        ttl: timedelta = timedelta(days=1),
        guard: Guard | None = None,
        lanes: Lanes | None = None,
    ) -> None:
        super().__init__(client, prefix=prefix, window=window, ttl=ttl, guard=guard, lanes=lanes)
        self._view_sha = self._scripts.register(_VIEW)
        self._keep_page_sha = self._scripts.register(_KEEP_PAGE)
        # Stamps only have to differ between the reads that begin pages: this process's own prefix
        # and a count.
        self._stamps = map(f"{os.urandom(6).hex()}:{{}}".format, itertools.count())

    def _keys(self, user: UserId) -> tuple[str, str, str]:
        """The user's window, pages and celebrities seen: one hash slot, the user's."""
        tag = f"{{{user}}}"
        return f"{self._prefix}feed:{tag}", f"{self._prefix}pages:{tag}", f"{self._prefix}seen:{tag}"

    @property
    def _registry(self) -> str:
        return f"{self._prefix}cached"

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
        upper = "+" if before is None else f"({sortable_key(before)}"
        stamp = next(self._stamps) if page is not None else ""
        args = (page or "", upper, limit, self._windows.ttl_ms, celebrities or "", stamp)
        reply = await self._scripts.run(self._view_sha, keys, args)
        seen = _seen(reply[1], celebrities)
        if len(reply) == 2:
            return FeedView(celebrities=seen)
        return FeedView(window=window_of([reply[3], *reply[4]]), celebrities=seen, stamp=text(reply[2]))

    async def fill(self, user: UserId, entries: Sequence[PostId], *, horizon: PostId) -> None:
        await self._guard.run("fill", lambda: self._fill(user, entries, horizon), None)

    async def _fill(self, user: UserId, entries: Sequence[PostId], horizon: PostId) -> None:
        await self._client.sadd(self._registry, user)  # first: see the class
        feed, pages, _ = self._keys(user)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.delete(pages)
            self._windows.fill_into(pipe, feed, entries, horizon)
            await pipe.execute()

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
        await self._guard.run("keep_page", lambda: self._scripts.run(self._keep_page_sha, (pages, feed), args), None)

    async def drop_pages(self, users: Sequence[UserId]) -> None:
        await self._guard.run("drop_pages", lambda: self._drop_pages(users), None)

    async def _drop_pages(self, users: Sequence[UserId]) -> None:
        if not users:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for user in users:  # one key a command: the users' keys live in many slots
                pipe.delete(self._keys(user)[1])
            await pipe.execute()

    async def _cached_among(self, users: Sequence[UserId]) -> list[UserId]:
        if not users:
            return []
        flags = await self._client.smismember(self._registry, list(users))
        return [user for user, flag in zip(users, flags, strict=True) if flag]


class RedisCelebrityWindows(_RedisWindows):
    """The newest ``window`` unfanned posts of each celebrity read lately; expire as feeds do."""

    def _key(self, author: UserId) -> str:
        return f"{self._prefix}celebrity:{{{author}}}"

    async def read(self, authors: Collection[UserId], *, before: PostId | None, limit: int) -> dict[UserId, CachedFeed]:
        ordered = list(authors)

        async def read() -> dict[UserId, CachedFeed]:
            found = await self._windows.read([self._key(author) for author in ordered], before, limit)
            return {author: window for author, window in zip(ordered, found, strict=True) if window is not None}

        return await self._guard.run("read_celebrities", read, {})

    async def fill(self, author: UserId, entries: Sequence[PostId], *, horizon: PostId) -> None:
        async def fill() -> None:
            async with self._client.pipeline(transaction=True) as pipe:
                self._windows.fill_into(pipe, self._key(author), entries, horizon)
                await pipe.execute()

        await self._guard.run("fill_celebrity", fill, None)

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


class RedisPostBodies:
    """Post bodies, each kept ``ttl`` after it was cached; a burial outlives any body that a read
    begun before the deletion could still write."""

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "feedcore:",
        ttl: timedelta = timedelta(days=1),
        guard: Guard | None = None,
        lanes: Lanes | None = None,
    ) -> None:
        self._client = client
        self._execute = lanes.execute if lanes is not None else client.execute_command
        self._prefix = prefix
        self._guard = guard or Unguarded()
        self._ttl_ms = int(ttl.total_seconds() * 1000)
        self._buried_ttl_ms = 2 * self._ttl_ms
        self._encode = msgspec.json.Encoder().encode
        self._decode = msgspec.json.Decoder(Post).decode

    def _key(self, post_id: PostId) -> str:
        return f"{self._prefix}post:{post_id}"

    async def get(self, post_ids: Collection[PostId]) -> dict[PostId, Post | None]:
        ordered = list(post_ids)
        if not ordered:
            return {}
        return await self._guard.run("get_posts", lambda: self._get(ordered), {})

    async def _get(self, ordered: list[PostId]) -> dict[PostId, Post | None]:
        found: dict[PostId, Post | None] = {}
        values = await self._execute("MGET", *[self._key(post_id) for post_id in ordered])
        for post_id, value in zip(ordered, values, strict=True):
            if value == _DELETED:
                found[post_id] = None
            elif value is not None:
                found[post_id] = self._decode(value)
        return found

    async def keep(self, posts: Sequence[Post]) -> None:
        if posts:
            await self._guard.run("keep_posts", lambda: self._keep(posts), None)

    async def _keep(self, posts: Sequence[Post]) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            for post in posts:
                # NX: a burial stays; a body already there is the same body.
                pipe.set(self._key(post.id), self._encode(post), nx=True, px=self._ttl_ms)
            await pipe.execute()

    async def bury(self, post_id: PostId) -> None:
        key = self._key(post_id)
        await self._guard.run("bury", lambda: self._client.set(key, _DELETED, px=self._buried_ttl_ms), None)


def read_args(before: PostId | None, limit: int, ttl_ms: int) -> list[Any]:
    return ["+" if before is None else f"({sortable_key(before)}", limit, ttl_ms]


def window_of(found: list[Any]) -> CachedFeed | None:
    """A window read as a cached slice: its horizon member, then the slice."""
    if not found:
        return None
    horizon = from_sortable_key(text(found[0])[len(_HORIZON) :])
    entries = [from_sortable_key(text(member)) for member in found[1:]]
    return CachedFeed(entries=[entry for entry in entries if entry >= horizon], horizon=horizon)


def _seen(kept: Any, celebrities: str | None) -> frozenset[UserId] | None:
    if kept is None or celebrities is None:
        return None
    version, *authors = text(kept).split("\n")
    return frozenset(UserId(author) for author in authors) if version == celebrities else None


def text(member: Any) -> str:
    return member.decode() if isinstance(member, bytes) else str(member)

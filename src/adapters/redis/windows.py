"""Cached windows in Redis: the sorted sets of post ids that feeds and celebrities' posts are
cached in, the Lua scripts that keep them, and what the adapters of both share."""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, ClassVar, Final

from redis.exceptions import NoScriptError

from feedcore.adapters.redis.connection import Lanes, RedisClient
from feedcore.adapters.redis.resilient import Guard, Unguarded
from feedcore.model import PostId, from_sortable_key, sortable_key
from feedcore.ports import CachedFeed

# One sorted set per cached window. Every member has score 0, so the set is ordered by member, and
# members are post ids as fixed-width digit strings (ids exceed a double's 53 bits: they cannot be
# scores). The window's horizon lives in the same set as one member below every digit string,
# "!h<id>": a window and its horizon are one key, so they are evicted, expired and replaced
# together.
HORIZON: Final = "!h"
# A fill begun and not finished holds only "!f" (a reader finds the window not cached); a change
# that reaches it meanwhile adds "!d", and the fill then keeps nothing. Both sort below "!h".

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


class Scripts:
    """Lua scripts run by SHA; one that Redis has lost (a restart, SCRIPT FLUSH) is loaded and run
    again. redis-py's pipelined scripts ask SCRIPT EXISTS first, one round trip more per pipeline:
    here a pipeline is sent again instead, which the scripts allow (each one run twice leaves what
    it left once)."""

    def __init__(self, client: RedisClient, lanes: Lanes | None) -> None:
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
                # A plain command: a cluster's pipeline refuses evalsha().
                pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)
            return list(await pipe.execute())


class Windows:
    """Cached windows of ids (feeds, or celebrities' posts) under one kind of key."""

    def __init__(self, scripts: Scripts, *, size: int, ttl_ms: int) -> None:
        self._scripts = scripts
        self._size = size
        self.ttl_ms = ttl_ms
        self._add_sha = scripts.register(_ADD)
        self._read_sha = scripts.register(_READ)
        self._remove_sha = scripts.register(_REMOVE)
        self._begin_sha = scripts.register(_BEGIN)
        self._finish_sha = scripts.register(_FINISH)

    async def read(self, keys: Sequence[str], before: PostId | None, limit: int) -> list[CachedFeed | None]:
        args = (below(before), limit, self.ttl_ms)
        if len(keys) == 1:
            return [window_of(await self._scripts.run(self._read_sha, keys, args))]
        return [window_of(reply) for reply in await self._scripts.each(self._read_sha, [([key], args) for key in keys])]

    def _members(self, entries: Sequence[PostId], horizon: PostId) -> list[str]:
        """The members of a window of ``entries`` (those within the size) and its horizon."""
        kept = sorted({entry for entry in entries if entry >= horizon}, reverse=True)
        if len(kept) > self._size:
            kept = kept[: self._size]
            horizon = max(horizon, kept[-1])
        return [*map(sortable_key, kept), HORIZON + sortable_key(horizon)]

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


class RedisWindows:
    """What the two adapters of cached windows share: the client, the lanes, a key prefix, and the
    scripts of their own (``SCRIPTS``, registered as ``self._shas[script]``)."""

    SCRIPTS: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        client: RedisClient,
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
        self._scripts = Scripts(client, lanes)
        self._execute = lanes.execute if lanes is not None else client.execute_command
        self._windows = Windows(self._scripts, size=window, ttl_ms=int(ttl.total_seconds() * 1000))
        self._shas = {script: self._scripts.register(script) for script in self.SCRIPTS}
        # Stamps (of the feed cache's pages) only have to differ between the reads that begin
        # pages: an instance's own random prefix (made here, in the process that uses it) and a count.
        self._stamps = map(f"{os.urandom(6).hex()}:{{}}".format, itertools.count())


def below(before: PostId | None) -> str:
    """The upper bound of a BYLEX range of a window's members: below ``before``, or all of them."""
    return "+" if before is None else f"({sortable_key(before)}"


def window_of(found: list[Any]) -> CachedFeed | None:
    """A window read as a cached slice: its horizon member, then the slice."""
    if not found:
        return None
    horizon = from_sortable_key(text(found[0])[len(HORIZON) :])
    entries = [from_sortable_key(text(member)) for member in found[1:]]
    return CachedFeed(entries=[entry for entry in entries if entry >= horizon], horizon=horizon)


def text(member: Any) -> str:
    return member.decode() if isinstance(member, bytes) else str(member)

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Final

from redis.asyncio import Redis

from feedcore.model import PostId, UserId, from_sortable_key, sortable_key
from feedcore.ports import CachedFeed

# One sorted set per cached feed. Every member has score 0, so the set is ordered by member, and
# members are post ids as fixed-width digit strings (ids exceed a double's 53 bits: they cannot be
# scores). The feed's horizon lives in the same set as one member below every digit string,
# "!h<id>": a feed and its horizon are one key, so they are evicted, expired and replaced together,
# and a cluster keeps them in one slot.
_HORIZON: Final = "!h"

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
    """The newest ``window`` entries of active users' feeds, in Redis.

    A feed read or filled stays cached ``ttl`` after its last read; feeds nobody reads expire, so
    inactive users cost nothing (and Redis may evict any feed early: it is only rebuilt).
    """

    def __init__(
        self, client: Redis, *, prefix: str = "feedcore:", window: int = 800, ttl: timedelta = timedelta(days=1)
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._window = window
        self._ttl_ms = int(ttl.total_seconds() * 1000)
        self._add = client.register_script(_ADD)
        self._read = client.register_script(_READ)

    def _key(self, user: UserId) -> str:
        return f"{self._prefix}feed:{{{user}}}"  # {user}: the hash tag

    async def read(self, user: UserId, *, before: PostId | None, limit: int) -> CachedFeed | None:
        upper = "+" if before is None else f"({sortable_key(before)}"
        found = await self._read(keys=[self._key(user)], args=[upper, limit, self._ttl_ms])
        if not found:
            return None
        horizon = from_sortable_key(_text(found[0])[len(_HORIZON) :])
        entries = [from_sortable_key(_text(member)) for member in found[1:]]
        return CachedFeed(entries=[entry for entry in entries if entry >= horizon], horizon=horizon)

    async def fill(self, user: UserId, entries: Sequence[PostId], *, horizon: PostId) -> None:
        kept = sorted({entry for entry in entries if entry >= horizon}, reverse=True)
        if len(kept) > self._window:
            kept = kept[: self._window]
            horizon = max(horizon, kept[-1])
        members: dict[str, float] = {sortable_key(entry): 0 for entry in kept}
        members[_HORIZON + sortable_key(horizon)] = 0
        key = self._key(user)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.zadd(key, members)
            pipe.pexpire(key, self._ttl_ms)
            await pipe.execute()

    async def add(self, users: Sequence[UserId], post_id: PostId) -> None:
        if not users:
            return
        member = sortable_key(post_id)
        async with self._client.pipeline(transaction=False) as pipe:
            for user in users:
                await self._add(keys=[self._key(user)], args=[member, self._window, self._ttl_ms], client=pipe)
            await pipe.execute()

    async def remove(self, users: Sequence[UserId], post_id: PostId) -> None:
        if not users:
            return
        member = sortable_key(post_id)
        async with self._client.pipeline(transaction=False) as pipe:
            for user in users:
                pipe.zrem(self._key(user), member)
            await pipe.execute()

    async def invalidate(self, user: UserId) -> None:
        await self._client.delete(self._key(user))


def _text(member: Any) -> str:
    return member.decode() if isinstance(member, bytes) else str(member)

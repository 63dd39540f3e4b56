from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Protocol, TypeVar

from redis.exceptions import RedisClusterException, RedisError

from feedcore.adapters.redis.connection import RedisClient

_log = logging.getLogger(__name__)
T = TypeVar("T")
#: What says Redis is away or too slow, as opposed to a bug. (A cluster's client says that it
#: found no node for a slot, or gave up following a failover, with RedisClusterException.)
UNAVAILABLE: tuple[type[Exception], ...] = (RedisError, RedisClusterException, OSError, TimeoutError)


class Guard(Protocol):
    """How the adapters meet Redis failing: :class:`adapters.redis.RedisOutages`, or not at all."""

    async def run(self, operation: str, action: Callable[[], Awaitable[T]], fallback: T) -> T:
        """``action``'s result, or ``fallback`` when Redis is away."""
        ...


class Unguarded:
    """Redis errors go to the caller."""

    async def run(self, operation: str, action: Callable[[], Awaitable[T]], fallback: T) -> T:
        return await action()


class RedisOutages:
    """The guard a process's Redis adapters share, so that Redis being down or slow fails none of
    them.

    While Redis fails, reads find nothing cached (the core then reads PostgreSQL) and writes are
    skipped, and no request waits for Redis: after one failure it is left alone until it answers
    again (asked every ``pause`` seconds, in the background). A process that saw Redis fail may have
    skipped writes (a post's burial among them), so the moment Redis answers, it drops every key
    under its prefix but those in ``keep``: each feed, window and body is rebuilt from PostgreSQL on
    its next read, none is left stale.

    Other processes go on using Redis meanwhile, so the drop has to catch what they write while it
    scans. This process writes again before it scans: a window filled from then on cannot miss one
    of its writes, and one begun before is there to be found. Only a rendered page can still be
    kept from a stale window after the scan passed, until that window is unlinked: a second scan,
    once every stale window is gone, drops those. ``keep`` names keys that are not a copy of
    anything, such as the feed cache's registry of users who may have a window: dropped while a
    fill is under way, it would lose the newly filled feed, and every later post would pass it by.
    """

    def __init__(
        self,
        client: RedisClient,
        *,
        prefix: str,
        keep: Collection[str] = (),
        pause: float = 1.0,
        on_fallback: Callable[[str], None] | None = None,
    ) -> None:
        self._client = client
        self._pattern = f"{prefix}*"
        self._keep = frozenset(keep)
        self._pause = pause
        self._on_fallback = on_fallback
        self._dirty = False
        self._recovery: asyncio.Task[None] | None = None

    async def run(self, operation: str, action: Callable[[], Awaitable[T]], fallback: T) -> T:
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
                await self._client.ping()
                self._dirty = False  # writes first: see the class
                dropped = await self._drop_everything() + await self._drop_everything()
            except UNAVAILABLE:
                self._dirty = True
                continue
            _log.warning("Redis is back: dropped %d cached keys that may have missed writes", dropped)

    async def _drop_everything(self) -> int:
        keys = [
            key
            async for key in self._client.scan_iter(match=self._pattern, count=1_000)
            if (key if isinstance(key, str) else key.decode()) not in self._keep
        ]
        async with self._client.pipeline(transaction=False) as pipe:
            # One key a command, keys of a cluster living in many slots; and a plain command, as a
            # cluster's pipeline runs unlink() at once, as a coroutine, and queues nothing.
            for key in keys:
                pipe.execute_command("UNLINK", key)
            return sum(await pipe.execute())

    def _fell_back(self, operation: str) -> None:
        if self._on_fallback is not None:
            self._on_fallback(operation)

"""Plumbing of the feed read: streams of post ids, paged and merged, and work done once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from feedcore.model import PostId

T = TypeVar("T")
#: A candidate post: its id, and whether its author is known visible to the owner already.
Candidate = tuple[PostId, bool]
#: Ids below a bound, newest first, at most as many as asked: one page of a source.
Fetch = Callable[[PostId | None, int], Awaitable[list[PostId]]]


class SingleFlight:
    """One run at a time of each keyed piece of work, in one process: calls that find it under way
    wait for it to end instead of running it again (cold rebuilds, here)."""

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future[None]] = {}

    async def once(self, key: Hashable, work: Callable[[], Awaitable[None]]) -> None:
        running = self._running.get(key)
        if running is not None:
            await asyncio.shield(running)
            return
        done = asyncio.get_running_loop().create_future()
        self._running[key] = done
        try:
            await work()
        finally:
            # Waiters go on either way: without a copy, the store serves them.
            del self._running[key]
            done.set_result(None)


class Once(Generic[T]):
    """An awaitable value computed on first use, once."""

    __slots__ = ("_compute", "_value")

    def __init__(self, compute: Callable[[], Awaitable[T]]) -> None:
        self._compute = compute
        self._value: T | None = None

    async def __call__(self) -> T:
        if self._value is None:
            self._value = await self._compute()
        return self._value


async def zero() -> PostId:
    return PostId(0)


async def paged(fetch: Fetch, before: PostId | None, batch: int) -> AsyncGenerator[PostId, None]:
    """Every id ``fetch`` serves below ``before``, newest first, ``batch`` (and one more) at a time.

    The one more is the look-ahead a merge takes past a page: it costs no extra round trip.
    """
    while True:
        found = await fetch(before, batch + 1)
        for post_id in found:
            yield post_id
        if len(found) < batch + 1:
            return
        before = found[-1]


async def merge_descending(*streams: AsyncGenerator[Candidate, None]) -> AsyncGenerator[Candidate, None]:
    """Merge streams of candidates descending by id into one, dropping repeats; closes them after."""
    try:
        heads: dict[int, Candidate] = {}
        for index, stream in enumerate(streams):
            first = await anext(stream, None)
            if first is not None:
                heads[index] = first
        last: PostId | None = None
        while heads:
            index = max(heads, key=lambda i: heads[i][0])
            candidate = heads[index]
            following = await anext(streams[index], None)
            if following is None:
                del heads[index]
            else:
                heads[index] = following
            if candidate[0] != last:
                yield candidate
                last = candidate[0]
    finally:
        for stream in streams:
            await stream.aclose()

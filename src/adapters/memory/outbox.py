from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from itertools import count

from feedcore.events import Event


class InMemoryOutbox:
    """Events waiting to be published, appended by the post store and the graph.

    Relays may run concurrently, as with ``FOR UPDATE SKIP LOCKED``: each claims the oldest events
    no other relay holds, so a later batch can reach the bus before an earlier one.
    """

    def __init__(self) -> None:
        self._events: dict[int, Event] = {}
        self._claimed: set[int] = set()
        self._sequence = count()
        # Made by each wait, on the waiting loop: an Event stays bound to the loop it first served.
        self._appended: asyncio.Event | None = None

    def __len__(self) -> int:
        return len(self._events)

    async def backlog(self, *, at_most: int | None = None) -> int:
        """How many events wait to be published, counted up to ``at_most`` (None: all)."""
        return len(self._events) if at_most is None else min(len(self._events), at_most)

    def append(self, event: Event) -> None:
        self._events[next(self._sequence)] = event
        if self._appended is not None:
            self._appended.set()

    async def wait(self, max_wait: float) -> None:
        """Return once an event is appended, or after ``max_wait`` seconds."""
        appended = self._appended = asyncio.Event()
        if self._events:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(appended.wait(), max_wait)

    async def relay(self, publish: Callable[[Sequence[Event]], Awaitable[None]], *, limit: int) -> int:
        batch = [number for number in self._events if number not in self._claimed][:limit]
        if not batch:
            return 0
        self._claimed.update(batch)
        try:
            await publish([self._events[number] for number in batch])
        finally:
            self._claimed.difference_update(batch)
        for number in batch:
            del self._events[number]
        return len(batch)

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from itertools import islice

from feedcore.events import Event


class InMemoryOutbox:
    """Events waiting to be published, appended by the post store and the graph."""

    def __init__(self) -> None:
        self._events: deque[Event] = deque()
        self._relaying = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._events)

    def append(self, event: Event) -> None:
        self._events.append(event)

    async def relay(self, publish: Callable[[Sequence[Event]], Awaitable[None]], *, limit: int) -> int:
        async with self._relaying:
            batch = list(islice(self._events, limit))
            if batch:
                await publish(batch)
                for _ in batch:
                    self._events.popleft()
            return len(batch)

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from feedcore.ports import FeedsChanged


class InMemoryFeedChanges:
    """Announcements within one process: each listener gets its own queue. A listener applies
    each announcement at once (it only sets flags), so its queue stays short."""

    def __init__(self) -> None:
        self._listeners: set[asyncio.Queue[FeedsChanged]] = set()

    async def announce(self, change: FeedsChanged) -> None:
        for listener in self._listeners:
            listener.put_nowait(change)

    async def listen(self) -> AsyncIterator[FeedsChanged | None]:
        queue: asyncio.Queue[FeedsChanged] = asyncio.Queue()
        self._listeners.add(queue)
        try:
            yield None
            while True:
                yield await queue.get()
        finally:
            self._listeners.discard(queue)

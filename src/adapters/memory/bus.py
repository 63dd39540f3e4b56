from __future__ import annotations

import asyncio
import zlib
from collections.abc import Sequence

from feedcore.events import Event
from feedcore.ports import Delivery


class InMemoryEventBus:
    """A partitioned log with consumer-group semantics, delivering at least once.

    Events with the same key share a partition and keep their order; partitions are independent,
    so events of different keys may be applied in any order. What a consumer received but did not
    commit is delivered again after :meth:`rewind` (a consumer restart). Tests drive it step by
    step with :meth:`take`, :meth:`commit` and :meth:`rewind`; the embedded worker uses
    :meth:`receive`.
    """

    def __init__(self, *, partitions: int = 4) -> None:
        self._logs: list[list[Event]] = [[] for _ in range(partitions)]
        self._committed = [0] * partitions
        self._position = [0] * partitions
        self._next_partition = 0
        # Made by each wait, on the waiting loop: an Event stays bound to the loop it first served.
        self._arrived: asyncio.Event | None = None

    @property
    def partitions(self) -> int:
        return len(self._logs)

    def partition_of(self, key: str) -> int:
        return zlib.crc32(key.encode()) % len(self._logs)

    async def publish(self, events: Sequence[Event]) -> None:
        for event in events:
            self._logs[self.partition_of(event.key)].append(event)
        if events and self._arrived is not None:
            self._arrived.set()

    def take(self, max_events: int, *, partition: int | None = None) -> list[Delivery]:
        """Hand out up to ``max_events`` undelivered events, from one partition or round-robin."""
        chosen = [partition] if partition is not None else self._round_robin()
        deliveries: list[Delivery] = []
        for index in chosen:
            log, start = self._logs[index], self._position[index]
            stop = min(len(log), start + max_events - len(deliveries))
            deliveries += [Delivery(event=log[offset], partition=index, offset=offset) for offset in range(start, stop)]
            self._position[index] = stop
        return deliveries

    def _round_robin(self) -> list[int]:
        start = self._next_partition
        self._next_partition = (start + 1) % len(self._logs)
        return [(start + step) % len(self._logs) for step in range(len(self._logs))]

    async def receive(self, *, max_events: int, max_wait: float) -> list[Delivery]:
        deliveries = self.take(max_events)
        if deliveries or max_wait <= 0:
            return deliveries
        arrived = self._arrived = asyncio.Event()
        try:
            await asyncio.wait_for(arrived.wait(), max_wait)
        except TimeoutError:
            return []
        return self.take(max_events)

    async def commit(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            index = delivery.partition
            self._committed[index] = max(self._committed[index], delivery.offset + 1)

    def rewind(self) -> None:
        """Restart the consumer: everything received but not committed is delivered again."""
        self._position = list(self._committed)

    def undelivered(self) -> list[int]:
        """The partitions that hold events not yet handed out."""
        return [index for index, log in enumerate(self._logs) if self._position[index] < len(log)]

    @property
    def lag(self) -> int:
        """How many events are not yet committed."""
        return sum(len(log) - committed for log, committed in zip(self._logs, self._committed, strict=True))

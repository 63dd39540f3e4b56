"""Writes that arrive together, made together: one statement and one commit for many requests."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """Runs ``write`` on batches of the items submitted, and gives each submitter its own outcome.

    At most ``concurrency`` writes run at once. An item submitted while they all run waits for the
    next one free, together with every item submitted meanwhile, up to ``max_batch``: under light
    load each batch is one item and waits for nothing, and under load the statements and commits
    per item fall as the load grows. Two items with the same ``apart`` key never share a batch.

    ``write`` returns one outcome per item, in order: a result, or an exception for that item
    alone. An exception raised by ``write`` itself is every item's outcome.
    """

    def __init__(
        self,
        write: Callable[[Sequence[T]], Awaitable[Sequence[R | Exception]]],
        *,
        concurrency: int,
        max_batch: int,
        apart: Callable[[T], Hashable | None] = lambda _: None,
    ) -> None:
        self._write = write
        self._concurrency = concurrency
        self._max_batch = max_batch
        self._apart = apart
        self._waiting: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._running = 0
        self._writers: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._running < self._concurrency:
            self._running += 1
            writer = asyncio.create_task(self._drain())
            self._writers.add(writer)
            writer.add_done_callback(self._writers.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while batch := self._take():
                try:
                    outcomes = await self._write([item for item, _ in batch])
                except Exception as error:  # noqa: BLE001  # every item's outcome, raised where it waits
                    outcomes = [error] * len(batch)
                except asyncio.CancelledError:
                    for _, future in batch:
                        future.cancel()
                    raise
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():  # its request was cancelled meanwhile
                        continue
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._running -= 1

    def _take(self) -> list[tuple[T, asyncio.Future[R]]]:
        """The next batch, oldest first; an item whose key is in it already waits for the next."""
        batch: list[tuple[T, asyncio.Future[R]]] = []
        later: list[tuple[T, asyncio.Future[R]]] = []
        keys: set[Hashable] = set()
        while self._waiting and len(batch) < self._max_batch:
            item, future = self._waiting.popleft()
            if future.done():
                continue
            key = self._apart(item)
            if key is not None and key in keys:
                later.append((item, future))
                continue
            if key is not None:
                keys.add(key)
            batch.append((item, future))
        self._waiting.extendleft(reversed(later))
        return batch

"""The in-process fan-out worker: relays the outbox to the bus and applies what the bus delivers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, Protocol

from adapters.memory import InMemoryEventBus
from feedcore import FeedProcessor, Outbox

_log = logging.getLogger(__name__)
_BATCH = 500
_IDLE_WAIT = 0.5
_MAX_BACKOFF = 5.0


class WaitableOutbox(Outbox, Protocol):
    async def wait(self, max_wait: float) -> None:
        """Return once there may be new events, or after ``max_wait`` seconds."""
        ...


async def run_in_process_worker(
    outbox: WaitableOutbox, bus: InMemoryEventBus, processor: FeedProcessor, stop: asyncio.Event
) -> None:
    backoff = 0.05
    while not stop.is_set():
        try:
            relayed = await outbox.relay(bus.publish, limit=_BATCH)
            applied = await processor.process_batch(bus, max_events=_BATCH, max_wait=0)
            backoff = 0.05
            if not relayed and not applied:
                await _first_of(outbox.wait(_IDLE_WAIT), stop.wait())
        except Exception:  # noqa: BLE001  # the worker outlives any one failure, and logs it
            # Nothing of the failed batch was committed: restart from the last commit, later.
            _log.exception("in-process worker failed; retrying in %.2fs", backoff)
            bus.rewind()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)


async def _first_of(*waits: Coroutine[Any, Any, Any]) -> None:
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()

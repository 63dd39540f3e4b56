"""The embedded fan-out worker: relays the outbox to the bus and applies what the bus delivers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from adapters.memory import InMemoryEventBus, InMemoryOutbox
from feedcore import FeedProcessor

_log = logging.getLogger(__name__)
_BATCH = 500
_IDLE_WAIT = 0.5
_MAX_BACKOFF = 5.0


async def run_embedded_worker(
    outbox: InMemoryOutbox, bus: InMemoryEventBus, processor: FeedProcessor, stop: asyncio.Event
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
            _log.exception("embedded worker failed; retrying in %.2fs", backoff)
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

"""Background loops of the service: the outbox relay, the in-process fan-out worker that stands
in for the Kafka backbone when there is none, and the pruning of expired rows."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from feedcore import Event, EventBus, FeedProcessor, Outbox, Retention
from feedcore.adapters.metrics import Metrics

_log = logging.getLogger(__name__)
_BATCH = 500
#: How long the relay waits after a batch smaller than _BATCH, for more rows to join the next one:
#: a relay batch costs four statements and a produce request, whatever its size.
_LINGER = 0.02
_IDLE_WAIT = 1.0
_FIRST_BACKOFF = 0.05
_MAX_BACKOFF = 5.0
#: How often the outbox backlog gauge is brought up to date, and where its count stops: each
#: process samples it every second, and counting a backlog of a million rows takes 0.1 s.
_BACKLOG_EVERY = 1.0
_BACKLOG_COUNTED = 100_000


async def run_relay(
    outbox: Outbox,
    publish: Callable[[Sequence[Event]], Awaitable[None]],
    stop: asyncio.Event,
    metrics: Metrics | None = None,
) -> None:
    """Relay the outbox with ``publish`` until ``stop``: batch after batch while rows wait.

    A batch whose publish fails stays in the outbox (its claim rolls back) and is tried again after
    a backoff, for as long as the failure lasts: the rows are durable, so nothing is lost meanwhile.
    """

    async def timed(events: Sequence[Event]) -> None:
        started = time.perf_counter()
        await publish(events)
        if metrics is not None:
            metrics.relay_publish.observe(time.perf_counter() - started)
            metrics.relayed.inc(len(events))

    async def step() -> bool:
        relayed = await outbox.relay(timed, limit=_BATCH)
        if 0 < relayed < _BATCH:
            # While posts keep coming, a moment's wait gathers the next ones into one batch: a
            # relay transaction and a produce request for many, at a few ms of latency.
            await asyncio.sleep(_LINGER)
        return relayed > 0

    watcher = None
    if metrics is not None:
        gauge = metrics.outbox_backlog

        async def sample() -> None:
            gauge.set(await outbox.backlog(at_most=_BACKLOG_COUNTED))

        # The store being away is the relay loop's to report.
        watcher = asyncio.create_task(run_every(_BACKLOG_EVERY, stop, sample, what="reading the outbox backlog"))
    try:
        await _loop(step, outbox, stop, name="outbox relay", metrics=metrics)
    finally:
        if watcher is not None:
            watcher.cancel()


async def run_every(
    seconds: float,
    stop: asyncio.Event,
    action: Callable[[], Awaitable[None]],
    *,
    what: str,
    failure_level: int = logging.DEBUG,
) -> None:
    """Run ``action`` now and then every ``seconds`` until ``stop``. A run that fails (a dependency
    is away) is logged at ``failure_level`` and the next one comes on time."""
    while not stop.is_set():
        try:
            await action()
        except Exception as error:  # noqa: BLE001  # the loop outlives any one failure, and logs it
            _log.log(failure_level, "%s failed (%r); trying again in %.0fs", what, error, seconds)
        await _first_of(asyncio.sleep(seconds), stop.wait())


async def run_retention(retention: Retention, stop: asyncio.Event, metrics: Metrics | None, *, every: float) -> None:
    """Delete expired rows now and every ``every`` seconds until ``stop``; a pass that fails (the
    store is away) is made again at the next."""

    async def prune() -> None:
        for table, rows in (await retention.prune()).items():
            if rows:
                _log.info("pruned %d expired rows from %s", rows, table)
                if metrics is not None:
                    metrics.pruned.labels(table).inc(rows)

    await run_every(every, stop, prune, what="pruning expired rows", failure_level=logging.WARNING)


async def run_in_process_worker(
    outbox: Outbox,
    bus: EventBus,
    processor: FeedProcessor,
    stop: asyncio.Event,
    metrics: Metrics | None = None,
    *,
    rewind: Callable[[], None],
) -> None:
    """Relay the outbox to a bus in this process and apply what it delivers, until ``stop``;
    ``rewind`` makes the bus deliver again from its last commit."""

    async def step() -> bool:
        try:
            relayed = await outbox.relay(bus.publish, limit=_BATCH)
            applied = await processor.process_batch(bus, max_events=_BATCH, max_wait=0)
        except Exception:
            # Nothing of the failed batch was committed: restart from the last commit.
            rewind()
            raise
        return bool(relayed or applied)

    await _loop(step, outbox, stop, name="in-process worker", metrics=metrics)


class Backoff:
    """Waits between tries of something that keeps failing: doubling from ``first`` up to ``cap``
    seconds, each cut short by ``stop``."""

    def __init__(self, stop: asyncio.Event, *, first: float = _FIRST_BACKOFF, cap: float = _MAX_BACKOFF) -> None:
        self._stop = stop
        self._first = first
        self._cap = cap
        self.next = first

    async def wait(self) -> None:
        await _first_of(asyncio.sleep(self.next), self._stop.wait())
        self.next = min(self.next * 2, self._cap)

    def reset(self) -> None:
        self.next = self._first


async def _loop(
    step: Callable[[], Awaitable[bool]],
    outbox: Outbox,
    stop: asyncio.Event,
    *,
    name: str,
    metrics: Metrics | None,
) -> None:
    backoff = Backoff(stop)
    while not stop.is_set():
        try:
            busy = await step()
        except Exception as error:  # noqa: BLE001  # the loop outlives any one failure, and logs it
            if metrics is not None:
                metrics.retried(name, error)
            _log.exception("%s failed; retrying in %.2fs", name, backoff.next)
            await backoff.wait()
            continue
        backoff.reset()
        if not busy:
            await _first_of(outbox.wait(_IDLE_WAIT), stop.wait())


async def _first_of(*waits: Coroutine[Any, Any, Any]) -> None:
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()

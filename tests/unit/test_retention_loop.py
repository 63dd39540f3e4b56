"""The pruning loop: every pass counted, a failed pass made again at the next."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from feedcore.adapters.metrics import Metrics
from feedcore.entrypoints.loops import run_retention


class Passes:
    """Pruning passes that report these outcomes in turn, then stop the loop."""

    def __init__(self, outcomes: list[dict[str, int] | Exception], stop: asyncio.Event) -> None:
        self._outcomes = outcomes
        self._stop = stop
        self.made = 0

    async def prune(self) -> dict[str, int]:
        outcome = self._outcomes[self.made]
        self.made += 1
        if self.made == len(self._outcomes):
            self._stop.set()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


async def test_every_pass_is_counted_and_a_failed_one_does_not_end_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    stop = asyncio.Event()
    metrics = Metrics(CollectorRegistry())
    passes = Passes(
        [
            {"idempotency_keys": 3, "processed_events": 0},
            OSError("the store is away"),
            {"idempotency_keys": 0, "processed_events": 2},
        ],
        stop,
    )

    await asyncio.wait_for(run_retention(passes, stop, metrics, every=0.01), timeout=5)

    assert passes.made == 3
    counted = {
        table: metrics.registry.get_sample_value("feedcore_pruned_rows_total", {"table": table})
        for table in ("idempotency_keys", "processed_events")
    }
    assert counted == {"idempotency_keys": 3.0, "processed_events": 2.0}
    assert "the store is away" in caplog.text


async def test_the_loop_ends_on_stop_without_waiting_out_its_interval() -> None:
    stop = asyncio.Event()
    passes = Passes([{}, {}], asyncio.Event())
    loop = asyncio.create_task(run_retention(passes, stop, None, every=3600))
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(loop, timeout=1)
    assert passes.made == 1

"""The Coalescer: writes that arrive together are made together, and each caller gets its own outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from feedcore.adapters.postgres.batches import Coalescer


class Writes:
    """A write that records its batches, fails the items named "bad", and can be held open."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.open = asyncio.Event()
        self.open.set()
        self.running = 0
        self.most_running = 0

    async def __call__(self, items: Sequence[str]) -> list[str | Exception]:
        self.batches.append(list(items))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await self.open.wait()
            if "down" in items:
                raise ConnectionError("the store is away")
            return [ValueError(item) if item.startswith("bad") else item.upper() for item in items]
        finally:
            self.running -= 1


def key(item: str) -> str | None:
    return item.partition(":")[0] if ":" in item else None


async def test_items_waiting_together_are_one_batch_and_each_gets_its_own_answer() -> None:
    writes = Writes()
    coalescer = Coalescer(writes, concurrency=1, max_batch=10)

    answers = await asyncio.gather(*(coalescer.submit(item) for item in ["a", "bad", "c", "d"]), return_exceptions=True)

    assert answers[0] == "A"
    assert isinstance(answers[1], ValueError)
    assert answers[2:] == ["C", "D"]
    assert writes.batches == [["a", "bad", "c", "d"]]


async def test_at_most_concurrency_writes_run_and_batches_stop_at_max_batch() -> None:
    writes = Writes()
    writes.open.clear()
    coalescer = Coalescer(writes, concurrency=2, max_batch=3)
    waiting = [asyncio.ensure_future(coalescer.submit(str(n))) for n in range(8)]
    await asyncio.sleep(0.01)

    assert writes.running == 2  # two batches in flight; the rest wait for one of them
    writes.open.set()
    assert await asyncio.gather(*waiting) == [str(n) for n in range(8)]
    assert writes.most_running == 2
    assert all(len(batch) <= 3 for batch in writes.batches)
    assert sorted(item for batch in writes.batches for item in batch) == [str(n) for n in range(8)]


async def test_two_items_with_one_key_never_share_a_batch() -> None:
    writes = Writes()
    coalescer = Coalescer(writes, concurrency=1, max_batch=10, apart=key)

    await asyncio.gather(*(coalescer.submit(item) for item in ["k:1", "x", "k:2", "j:1", "k:3"]))

    assert writes.batches == [["k:1", "x", "j:1"], ["k:2"], ["k:3"]]


async def test_a_failed_write_is_every_item_s_error_and_the_next_batch_goes_on() -> None:
    writes = Writes()
    coalescer = Coalescer(writes, concurrency=1, max_batch=10)

    failed = await asyncio.gather(coalescer.submit("down"), coalescer.submit("b"), return_exceptions=True)

    assert [type(answer) for answer in failed] == [ConnectionError, ConnectionError]
    assert await coalescer.submit("later") == "LATER"


async def test_a_caller_that_gives_up_is_left_out_and_the_others_are_answered() -> None:
    writes = Writes()
    writes.open.clear()
    coalescer = Coalescer(writes, concurrency=1, max_batch=10)
    first = asyncio.ensure_future(coalescer.submit("first"))
    await asyncio.sleep(0)  # the first batch is under way and holds the writer
    gone = asyncio.ensure_future(coalescer.submit("gone"))
    kept = asyncio.ensure_future(coalescer.submit("kept"))
    await asyncio.sleep(0)
    gone.cancel()

    writes.open.set()

    assert await first == "FIRST"
    assert await kept == "KEPT"
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert writes.batches == [["first"], ["kept"]]

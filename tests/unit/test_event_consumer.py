"""The processor's loop on fakes: what is retried, what is dead-lettered, and when offsets are committed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from feedcore import Event, PostId, PostPublished, UserId, encode_event
from feedcore.adapters.kafka import Record
from feedcore.entrypoints.consumer import EventConsumer, RetryPolicy

FAST = RetryPolicy(max_attempts=3, first_wait=0.001, max_wait=0.005)


class Unreachable(ConnectionError):
    """Stands for a store or broker that is away for a while."""


def published(number: int) -> PostPublished:
    return PostPublished(
        event_id=f"e-{number}",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        post_id=PostId(number),
        author_id=UserId("ana"),
    )


def record(offset: int, value: bytes, partition: int = 0) -> Record:
    return Record(topic="events", partition=partition, offset=offset, key=b"ana", value=value, timestamp=0)


class FakeSource:
    def __init__(self, *batches: list[Record]) -> None:
        self.batches = list(batches)
        self.log: list[str] = []
        self.committed: list[list[int]] = []
        self.commit_failures = 0

    async def fetch(self, *, max_records: int, max_wait: float) -> list[Record]:
        return self.batches.pop(0) if self.batches else []

    async def commit(self, records: Sequence[Record]) -> None:
        if self.commit_failures:
            self.commit_failures -= 1
            raise Unreachable("broker away")
        self.log.append("commit")
        self.committed.append([r.offset for r in records])


class FakeDeadLetters:
    def __init__(self, source: FakeSource, failures: int = 0) -> None:
        self.source = source
        self.failures = failures
        self.letters: list[tuple[int, str, int]] = []

    async def send(self, record: Record, *, error: BaseException, attempts: int, failed_at: datetime) -> None:
        if self.failures:
            self.failures -= 1
            raise Unreachable("broker away")
        self.source.log.append(f"dead-letter {record.offset}")
        self.letters.append((record.offset, type(error).__name__, attempts))


class Handler:
    """Applies events; fails each listed event id the given number of times, with the given error."""

    def __init__(self, source: FakeSource, failures: dict[str, tuple[int, Exception]] | None = None) -> None:
        self.source = source
        self.failures = dict(failures or {})
        self.calls: list[str] = []

    async def __call__(self, events: Sequence[Event]) -> None:
        """All of ``events`` or none, like the processor's transaction."""
        self.calls += [event.event_id for event in events]
        for event in events:
            left, error = self.failures.get(event.event_id, (0, None))
            if left and error is not None:
                self.failures[event.event_id] = (left - 1, error)
                raise error
        self.source.log += [f"apply {event.event_id}" for event in events]


def consumer(source: FakeSource, handler: Handler, dead: FakeDeadLetters) -> EventConsumer:
    return EventConsumer(source, handler, dead, transient=(Unreachable,), policy=FAST)


async def test_a_batch_is_applied_in_order_in_one_go_then_committed() -> None:
    source = FakeSource([record(0, encode_event(published(1))), record(1, encode_event(published(2)))])
    handler, dead = Handler(source), FakeDeadLetters(source)

    assert await consumer(source, handler, dead).consume_batch(idle_wait=0) == 2

    assert handler.calls == ["e-1", "e-2"]
    assert source.log == ["apply e-1", "apply e-2", "commit"]
    assert source.committed == [[0, 1]]
    assert dead.letters == []


async def test_transient_failures_are_waited_out_and_never_dead_lettered() -> None:
    source = FakeSource([record(0, encode_event(published(1)))])
    # Far more transient failures than the attempts a handler error gets.
    handler = Handler(source, {"e-1": (FAST.max_attempts * 4, Unreachable("store away"))})
    dead = FakeDeadLetters(source)

    await consumer(source, handler, dead).consume_batch(idle_wait=0)

    assert len(handler.calls) == FAST.max_attempts * 4 + 1
    assert source.log == ["apply e-1", "commit"]
    assert dead.letters == []


async def test_a_handler_error_that_repeats_is_dead_lettered_and_the_next_event_still_applied() -> None:
    source = FakeSource([record(7, encode_event(published(1))), record(8, encode_event(published(2)))])
    handler = Handler(source, {"e-1": (99, ValueError("handler bug"))})
    dead = FakeDeadLetters(source)

    await consumer(source, handler, dead).consume_batch(idle_wait=0)

    # Once within the batch, then alone until it is given up.
    assert handler.calls.count("e-1") == 1 + FAST.max_attempts
    assert dead.letters == [(7, "ValueError", FAST.max_attempts)]
    assert source.log == ["dead-letter 7", "apply e-2", "commit"]


async def test_a_handler_error_that_goes_away_is_not_dead_lettered() -> None:
    source = FakeSource([record(0, encode_event(published(1)))])
    handler = Handler(source, {"e-1": (FAST.max_attempts - 1, ValueError("flaky"))})
    dead = FakeDeadLetters(source)

    await consumer(source, handler, dead).consume_batch(idle_wait=0)

    assert dead.letters == []
    assert source.log == ["apply e-1", "commit"]


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (b"\xff not json", "DecodeError"),
        (b'{"type": "post_published", "event_id": "e-9"}', "ValidationError"),
        (b'{"type": "no_such_event", "event_id": "e-9", "occurred_at": "2026-01-01T00:00:00Z"}', "ValidationError"),
    ],
)
async def test_poison_bytes_are_dead_lettered_at_once(value: bytes, error: str) -> None:
    source = FakeSource([record(0, value), record(1, encode_event(published(2)))])
    handler, dead = Handler(source), FakeDeadLetters(source)

    await consumer(source, handler, dead).consume_batch(idle_wait=0)

    assert dead.letters == [(0, error, 1)]
    assert source.log == ["dead-letter 0", "apply e-2", "commit"]


async def test_the_commit_waits_for_the_dead_letter_to_be_acknowledged() -> None:
    source = FakeSource([record(0, b"poison"), record(1, encode_event(published(2)))])
    handler, dead = Handler(source), FakeDeadLetters(source, failures=5)
    source.commit_failures = 2

    await consumer(source, handler, dead).consume_batch(idle_wait=0)

    assert source.log == ["dead-letter 0", "apply e-2", "commit"]
    assert source.committed == [[0, 1]]


async def test_run_commits_a_batch_while_the_next_is_applied_and_in_order() -> None:
    source = FakeSource(*([record(n, encode_event(published(n)))] for n in range(1, 4)))
    handler, dead = Handler(source), FakeDeadLetters(source)
    stop = asyncio.Event()
    committing = source.commit

    async def slow_commit(records: Sequence[Record]) -> None:
        source.log.append(f"commit {records[0].offset} begins")
        await asyncio.sleep(0.01)
        await committing(records)
        if not source.batches:
            stop.set()

    source.commit = slow_commit  # type: ignore[method-assign]

    await consumer(source, handler, dead).run(stop, idle_wait=0)

    log = source.log
    assert source.committed == [[1], [2], [3]]  # in order, the last one before run() returned
    for n in (1, 2, 3):
        assert log.index(f"apply e-{n}") < log.index(f"commit {n} begins")  # after its own effects
    assert log.index("apply e-2") < log.index("commit")  # the next batch did not wait for the commit

"""The processor's loop (`feedcore process`): batches from the main topic, each event applied, then
the offsets committed.

Failures fall in two classes. Transient ones (a store or the broker unreachable, a timeout, a
serialization failure) are waited out: retried with capped exponential backoff and jitter, for as
long as it takes, and never dead-lettered. Permanent ones (bytes that do not decode to an event, an
event that fails the schema, a handler error that repeats) get ``max_attempts`` tries, then the
record goes to the dead-letter topic; the batch's offsets are committed only once that write was
acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TypeVar

import msgspec
import stamina
from stamina.instrumentation import RetryDetails

from feedcore.adapters.kafka import Record
from feedcore.adapters.metrics import Metrics
from feedcore.entrypoints.logs import EVENT_ID
from feedcore.events import Event, decode_event, event_type

_log = logging.getLogger(__name__)
T = TypeVar("T")


class RecordSource(Protocol):
    async def fetch(self, *, max_records: int, max_wait: float) -> list[Record]:
        """The next records, waiting up to ``max_wait`` seconds for the first one."""
        ...

    async def commit(self, records: Sequence[Record]) -> None:
        """Mark ``records`` (and everything before them in their partitions) consumed."""
        ...


class DeadLetters(Protocol):
    async def send(self, record: Record, *, error: BaseException, attempts: int, failed_at: datetime) -> None:
        """Set ``record`` aside with why it failed; returns once that is durable."""
        ...


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    #: Tries of an event whose handler keeps failing, before it is dead-lettered.
    max_attempts: int = 5
    #: Backoff after the first failure; it doubles (plus jitter) up to ``max_wait``.
    first_wait: float = 0.1
    max_wait: float = 30.0


def log_retry(details: RetryDetails) -> None:
    """A stamina retry hook: one readable line per retry, with its cause and the wait before it."""
    _log.warning(
        "retry %d in %.2fs (%.1fs waited so far) after %r",
        details.retry_num,
        details.wait_for,
        details.waited_so_far,
        details.caused_by,
    )


class EventConsumer:
    """Applies every record of ``source`` with ``apply``, at least once, in order per partition.

    ``apply`` takes events in order and applies all of them or none (one transaction): a batch
    goes through it whole, and only when that fails for a reason other than a transient one is the
    batch applied again one event at a time, to find the event at fault.
    """

    def __init__(
        self,
        source: RecordSource,
        apply: Callable[[Sequence[Event]], Awaitable[object]],
        dead_letters: DeadLetters,
        *,
        transient: tuple[type[Exception], ...],
        policy: RetryPolicy | None = None,
        batch: int = 500,
        metrics: Metrics | None = None,
    ) -> None:
        self._source = source
        self._metrics = metrics
        self._apply = apply
        self._dead_letters = dead_letters
        self._transient = transient
        self._policy = policy or RetryPolicy()
        self._batch = batch

    async def run(self, stop: asyncio.Event, *, idle_wait: float = 1.0) -> None:
        """Consume until ``stop`` is set; the batch in hand is finished and committed first.

        A batch's offsets are committed while the next batch is fetched and applied (a commit is a
        round trip to the group coordinator, about 5 % of a batch's time); commits stay in order.
        """
        committing: asyncio.Task[None] | None = None
        try:
            while not stop.is_set():
                records = await self._apply_batch(idle_wait=idle_wait)
                if committing is not None:
                    await committing
                committing = asyncio.create_task(self._commit(records)) if records else None
        finally:
            if committing is not None:
                await committing

    async def consume_batch(self, *, idle_wait: float = 1.0) -> int:
        """Fetch one batch, apply or dead-letter each record, commit; returns the batch's size."""
        records = await self._apply_batch(idle_wait=idle_wait)
        if records:
            await self._commit(records)
        return len(records)

    async def _commit(self, records: Sequence[Record]) -> None:
        await self._waiting_out(lambda: self._source.commit(records))

    async def _apply_batch(self, *, idle_wait: float) -> list[Record]:
        """Fetch one batch and apply or dead-letter each record; returns the records, not committed."""
        records = await self._waiting_out(lambda: self._source.fetch(max_records=self._batch, max_wait=idle_wait))
        decoded: list[tuple[Record, Event]] = []
        for record in records:
            try:
                decoded.append((record, decode_event(record.value or b"")))
            except (msgspec.DecodeError, msgspec.ValidationError) as error:
                # The same bytes never decode on a later try.
                await self._dead_letter(record, error, attempts=1, event=None)
        if decoded:
            try:
                await self._waiting_out(lambda: self._apply([event for _, event in decoded]))
            except Exception:  # noqa: BLE001  # some event of the batch is at fault: find which
                _log.warning("a batch of %d events failed; applying them one at a time", len(decoded))
                for record, event in decoded:
                    await self._apply_alone(record, event)
        return records

    async def _apply_alone(self, record: Record, event: Event) -> None:
        token = EVENT_ID.set(event.event_id)  # on this event's log lines
        try:
            await self._apply_with_retries(record, event)
        finally:
            EVENT_ID.reset(token)

    async def _apply_with_retries(self, record: Record, event: Event) -> None:
        try:
            async for attempt in self._retrying(on=Exception, attempts=self._policy.max_attempts):
                with attempt:
                    await self._waiting_out(lambda: self._apply([event]))
        except Exception as error:  # noqa: BLE001  # a handler error that repeats is permanent, whatever it is
            await self._dead_letter(record, error, attempts=self._policy.max_attempts, event=event)

    async def _dead_letter(self, record: Record, error: BaseException, *, attempts: int, event: Event | None) -> None:
        """Set ``record`` aside; ``event`` is what it decoded to, None when it did not decode."""
        _log.error(
            "dead-lettering %s[%d]@%d after %d attempt(s): %r",
            record.topic,
            record.partition,
            record.offset,
            attempts,
            error,
        )
        failed_at = datetime.now(UTC)
        await self._waiting_out(
            lambda: self._dead_letters.send(record, error=error, attempts=attempts, failed_at=failed_at)
        )
        if self._metrics is not None:
            if event is None:
                self._metrics.dead_lettered("undecodable", "undecodable")
            else:
                self._metrics.dead_lettered(event_type(event), "failing")

    async def _waiting_out(self, action: Callable[[], Awaitable[T]]) -> T:
        """Run ``action`` until it returns, retrying transient failures for as long as they last."""
        async for attempt in self._retrying(on=self._transient, attempts=None):
            with attempt:
                return await action()
        raise AssertionError("unreachable: retries without limit end only by returning or raising")

    def _retrying(
        self, *, on: type[Exception] | tuple[type[Exception], ...], attempts: int | None
    ) -> AsyncIterator[stamina.Attempt]:
        return stamina.retry_context(
            on=on, attempts=attempts, timeout=None, wait_initial=self._policy.first_wait, wait_max=self._policy.max_wait
        )

"""The Kafka backbone's processes: the outbox relay (in `feedcore serve`, or alone as `feedcore
relay`) and the fan-out processor (`feedcore process`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Coroutine
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client import start_http_server
from stamina.instrumentation import set_on_retry_hooks

from adapters.kafka import (
    DeadLetter,
    KafkaDeadLetters,
    KafkaEventPublisher,
    KafkaRecordSource,
    ensure_topics,
    purge_dead_letters,
    read_dead_letters,
)
from adapters.metrics import Metrics, process_registry
from adapters.system import SystemClock
from entrypoints.consumer import EventConsumer, RetryPolicy, log_retry
from entrypoints.container import PostgresStorage, awaited, feed_processor
from entrypoints.settings import Settings
from entrypoints.worker import Backoff, WaitableOutbox, run_every, run_relay

_log = logging.getLogger(__name__)
Client = TypeVar("Client", AIOKafkaProducer, AIOKafkaConsumer, AIOKafkaAdminClient)

#: The ledger's name for this processor: redeliveries to any instance of it are recognised.
CONSUMER = "feedcore-processor"
#: Errors that say the broker is out of reach for now, not that a request was wrong.
KAFKA_UNAVAILABLE: tuple[type[Exception], ...] = (KafkaError, OSError, TimeoutError)


def producer(settings: Settings) -> AIOKafkaProducer:
    """An idempotent producer: ``acks="all"``, and retries that neither duplicate nor reorder."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="feedcore",
        enable_idempotence=True,
        acks="all",
        request_timeout_ms=10_000,
    )


def consumer(settings: Settings) -> AIOKafkaConsumer:
    """A member of the processor group on the main topic; offsets are committed by hand, after the effects."""
    return AIOKafkaConsumer(
        settings.kafka_topic,
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="feedcore-process",
        group_id=settings.kafka_group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )


def admin(settings: Settings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="feedcore-admin")


@contextlib.asynccontextmanager
async def started(
    make: Callable[[], Client], stop: asyncio.Event, *, what: str, metrics: Metrics | None = None
) -> AsyncIterator[Client | None]:
    """A client of ``make``'s, started once the broker answers (retrying with backoff), and stopped
    after; None when ``stop`` came first."""
    backoff = Backoff(stop, first=0.1)
    while not stop.is_set():
        client = make()
        try:
            await client.start()
        except KAFKA_UNAVAILABLE as error:
            await _close(client)
            if metrics is not None:
                metrics.retried(what, error)
            _log.warning("%s: Kafka unreachable (%r); retrying in %.1fs", what, error, backoff.next)
            await backoff.wait()
            continue
        try:
            yield client
        finally:
            await _close(client)
        return
    yield None


async def _close(client: AIOKafkaProducer | AIOKafkaConsumer | AIOKafkaAdminClient) -> None:
    closing: Awaitable[Any] = client.close() if isinstance(client, AIOKafkaAdminClient) else client.stop()
    with contextlib.suppress(*KAFKA_UNAVAILABLE):
        await closing


async def create_topics(settings: Settings, stop: asyncio.Event) -> None:
    """Create the main and the dead-letter topic if they do not exist yet."""
    async with started(lambda: admin(settings), stop, what="topics") as client:
        if client is None:
            return
        created = await ensure_topics(
            client,
            {settings.kafka_topic: settings.kafka_partitions, settings.dead_letter_topic: 1},
            replication=settings.kafka_replication,
        )
        for name in created:
            _log.info("created topic %s", name)


async def relay_to_kafka(
    settings: Settings, outbox: WaitableOutbox, stop: asyncio.Event, metrics: Metrics | None = None
) -> None:
    """The outbox relay on Kafka, until ``stop``; waits for the broker when it is away."""
    await create_topics(settings, stop)
    async with started(lambda: producer(settings), stop, what="relay", metrics=metrics) as client:
        if client is not None:
            await run_relay(outbox, KafkaEventPublisher(client, settings.kafka_topic).publish, stop, metrics)


@contextlib.asynccontextmanager
async def postgres_storage(settings: Settings, metrics: Metrics) -> AsyncIterator[PostgresStorage]:
    storage = PostgresStorage(settings=settings, clock=SystemClock(), metrics=metrics)
    await awaited(storage.init_resources())
    try:
        yield storage
    finally:
        await awaited(storage.shutdown_resources())


def serve_metrics(settings: Settings) -> Metrics:
    """This process's metrics, served on ``FEEDCORE_METRICS_PORT`` when it is set."""
    metrics = Metrics(process_registry())
    if settings.metrics_port is not None:
        start_http_server(settings.metrics_port, addr=settings.host, registry=metrics.registry)
    return metrics


async def relay(settings: Settings, stop: asyncio.Event) -> None:
    """`feedcore relay`: the outbox relay alone."""
    metrics = serve_metrics(settings)
    async with postgres_storage(settings, metrics) as storage:
        await relay_to_kafka(settings, await awaited(storage.polled_outbox()), stop, metrics)


async def process(settings: Settings, stop: asyncio.Event) -> None:
    """`feedcore process`: consume the main topic and apply every event, until ``stop``."""
    metrics = serve_metrics(settings)
    set_on_retry_hooks([log_retry, lambda details: metrics.retried("processor", details.caused_by)])
    await create_topics(settings, stop)
    async with (
        postgres_storage(settings, metrics) as storage,
        started(lambda: producer(settings), stop, what="dead-letter producer", metrics=metrics) as dead_letter_producer,
        started(lambda: consumer(settings), stop, what="processor", metrics=metrics) as group_member,
    ):
        if dead_letter_producer is None or group_member is None:
            return
        processor = feed_processor(
            CONSUMER,
            posts=await awaited(storage.posts()),
            graph=await awaited(storage.graph()),
            unit_of_work=await awaited(storage.unit_of_work()),
            caches=await awaited(storage.caches()),
            policies=settings.policies,
            telemetry=metrics,
        )
        events = EventConsumer(
            KafkaRecordSource(group_member),
            processor.apply_all,
            KafkaDeadLetters(dead_letter_producer, settings.dead_letter_topic),
            transient=storage.unavailable_errors() + KAFKA_UNAVAILABLE,
            policy=RetryPolicy(max_attempts=settings.max_attempts, max_wait=settings.retry_max_seconds),
            metrics=metrics,
        )
        lag = asyncio.create_task(_report_lag(group_member, metrics, stop))
        _log.info("processing %s as group %s", settings.kafka_topic, settings.kafka_group)
        try:
            await events.run(stop)
        finally:
            lag.cancel()


async def _report_lag(member: AIOKafkaConsumer, metrics: Metrics, stop: asyncio.Event, *, every: float = 1.0) -> None:
    """Keep ``feedcore_consumer_lag`` up to date: per assigned partition, the records between this
    member's position and the end of the partition."""

    async def sample() -> None:
        assigned = list(member.assignment())
        ends = await member.end_offsets(assigned) if assigned else {}
        for partition, end in ends.items():
            position = await member.position(partition)
            metrics.consumer_lag.labels(str(partition.partition)).set(max(0, end - position))

    # Kafka being away is the consumer's to report.
    await run_every(every, stop, sample, what="reading the consumer lag")


def run_until_signalled(main: Callable[[asyncio.Event], Coroutine[Any, Any, None]], *, grace: float) -> None:
    """Run ``main(stop)``; SIGTERM or SIGINT sets ``stop``, and ``main`` then has ``grace`` seconds
    to finish its batch before it is cancelled (its uncommitted work is redelivered later)."""

    async def supervise() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        task = asyncio.create_task(main(stop))
        await asyncio.wait([task, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            _log.info("stopping: finishing the batch in hand (at most %.0fs)", grace)
            try:
                await asyncio.wait_for(task, grace)
            except TimeoutError:
                _log.warning("the batch did not finish in %.0fs; it will be delivered again", grace)
                return
        task.result()

    asyncio.run(supervise())


# --- the dead-letter tools (`feedcore dlq ...`) ---------------------------------------------------


class KafkaUnreachable(Exception):
    """The tools do not wait for the broker: they say it is away."""


@contextlib.asynccontextmanager
async def _connected(client: Client, settings: Settings) -> AsyncIterator[Client]:
    try:
        await client.start()
    except KAFKA_UNAVAILABLE as error:
        await _close(client)
        raise KafkaUnreachable(f"Kafka at {settings.kafka_bootstrap} is unreachable: {error!r}") from None
    try:
        yield client
    finally:
        await _close(client)


def _reader(settings: Settings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, client_id="feedcore-dlq", enable_auto_commit=False
    )


async def dead_letters(settings: Settings) -> list[DeadLetter]:
    async with (
        _connected(_reader(settings), settings) as reader,
        _connected(admin(settings), settings) as client,
    ):
        return await read_dead_letters(client, reader, settings.dead_letter_topic)


async def replay_dead_letters(settings: Settings, ids: Collection[str] | None) -> list[DeadLetter]:
    """Publish the original bytes of the dead letters ``ids`` (None: all) to the main topic again."""
    letters = await dead_letters(settings)
    chosen = letters if ids is None else [letter for letter in letters if letter.id in ids]
    async with _connected(producer(settings), settings) as client:
        queue = KafkaDeadLetters(client, settings.dead_letter_topic)
        for letter in chosen:
            await queue.replay(letter, to_topic=settings.kafka_topic)
    return chosen


async def purge(settings: Settings) -> int:
    async with (
        _connected(_reader(settings), settings) as reader,
        _connected(admin(settings), settings) as client,
    ):
        return await purge_dead_letters(client, reader, settings.dead_letter_topic)

"""The processes feedcore runs besides the HTTP API: the outbox relay (inside `feedcore serve`, or
alone as `feedcore relay`) and the fan-out processor (`feedcore process`), each until a signal."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import Any

import uvloop
from aiokafka import AIOKafkaConsumer
from prometheus_client import start_http_server
from stamina.instrumentation import set_on_retry_hooks

from feedcore import Outbox
from feedcore.adapters.kafka import KafkaDeadLetters, KafkaEventPublisher, KafkaRecordSource
from feedcore.adapters.metrics import Metrics
from feedcore.entrypoints.consumer import EventConsumer, RetryPolicy, log_retry
from feedcore.entrypoints.container import Containers, awaited, running
from feedcore.entrypoints.kafka import KAFKA_UNAVAILABLE, consumer, create_topics, producer, started
from feedcore.entrypoints.loops import run_every, run_relay
from feedcore.entrypoints.settings import Settings

_log = logging.getLogger(__name__)

#: The ledger's name for this processor: redeliveries to any instance of it are recognised.
CONSUMER = "feedcore-processor"


async def relay_to_kafka(
    settings: Settings, outbox: Outbox, stop: asyncio.Event, metrics: Metrics | None = None
) -> None:
    """The outbox relay on Kafka, until ``stop``; waits for the broker when it is away."""
    await create_topics(settings, stop)
    async with started(lambda: producer(settings), stop, what="relay", metrics=metrics) as client:
        if client is not None:
            await run_relay(outbox, KafkaEventPublisher(client, settings.kafka_topic).publish, stop, metrics)


def _serving_metrics(settings: Settings, built: Containers) -> Metrics:
    """This process's metrics, served on ``FEEDCORE_METRICS_PORT`` when it is set."""
    metrics = built.app.metrics()
    if settings.metrics_port is not None:
        start_http_server(settings.metrics_port, addr=settings.host, registry=metrics.registry)
    return metrics


async def relay(settings: Settings, stop: asyncio.Event) -> None:
    """`feedcore relay`: the outbox relay alone."""
    async with running(settings) as built:
        metrics = _serving_metrics(settings, built)
        await relay_to_kafka(settings, await awaited(built.storage.polled_outbox()), stop, metrics)


async def process(settings: Settings, stop: asyncio.Event) -> None:
    """`feedcore process`: consume the main topic and apply every event, until ``stop``."""
    async with running(settings) as built:
        metrics = _serving_metrics(settings, built)
        set_on_retry_hooks([log_retry, lambda details: metrics.retried("processor", details.caused_by)])
        await consume(settings, built, stop, metrics)


async def consume(settings: Settings, built: Containers, stop: asyncio.Event, metrics: Metrics) -> None:
    """Apply the main topic's events to the feeds as one member of the processor group, until
    ``stop``, on containers whose resources are open (`feedcore process`'s own, or those of a
    program that embeds feedcore)."""
    await create_topics(settings, stop)
    async with (
        started(lambda: producer(settings), stop, what="dead-letter producer", metrics=metrics) as dead_letters,
        started(lambda: consumer(settings), stop, what="processor", metrics=metrics) as group_member,
    ):
        if dead_letters is None or group_member is None:
            return
        processor = await awaited(built.app.processor(consumer=CONSUMER))
        events = EventConsumer(
            KafkaRecordSource(group_member),
            processor.apply_all,
            KafkaDeadLetters(dead_letters, settings.dead_letter_topic),
            transient=built.storage.unavailable_errors() + KAFKA_UNAVAILABLE,
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

    # On uvloop's event loop, as the API's workers run on it (granian picks it when installed).
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(supervise())

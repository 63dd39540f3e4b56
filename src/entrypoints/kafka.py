"""The Kafka clients feedcore's processes use, made from the settings and started when the broker
answers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from feedcore.adapters.kafka import ensure_topics
from feedcore.adapters.metrics import Metrics
from feedcore.entrypoints.loops import Backoff
from feedcore.entrypoints.settings import Settings

_log = logging.getLogger(__name__)
Client = TypeVar("Client", AIOKafkaProducer, AIOKafkaConsumer, AIOKafkaAdminClient)

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


def reader(settings: Settings, *, client_id: str) -> AIOKafkaConsumer:
    """A consumer in no group, subscribed to nothing: it is assigned partitions, or reads their bounds."""
    return AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, client_id=client_id, enable_auto_commit=False)


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
            await close(client)
            if metrics is not None:
                metrics.retried(what, error)
            _log.warning("%s: Kafka unreachable (%r); retrying in %.1fs", what, error, backoff.next)
            await backoff.wait()
            continue
        try:
            yield client
        finally:
            await close(client)
        return
    yield None


async def close(client: AIOKafkaProducer | AIOKafkaConsumer | AIOKafkaAdminClient) -> None:
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

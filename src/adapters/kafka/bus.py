from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from feedcore.events import Event, encode_event

_log = logging.getLogger(__name__)


class Record(msgspec.Struct, frozen=True, kw_only=True):
    """One message as the consumer read it: still bytes, so that a poison one can be set aside whole."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    #: Milliseconds since the epoch, as the broker stamped it.
    timestamp: int


class KafkaEventPublisher:
    """Publishes events to the main topic, keyed by ``Event.key``: one author's (or one follower's)
    events share a partition and so keep their order.

    The producer must be idempotent with ``acks="all"``; ``publish`` returns only once the broker
    acknowledged every event, and raises (after ``timeout`` seconds at most) otherwise.
    """

    def __init__(self, producer: AIOKafkaProducer, topic: str, *, timeout: float = 10.0) -> None:
        self._producer = producer
        self._topic = topic
        self._timeout = timeout

    async def publish(self, events: Sequence[Event]) -> None:
        async with asyncio.timeout(self._timeout):
            sent = [
                await self._producer.send(self._topic, encode_event(event), key=event.key.encode()) for event in events
            ]
            await asyncio.gather(*sent)


class KafkaRecordSource:
    """The processor's side of the main topic: batches of records, and manual offset commits."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer

    async def fetch(self, *, max_records: int, max_wait: float) -> list[Record]:
        batches = await self._consumer.getmany(timeout_ms=int(max_wait * 1000), max_records=max_records)
        return [
            Record(
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                key=message.key,
                value=message.value,
                timestamp=message.timestamp,
            )
            for messages in batches.values()
            for message in messages
        ]

    async def commit(self, records: Sequence[Record]) -> None:
        """Commit past ``records``: each partition's next offset is one beyond its last record here.

        After a rebalance took some of these partitions away, the commit is refused for good: it is
        dropped, and their new owner gets those records again (applying them twice is harmless).
        """
        offsets: dict[TopicPartition, int] = {}
        for record in records:
            partition = TopicPartition(record.topic, record.partition)
            offsets[partition] = max(offsets.get(partition, 0), record.offset + 1)
        try:
            await self._consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in offsets.items()})
        except (CommitFailedError, IllegalStateError) as error:
            _log.warning("offsets not committed, the group rebalanced (%r): the records will come again", error)

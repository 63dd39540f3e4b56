from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from aiokafka.structs import TopicPartition

from feedcore.adapters.kafka.bus import Record
from feedcore.adapters.kafka.topics import topic_partitions

#: Longest error message kept in a header; the rest is cut, marked with an ellipsis.
_MESSAGE_LIMIT = 2_000


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """A message set aside in the dead-letter topic, with why and where it came from."""

    partition: int
    offset: int
    key: bytes | None
    #: The original bytes, exactly as they were on the main topic.
    value: bytes | None
    original_topic: str
    original_partition: int
    original_offset: int
    error_type: str
    error_message: str
    attempts: int
    failed_at: datetime

    @property
    def id(self) -> str:
        return f"{self.partition}:{self.offset}"


class KafkaDeadLetters:
    """The dead-letter topic: where the processor sets aside what it cannot apply, and the tools
    that read it, replay it to the main topic and purge it."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self.topic = topic

    async def send(self, record: Record, *, error: BaseException, attempts: int, failed_at: datetime) -> None:
        """Write ``record`` with its failure to the dead-letter topic; returns once the broker acknowledged it."""
        message = str(error) or repr(error)
        if len(message) > _MESSAGE_LIMIT:
            message = message[: _MESSAGE_LIMIT - 1] + "…"
        headers = {
            "original-topic": record.topic,
            "original-partition": str(record.partition),
            "original-offset": str(record.offset),
            "error-type": f"{type(error).__module__}.{type(error).__qualname__}",
            "error-message": message,
            "attempts": str(attempts),
            "failed-at": failed_at.isoformat(),
        }
        await self._producer.send_and_wait(
            self.topic,
            record.value,
            key=record.key,
            headers=[(name, value.encode()) for name, value in headers.items()],
        )

    async def replay(self, letter: DeadLetter, *, to_topic: str) -> None:
        """Publish ``letter``'s original bytes, under its original key, to ``to_topic`` again."""
        await self._producer.send_and_wait(to_topic, letter.value, key=letter.key)


async def read_dead_letters(admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer, topic: str) -> list[DeadLetter]:
    """Every message now in the dead-letter ``topic``, oldest first per partition.

    ``consumer`` is started, in no group and subscribed to nothing: it is assigned the partitions here.
    """
    partitions = await topic_partitions(admin, topic)
    if not partitions:
        return []
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    ends = await consumer.end_offsets(partitions)
    letters: list[DeadLetter] = []
    while [partition for partition in partitions if await consumer.position(partition) < ends[partition]]:
        for messages in (await consumer.getmany(timeout_ms=1_000)).values():
            letters.extend(
                _letter(message.partition, message.offset, message.key, message.value, message.headers)
                for message in messages
                if message.offset < ends[TopicPartition(topic, message.partition)]
            )
    return sorted(letters, key=lambda letter: (letter.partition, letter.offset))


async def purge_dead_letters(admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer, topic: str) -> int:
    """Delete every message now in the dead-letter ``topic``; returns how many there were."""
    partitions = await topic_partitions(admin, topic)
    if not partitions:
        return 0
    starts = await consumer.beginning_offsets(partitions)
    ends = await consumer.end_offsets(partitions)
    await admin.delete_records({partition: RecordsToDelete(ends[partition]) for partition in partitions})
    return sum(ends[partition] - starts[partition] for partition in partitions)


def _letter(
    partition: int, offset: int, key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]]
) -> DeadLetter:
    found = {name: raw.decode(errors="replace") for name, raw in headers}
    return DeadLetter(
        partition=partition,
        offset=offset,
        key=key,
        value=value,
        original_topic=found.get("original-topic", "?"),
        original_partition=int(found.get("original-partition", -1)),
        original_offset=int(found.get("original-offset", -1)),
        error_type=found.get("error-type", "?"),
        error_message=found.get("error-message", ""),
        attempts=int(found.get("attempts", 0)),
        failed_at=datetime.fromisoformat(found.get("failed-at", "1970-01-01T00:00:00+00:00")),
    )

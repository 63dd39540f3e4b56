from __future__ import annotations

from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code
from aiokafka.structs import TopicPartition


async def ensure_topics(admin: AIOKafkaAdminClient, partitions: Mapping[str, int], *, replication: int) -> list[str]:
    """Create the topics of ``partitions`` (name -> partition count) that do not exist yet; returns those created.

    A topic that exists is left as it is, whatever its partition count.
    """
    existing = set(await admin.list_topics())
    missing = [NewTopic(name, count, replication) for name, count in partitions.items() if name not in existing]
    if not missing:
        return []
    response = await admin.create_topics(missing)
    created = []
    for name, code, *_ in response.topic_errors:
        if code == 0:
            created.append(name)
        elif for_code(code) is not TopicAlreadyExistsError:  # another process may have created it meanwhile
            raise for_code(code)(f"could not create topic {name}")
    return created


async def topic_partitions(admin: AIOKafkaAdminClient, topic: str) -> list[TopicPartition]:
    """The topic's partitions; none when it does not exist (yet)."""
    [described] = await admin.describe_topics([topic])
    return sorted(TopicPartition(topic, found["partition"]) for found in described["partitions"])


async def unconsumed(admin: AIOKafkaAdminClient, reader: AIOKafkaConsumer, *, topic: str, group: str) -> int:
    """How many records of ``topic`` the consumer ``group`` has not committed yet.

    ``reader`` is a started consumer in no group; it only reads the partitions' bounds.
    """
    partitions = await topic_partitions(admin, topic)
    if not partitions:
        return 0
    committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
    starts = await reader.beginning_offsets(partitions)
    ends = await reader.end_offsets(partitions)
    behind = 0
    for partition in partitions:
        found = committed.get(partition)
        # A partition the group never committed (offset -1) is consumed from its beginning.
        position = found.offset if found is not None and found.offset >= 0 else starts[partition]
        behind += max(0, ends[partition] - position)
    return behind

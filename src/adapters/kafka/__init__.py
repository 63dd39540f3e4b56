"""Kafka adapters (aiokafka): the event publisher, the consumer's record source, the dead-letter queue."""

from feedcore.adapters.kafka.bus import KafkaEventPublisher, KafkaRecordSource, Record
from feedcore.adapters.kafka.dead_letters import DeadLetter, KafkaDeadLetters, purge_dead_letters, read_dead_letters
from feedcore.adapters.kafka.topics import ensure_topics, topic_partitions, unconsumed

__all__ = [
    "DeadLetter",
    "KafkaDeadLetters",
    "KafkaEventPublisher",
    "KafkaRecordSource",
    "Record",
    "ensure_topics",
    "purge_dead_letters",
    "read_dead_letters",
    "topic_partitions",
    "unconsumed",
]

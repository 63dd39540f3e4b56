"""Kafka adapters (aiokafka): the event publisher, the consumer's record source, the dead-letter queue."""

from adapters.kafka.bus import KafkaEventPublisher, KafkaRecordSource, Record
from adapters.kafka.dead_letters import DeadLetter, KafkaDeadLetters, purge_dead_letters, read_dead_letters
from adapters.kafka.topics import ensure_topics

__all__ = [
    "DeadLetter",
    "KafkaDeadLetters",
    "KafkaEventPublisher",
    "KafkaRecordSource",
    "Record",
    "ensure_topics",
    "purge_dead_letters",
    "read_dead_letters",
]

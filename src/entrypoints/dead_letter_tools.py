"""The dead-letter tools (`feedcore dlq ...`): list, replay and purge the events the processor set
aside. They do not wait for the broker: they say it is away."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Collection

from feedcore.adapters.kafka import DeadLetter, KafkaDeadLetters, purge_dead_letters, read_dead_letters
from feedcore.entrypoints.kafka import KAFKA_UNAVAILABLE, Client, admin, close, producer, reader
from feedcore.entrypoints.settings import Settings


class KafkaUnreachable(Exception):
    """The tools do not wait for the broker: they say it is away."""


@contextlib.asynccontextmanager
async def _connected(client: Client, settings: Settings) -> AsyncIterator[Client]:
    try:
        await client.start()
    except KAFKA_UNAVAILABLE as error:
        await close(client)
        raise KafkaUnreachable(f"Kafka at {settings.kafka_bootstrap} is unreachable: {error!r}") from None
    try:
        yield client
    finally:
        await close(client)


async def dead_letters(settings: Settings) -> list[DeadLetter]:
    async with (
        _connected(reader(settings, client_id="feedcore-dlq"), settings) as consumer,
        _connected(admin(settings), settings) as client,
    ):
        return await read_dead_letters(client, consumer, settings.dead_letter_topic)


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
        _connected(reader(settings, client_id="feedcore-dlq"), settings) as consumer,
        _connected(admin(settings), settings) as client,
    ):
        return await purge_dead_letters(client, consumer, settings.dead_letter_topic)

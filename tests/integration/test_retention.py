"""Expired Idempotency-Keys and old ledger marks are deleted; live ones stay."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from feedcore.adapters.postgres import PostgresRetention

KEY_TTL = timedelta(hours=24)
LEDGER_RETENTION = timedelta(days=7)


@pytest.fixture
def pool(emptied_pool: AsyncConnectionPool[Any]) -> AsyncConnectionPool[Any]:
    return emptied_pool


async def aged(pool: AsyncConnectionPool[Any], *, keys: dict[str, timedelta], marks: dict[str, timedelta]) -> None:
    """Keys and ledger marks written ``age`` ago."""
    async with pool.connection() as connection:
        for number, (key, age) in enumerate(keys.items()):
            await connection.execute(
                "INSERT INTO idempotency_keys (user_id, key, fingerprint, post_id, created_at) "
                "VALUES ('ana', %s, 'f', %s, now() - %s)",
                (key, number, age),
            )
        for event_id, age in marks.items():
            await connection.execute(
                "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES ('c', %s, now() - %s)",
                (event_id, age),
            )


async def left(pool: AsyncConnectionPool[Any]) -> tuple[list[str], list[str]]:
    async with pool.connection() as connection:
        keys = await (await connection.execute("SELECT key FROM idempotency_keys ORDER BY key")).fetchall()
        marks = await (await connection.execute("SELECT event_id FROM processed_events ORDER BY 1")).fetchall()
    return [row[0] for row in keys], [row[0] for row in marks]


async def test_only_what_has_expired_goes_a_few_batches_a_pass(pool: AsyncConnectionPool[Any]) -> None:
    hour, day = timedelta(hours=1), timedelta(days=1)
    await aged(
        pool,
        keys={f"old-{n}": 24 * hour + n * hour + timedelta(seconds=1) for n in range(5)}
        | {"live-1": 23 * hour, "live-2": timedelta(0)},
        marks={f"old-{n}": 7 * day + n * hour + timedelta(seconds=1) for n in range(3)}
        | {"live-1": 6 * day, "live-2": timedelta(0)},
    )
    retention = PostgresRetention(pool, key_ttl=KEY_TTL, ledger_retention=LEDGER_RETENTION, batch=2, batches=2)

    assert await retention.prune() == {"idempotency_keys": 4, "processed_events": 3}
    assert await left(pool) == (["live-1", "live-2", "old-0"], ["live-1", "live-2"])  # the youngest is left
    assert await retention.prune() == {"idempotency_keys": 1, "processed_events": 0}
    assert await left(pool) == (["live-1", "live-2"], ["live-1", "live-2"])
    assert await retention.prune() == {"idempotency_keys": 0, "processed_events": 0}


async def test_a_key_a_request_holds_is_skipped_rather_than_waited_for(pool: AsyncConnectionPool[Any]) -> None:
    expired = KEY_TTL + timedelta(minutes=1)
    await aged(pool, keys={"held": expired, "free": expired}, marks={})
    retention = PostgresRetention(pool, key_ttl=KEY_TTL, ledger_retention=LEDGER_RETENTION)
    async with pool.connection() as holder, holder.transaction():
        await holder.execute("SELECT 1 FROM idempotency_keys WHERE key = 'held' FOR UPDATE")
        pruned = await asyncio.wait_for(retention.prune(), timeout=5)
        assert pruned["idempotency_keys"] == 1
    assert (await left(pool))[0] == ["held"]
    assert (await retention.prune())["idempotency_keys"] == 1
    assert await left(pool) == ([], [])

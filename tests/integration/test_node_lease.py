"""Node numbers leased through PostgreSQL: servers sharing a database never make the same id."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from adapters.memory import ManualClock
from adapters.postgres import LeasedIdGenerator, NodeLease, NodeLeaseUnavailable
from feedcore.ids import MAX_NODE, SEQUENCE_BITS


async def test_live_leases_hold_distinct_numbers_and_a_released_one_is_free_again(database_url: str) -> None:
    first, second = NodeLease(database_url, first=7), NodeLease(database_url, first=7)
    try:
        assert await first.acquire() == 7
        assert await second.acquire() == 8  # 7 is held: the next free one
        await first.release()
        again = NodeLease(database_url, first=7)
        assert await again.acquire() == 7
        await again.release()
    finally:
        await first.release()
        await second.release()


async def test_a_lease_wraps_round_and_says_when_every_number_is_held(database_url: str) -> None:
    held = [NodeLease(database_url, first=MAX_NODE)]
    try:
        assert await held[0].acquire() == MAX_NODE
        wrapped = NodeLease(database_url, first=MAX_NODE)
        held.append(wrapped)
        assert await wrapped.acquire() == 0
    finally:
        for lease in held:
            await lease.release()
    # With every number taken, a further lease is refused rather than shared.
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as blocker:
        for node in range(MAX_NODE + 1):
            await blocker.execute("SELECT pg_advisory_lock(%s, %s)", (0x6E6F6465, node))
        with pytest.raises(NodeLeaseUnavailable):
            await NodeLease(database_url).acquire()


async def test_ids_are_refused_until_the_lease_is_taken_then_carry_its_number(database_url: str) -> None:
    clock = ManualClock()
    blocker = NodeLease(database_url, first=42)
    await blocker.acquire()
    ids = LeasedIdGenerator(clock, NodeLease(database_url, first=42))
    try:
        with pytest.raises(psycopg.OperationalError):
            ids.next_id()
        await ids.start()
        for _ in range(100):
            try:
                made = ids.next_id()
                break
            except psycopg.OperationalError:
                await asyncio.sleep(0.05)
        assert (made >> SEQUENCE_BITS) & MAX_NODE == 43
    finally:
        await ids.stop()
        await blocker.release()

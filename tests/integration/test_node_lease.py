"""Node numbers leased through PostgreSQL: servers sharing a database never make the same id."""

from __future__ import annotations

import asyncio
import signal

import psycopg
import pytest

from feedcore.adapters.memory import ManualClock
from feedcore.adapters.postgres import LeasedIdGenerator, NodeLease, NodeLeaseUnavailable
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
        # Released now rather than when the server process notices the closed session.
        await blocker.execute("SELECT pg_advisory_unlock_all()")


async def test_ids_are_refused_until_the_lease_is_taken_then_carry_its_number(database_url: str) -> None:
    clock = ManualClock()
    blocker = NodeLease(database_url, first=42)
    assert await blocker.acquire() == 42
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


async def holder_of(database_url: str, node: int) -> int | None:
    """The backend pid holding ``node``'s lease, if any."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as connection:
        cursor = await connection.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = %s AND granted",
            (0x6E6F6465, node),
        )
        row = await cursor.fetchone()
        return int(row[0]) if row else None


async def cut(database_url: str, pid: int) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as connection:
        await connection.execute("SELECT pg_terminate_backend(%s)", (pid,))


async def test_a_lease_whose_connection_drops_is_taken_again(database_url: str) -> None:
    lease = NodeLease(database_url, first=500, check_every=0.05)
    try:
        assert await lease.acquire() == 500
        first = await holder_of(database_url, 500)
        assert first is not None
        await cut(database_url, first)
        for _ in range(100):
            again = await holder_of(database_url, 500)
            if again not in (None, first):
                break
            await asyncio.sleep(0.05)
        assert again not in (None, first), "the lease was not taken again"
    finally:
        await lease.release()
    assert await holder_of(database_url, 500) is None


async def test_a_process_whose_number_was_taken_meanwhile_stops_itself(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    signals: list[int] = []
    monkeypatch.setattr("feedcore.adapters.postgres.lease.os.kill", lambda pid, signum: signals.append(signum))
    lease = NodeLease(database_url, first=600, check_every=0.3)
    taker = NodeLease(database_url, first=600)
    try:
        assert await lease.acquire() == 600
        holder = await holder_of(database_url, 600)
        assert holder is not None
        await cut(database_url, holder)
        assert await taker.acquire() == 600  # before the lease notices: another process has it now
        for _ in range(100):
            if signals:
                break
            await asyncio.sleep(0.05)
        assert signals == [signal.SIGTERM]
    finally:
        await lease.release()
        await taker.release()

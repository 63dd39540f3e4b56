from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from psycopg_pool import AsyncConnectionPool

from feedcore.events import Event, decode_event


class PostgresOutbox:
    """The relay's side of the outbox table.

    Rows are claimed with ``FOR UPDATE SKIP LOCKED``, so concurrent relays take disjoint batches,
    and deleted in the claiming transaction only after ``publish`` returned.
    """

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool

    async def relay(self, publish: Callable[[Sequence[Event]], Awaitable[None]], *, limit: int) -> int:
        async with self._pool.connection() as connection, connection.transaction():
            cursor = await connection.execute(
                "SELECT id, payload FROM outbox ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED", (limit,)
            )
            rows = await cursor.fetchall()
            if not rows:
                return 0
            await publish([decode_event(row[1]) for row in rows])
            await connection.execute("DELETE FROM outbox WHERE id = ANY(%s)", ([row[0] for row in rows],))
            return len(rows)

    async def wait(self, max_wait: float) -> None:
        """Pause before looking again: the table tells nobody of new rows, so the relay polls."""
        await asyncio.sleep(min(max_wait, self.poll_interval))

    poll_interval = 0.01

    async def backlog(self, *, at_most: int | None = None) -> int:
        """Rows waiting, counted up to ``at_most``: a full count scans them all (0.1 s a million)."""
        async with self._pool.connection() as connection:
            cursor = await connection.execute(
                "SELECT count(*) FROM (SELECT FROM outbox LIMIT %s) AS waiting", (at_most,)
            )
            row = await cursor.fetchone()
            return int(row[0]) if row is not None else 0

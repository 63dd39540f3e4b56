from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from psycopg_pool import AsyncConnectionPool

from feedcore.adapters.postgres.pool import PLANNED_PER_CALL
from feedcore.events import Event, decode_event


class OutboxBell:
    """Rung by this process's writes once they have committed outbox rows, and waited on by its
    relay: the relay wakes when there is work instead of asking the table over and over."""

    def __init__(self) -> None:
        self._rung = asyncio.Event()

    def ring(self) -> None:
        self._rung.set()

    def clear(self) -> None:
        self._rung.clear()

    async def wait(self, at_most: float) -> None:
        """Return once rung (since the last :meth:`clear`), or after ``at_most`` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._rung.wait(), at_most)


class PostgresOutbox:
    """The relay's side of the outbox table.

    Rows are claimed with ``FOR UPDATE SKIP LOCKED``, so concurrent relays take disjoint batches,
    and deleted in the claiming transaction only after ``publish`` returned.

    Between batches the relay waits for ``bell`` (this process's own writes ring it), and looks at
    the table every ``poll_every`` seconds whatever happens, for rows other processes left behind.
    """

    def __init__(
        self, pool: AsyncConnectionPool[Any], *, bell: OutboxBell | None = None, poll_every: float = 0.05
    ) -> None:
        self._pool = pool
        self._bell = bell or OutboxBell()
        self._poll_every = poll_every

    async def relay(self, publish: Callable[[Sequence[Event]], Awaitable[None]], *, limit: int) -> int:
        self._bell.clear()  # before the claim: a row committed after it rings again
        async with self._pool.connection() as connection, connection.transaction():
            cursor = await connection.execute(
                "SELECT id, payload FROM outbox ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                (limit,),
                prepare=PLANNED_PER_CALL,
            )
            rows = await cursor.fetchall()
            if not rows:
                return 0
            await publish([decode_event(row[1]) for row in rows])
            await connection.execute(
                "DELETE FROM outbox WHERE id = ANY(%s)", ([row[0] for row in rows],), prepare=PLANNED_PER_CALL
            )
            return len(rows)

    async def wait(self, max_wait: float) -> None:
        """Return when this process has appended rows, or after ``poll_every`` (or ``max_wait``)
        seconds: the table tells nobody of rows other processes append."""
        await self._bell.wait(min(max_wait, self._poll_every))

    async def backlog(self, *, at_most: int | None = None) -> int:
        """Rows waiting, counted up to ``at_most``: a full count scans them all (0.1 s a million)."""
        async with self._pool.connection() as connection:
            cursor = await connection.execute(
                "SELECT count(*) FROM (SELECT FROM outbox LIMIT %s) AS waiting", (at_most,)
            )
            row = await cursor.fetchone()
            return int(row[0]) if row is not None else 0

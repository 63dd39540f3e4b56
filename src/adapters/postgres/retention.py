"""Deleting rows that have outlived their use, so that the tables which grow with traffic do not
grow for ever: Idempotency-Keys past their TTL, and ledger marks past the ledger's retention."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from psycopg import sql
from psycopg_pool import AsyncConnectionPool

#: Each table, and the column that says when its row was written.
_AGED: Final = {"idempotency_keys": "created_at", "processed_events": "processed_at"}


class PostgresRetention:
    """Deletes expired Idempotency-Keys (older than ``key_ttl``: a repeat would find the key
    expired anyway) and ledger marks older than ``ledger_retention``.

    A ledger mark only spares a redelivered event its store work, and handlers converge on the
    truth without it; keep it at least as long as the topic keeps events, so that a consumer group
    rewound to its topic's start still skips what it applied.

    Rows go ``batch`` at a time, oldest first, each batch in a transaction of its own that skips
    rows locked by a request: several servers can prune at once, and none waits on another. A pass
    stops after ``batches`` of them per table, so that a long backlog (a first deployment on an old
    database) is worked off over several passes rather than in one long burst of deletes.
    """

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        *,
        key_ttl: timedelta,
        ledger_retention: timedelta,
        batch: int = 5_000,
        batches: int = 100,
    ) -> None:
        self._pool = pool
        self._kept = {"idempotency_keys": key_ttl, "processed_events": ledger_retention}
        self._batch = batch
        self._batches = batches

    async def prune(self) -> dict[str, int]:
        """Delete what has expired; returns how many rows went, per table."""
        return {table: await self._prune(table) for table in _AGED}

    async def _prune(self, table: str) -> int:
        statement = sql.SQL(
            "DELETE FROM {table} WHERE ctid = ANY(ARRAY("
            "SELECT ctid FROM {table} WHERE {written} < now() - %s ORDER BY {written} LIMIT %s "
            "FOR UPDATE SKIP LOCKED))"
        ).format(table=sql.Identifier(table), written=sql.Identifier(_AGED[table]))
        deleted = 0
        for _ in range(self._batches):
            async with self._pool.connection() as connection:
                cursor = await connection.execute(statement, (self._kept[table], self._batch))
            rows: int = cursor.rowcount
            deleted += rows
            if rows < self._batch:
                break
        return deleted

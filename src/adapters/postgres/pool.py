from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolClosed

CONNECTION_OPTIONS: Final[dict[str, Any]] = {
    "autocommit": True,
    # A server that vanishes without closing its connections (a cut network) is noticed in
    # seconds rather than after the kernel's default of two hours or more.
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}

#: ``prepare`` for a statement given a batch of keys (``= ANY(...)``, ``unnest``) on a table that
#: grows, or reading ``feed_entries``, which grows fastest: planned with its arguments at every
#: call. psycopg prepares a statement on its sixth call,
#: and PostgreSQL then keeps a generic plan when it costs no more; a plan made while the table was
#: small is a sequential scan, and stays one as the table grows, until autovacuum next analyses it.
#: A new deployment met that in its first minute: the processor's ledger look-up of 300 events, by
#: sequential scan of 200,000 rows, took 1.3 s (against well under a millisecond by its index), and
#: fan-out fell seconds behind. Such a statement runs once a batch, or for a read the cache missed,
#: so its planning is cheap beside it.
PLANNED_PER_CALL: Final = False


def planned_for(keys: Collection[object]) -> bool | None:
    """``prepare`` for a look-up of ``keys`` that serves batches and single requests alike: a batch
    is planned with its arguments (:data:`PLANNED_PER_CALL`); one key keeps psycopg's prepared plan.
    A generic plan by sequential scan costs a single key one pass over the table until the next
    analysis, not a pass per key, while planning each call cost a post's read 30-70 us more in the
    backend, and an author's timeline 180-230 us (measured, 200,000 posts)."""
    return PLANNED_PER_CALL if len(keys) > 1 else None


class RecoveringPool(AsyncConnectionPool[AsyncConnection[Any]]):
    """A pool that checks all its idle connections as soon as one is found broken.

    A PostgreSQL restart, or a cut network, breaks every connection of the pool at once, and
    psycopg's pool finds each out only when it is next used and fails. A processor retrying its
    batch with a growing backoff met one dead connection a retry: after a restart it applied nothing
    for 326 s, and a server answered one 503 for each. Checking them all costs a round trip a
    connection, once an outage; then the next attempt finds a live connection, or a fresh one.
    """

    _checking: asyncio.Task[None] | None = None

    async def putconn(self, conn: AsyncConnection[Any]) -> None:
        broken = conn.broken
        await super().putconn(conn)
        if broken and (self._checking is None or self._checking.done()):
            self._checking = asyncio.create_task(self._check_idle())

    async def _check_idle(self) -> None:
        with contextlib.suppress(PoolClosed):
            await self.check()

    async def close(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109  # the base class's signature
        if self._checking is not None:
            self._checking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checking
        await super().close(timeout)


def connection_pool(
    url: str, *, min_size: int = 1, max_size: int = 4, timeout: float = 30.0
) -> AsyncConnectionPool[AsyncConnection[Any]]:
    """A pool of autocommit connections, not yet open: the adapters' one way to reach PostgreSQL.

    A single statement commits alone, in one round trip; writes that need several statements open
    a transaction of their own. (Without autocommit, psycopg sends BEGIN before the first statement
    and the pool a COMMIT after the last: three round trips for every single read.)
    """
    return RecoveringPool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        open=False,
        kwargs=CONNECTION_OPTIONS,
    )

"""Node numbers for id generators, leased through PostgreSQL so that no two live servers share one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from typing import Any, Final

import psycopg
from psycopg import AsyncConnection

from feedcore.adapters.postgres.pool import CONNECTION_OPTIONS
from feedcore.ids import MAX_NODE, SnowflakeIdGenerator
from feedcore.model import PostId
from feedcore.ports import Clock

_log = logging.getLogger(__name__)
#: The first key of every node lease (advisory locks with two int4 keys; the second is the node).
_NAMESPACE: Final = 0x6E6F6465  # "node"


class NodeLeaseUnavailable(RuntimeError):
    """Every node number is held by a live process."""


class NodeLease:
    """A node number that no other live process sharing the database holds.

    The lease is a session-level advisory lock on a connection of its own: it lasts as long as
    that connection, so a process that dies frees its number. Should the connection drop (the
    database restarts), the lease is taken again on a new one; a process that finds its number
    taken by another meanwhile stops itself (SIGTERM) rather than make ids another process makes.
    """

    def __init__(self, url: str, *, first: int = 0, check_every: float = 2.0) -> None:
        self._url = url
        self._first = first
        self._check_every = check_every
        self._connection: AsyncConnection[Any] | None = None
        self._watch: asyncio.Task[None] | None = None
        self.node: int | None = None

    async def acquire(self) -> int:
        """Lease the first free number from ``first`` on (wrapping round); kept until :meth:`release`."""
        connection = await self._connect()
        for offset in range(MAX_NODE + 1):
            node = (self._first + offset) % (MAX_NODE + 1)
            if await _try_lock(connection, node):
                self._connection, self.node = connection, node
                self._watch = asyncio.create_task(self._keep(node, connection))
                return node
        await connection.close()
        raise NodeLeaseUnavailable(f"all {MAX_NODE + 1} node numbers are leased by live processes")

    async def release(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self._connection is not None:
            # Unlocked before closing: a closed session's locks go only once its server process
            # has noticed and exited, so a lease taken just after would still find the number held.
            with contextlib.suppress(psycopg.Error):
                await self._connection.execute("SELECT pg_advisory_unlock(%s, %s)", (_NAMESPACE, self.node))
            await self._connection.close()
            self._connection = None

    async def _connect(self) -> AsyncConnection[Any]:
        return await AsyncConnection.connect(self._url, **CONNECTION_OPTIONS)

    async def _keep(self, node: int, connection: AsyncConnection[Any]) -> None:
        while True:
            await asyncio.sleep(self._check_every)
            try:
                await connection.execute("SELECT 1")
                continue
            except psycopg.Error as error:
                _log.warning("the lease of node %d was lost (%s); taking it again", node, error)
            retaken = await self._retake(node)
            if retaken is None:
                _log.critical("node %d was leased by another process meanwhile: stopping", node)
                os.kill(os.getpid(), signal.SIGTERM)
                return
            self._connection = connection = retaken
            _log.warning("node %d is leased again", node)

    async def _retake(self, node: int) -> AsyncConnection[Any] | None:
        """The lease of ``node`` again, on a new connection; None when another process holds it."""
        while True:
            try:
                connection = await self._connect()
            except psycopg.Error:
                await asyncio.sleep(self._check_every)
                continue
            if await _try_lock(connection, node):
                return connection
            await connection.close()
            return None


async def _try_lock(connection: AsyncConnection[Any], node: int) -> bool:
    cursor = await connection.execute("SELECT pg_try_advisory_lock(%s, %s)", (_NAMESPACE, node))
    row = await cursor.fetchone()
    return bool(row and row[0])


class LeasedIdGenerator:
    """Ids under a node number leased from PostgreSQL, so that servers sharing a database (several
    workers, several hosts) never make the same id.

    The lease is taken in the background by :meth:`start`, retried while PostgreSQL does not
    answer: a server starts while it is down, and until the lease is taken, making an id fails as
    any other write does then (``OperationalError``: 503, "try again").
    """

    def __init__(self, clock: Clock, lease: NodeLease, *, retry_every: float = 1.0) -> None:
        self._clock = clock
        self._lease = lease
        self._retry_every = retry_every
        self._ids: SnowflakeIdGenerator | None = None
        self._leasing: asyncio.Task[None] | None = None

    def next_id(self) -> PostId:
        if self._ids is None:
            raise psycopg.OperationalError("no node number is leased yet: PostgreSQL has not answered")
        return self._ids.next_id()

    async def start(self) -> None:
        """Take the lease now if PostgreSQL answers, else go on trying in the background."""
        if not await self._try_take():
            self._leasing = asyncio.create_task(self._take())

    async def stop(self) -> None:
        if self._leasing is not None:
            self._leasing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._leasing
        await self._lease.release()

    async def _take(self) -> None:
        while True:
            await asyncio.sleep(self._retry_every)
            if await self._try_take():
                return

    async def _try_take(self) -> bool:
        try:
            node = await self._lease.acquire()
        except psycopg.Error as error:
            _log.warning("cannot lease a node number yet (%s); trying again", error)
            return False
        self._ids = SnowflakeIdGenerator(self._clock, node)
        _log.info("post ids are made under node %d", node)
        return True

"""Commands packed by hiredis, in C, as redis-py's synchronous client already does.

redis-py's asyncio connections pack every command in Python (redis/redis-py#4176): a fan-out's
SMISMEMBER of 10,000 users took 7.3 ms to pack there, and 0.8 ms with hiredis.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from redis.asyncio import BlockingConnectionPool, Connection, Redis, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.connection import HiredisRespSerializer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.utils import HIREDIS_AVAILABLE

#: A client of one Redis server, or of a Redis Cluster. Every key a script or a multi-key command is
#: given lies in one hash slot, so both serve every adapter; only the lanes need a single server.
RedisClient = Redis | RedisCluster
#: The scheme of a URL naming a Redis Cluster by one of its nodes; see :func:`redis_client`.
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def redis_client(url: str, *, max_connections: int, timeout: float) -> RedisClient:
    """A client for ``url``: a :class:`RedisCluster` for ``redis+cluster://node:port`` (or
    ``rediss+cluster://``), discovering the other nodes from that one; else a client of that server,
    whose requests beyond ``max_connections`` wait their turn for a connection (up to ``timeout``)
    instead of failing at once, which would read as Redis being down."""
    scheme, _, rest = url.partition("://")
    timeouts = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if scheme in CLUSTER_SCHEMES:
        # (A cluster's connections are redis-py's own: it takes no connection class but SSL's.)
        return RedisCluster.from_url(f"{CLUSTER_SCHEMES[scheme]}://{rest}", max_connections=max_connections, **timeouts)
    pool = BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=timeout, connection_class=HiredisPackedConnection, **timeouts
    )
    return Redis.from_pool(pool)


class HiredisPackedConnection(Connection):
    """A connection that packs with hiredis when it is installed; memoryviews, which redis-py
    sends without copying, still go the Python way."""

    _serializer = HiredisRespSerializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        if HIREDIS_AVAILABLE and not any(isinstance(arg, memoryview) for arg in args):
            packed: list[bytes] = self._serializer.pack(*args)
            return packed
        return super().pack_command(*args)


class Lanes:
    """A few connections of their own for the single commands of the read path, each taken whole by
    one command at a time; a command finding all of them busy waits for one.

    redis-py's pool costs about 35 µs of every command in locks, a read to check the connection's
    health and metric hooks, whatever the pool; a connection taken from a queue costs none of it.
    A connection that fails (or whose command is cancelled) is closed, and opens again with its next
    command. A connection that was open and is found closed by the server (Redis restarted) gets its
    command once more, on a new connection: else each of them, in each process, would report an
    outage that is over, and have every cached key dropped again.
    """

    def __init__(self, make: Callable[[], AbstractConnection], *, size: int, timeout: float | None = None) -> None:
        # Last in, first out: under light load the same few connections serve, and the rest stay closed.
        self._free: asyncio.Queue[AbstractConnection] = asyncio.LifoQueue()
        self._all = [make() for _ in range(size)]
        self._timeout = timeout
        for connection in self._all:
            self._free.put_nowait(connection)

    @classmethod
    def beside(cls, client: Redis, *, size: int) -> Lanes:
        """Lanes to the server ``client`` talks to, with its connections' settings. Their socket
        timeout bounds each command whole instead (one timer, where redis-py starts a task to time
        each send)."""
        pool = client.connection_pool
        settings = {**pool.connection_kwargs, "socket_timeout": None}
        return cls(
            lambda: pool.connection_class(**settings), size=size, timeout=pool.connection_kwargs.get("socket_timeout")
        )

    async def execute(self, *args: Any) -> Any:
        """One command's raw reply (an error reply raises, as redis-py's client does); a command not
        answered within the timeout raises TimeoutError."""
        free = self._free
        connection = free.get_nowait() if not free.empty() else await free.get()
        try:
            async with asyncio.timeout(self._timeout):
                opened = connection.is_connected
                try:
                    return await _run(connection, args)
                except RedisConnectionError:
                    if not opened:
                        raise
                    await connection.disconnect(nowait=True)
                    return await _run(connection, args)
        except BaseException:
            await connection.disconnect(nowait=True)
            raise
        finally:
            free.put_nowait(connection)

    async def close(self) -> None:
        for connection in self._all:
            await connection.disconnect()


async def _run(connection: AbstractConnection, args: tuple[Any, ...]) -> Any:
    await connection.send_packed_command(connection.pack_command(*args), check_health=False)
    return await connection.read_response()

from __future__ import annotations

from typing import Any, Final

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

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


def connection_pool(
    url: str, *, min_size: int = 1, max_size: int = 4, timeout: float = 30.0
) -> AsyncConnectionPool[AsyncConnection[Any]]:
    """A pool of autocommit connections, not yet open: the adapters' one way to reach PostgreSQL.

    A single statement commits alone, in one round trip; writes that need several statements open
    a transaction of their own. (Without autocommit, psycopg sends BEGIN before the first statement
    and the pool a COMMIT after the last: three round trips for every single read.)
    """
    return AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        open=False,
        kwargs=CONNECTION_OPTIONS,
    )

"""The ceiling for feed reads on this machine: a bare Litestar endpoint doing one Redis read.

Served by granian (one worker) beside feedcore's own read benchmark, measured by the same wrk.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, get
from redis.asyncio import Redis

_client: list[Redis] = []
KEY = "bench:ceiling"


@asynccontextmanager
async def _redis(_: Litestar) -> AsyncIterator[None]:
    # More connections than wrk opens: the client's default of 100 fails requests beyond it.
    client = Redis.from_url(os.environ["BENCH_REDIS_URL"], max_connections=1_024)
    await client.set(KEY, b"x" * 64)
    _client.append(client)
    try:
        yield
    finally:
        await client.aclose()


@get("/ceiling")
async def ceiling() -> dict[str, int]:
    value = await _client[0].get(KEY)
    return {"bytes": len(value or b"")}


app = Litestar([ceiling], lifespan=[_redis])

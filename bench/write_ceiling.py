"""The ceiling for durable writes on this machine: a bare Litestar endpoint that commits one
single-row INSERT per request, on a connection pool with feedcore's own settings.

Served by granian beside feedcore's write benchmark and measured by the same wrk. BENCH_DATABASE_URL
names the database; the pool's size comes from FEEDCORE_DATABASE_POOL_MIN/MAX, as feedcore's does.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from litestar import Litestar, post
from psycopg_pool import AsyncConnectionPool

from feedcore.adapters.postgres import connection_pool
from feedcore.entrypoints.settings import Settings

CEILING_TABLE = "CREATE TABLE IF NOT EXISTS ceiling (id bigserial PRIMARY KEY, content text NOT NULL)"
_pool: list[AsyncConnectionPool[Any]] = []


class Body(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    content: str


@asynccontextmanager
async def _database(_: Litestar) -> AsyncIterator[None]:
    settings = Settings.from_env()
    pool = connection_pool(
        os.environ["BENCH_DATABASE_URL"], min_size=settings.database_pool_min, max_size=settings.database_pool_max
    )
    await pool.open(wait=True)
    async with pool.connection() as connection:
        await connection.execute(CEILING_TABLE)
    _pool.append(pool)
    try:
        yield
    finally:
        await pool.close()


@post("/ceiling")
async def ceiling(data: Body) -> dict[str, int]:
    async with _pool[0].connection() as connection:
        cursor = await connection.execute("INSERT INTO ceiling (content) VALUES (%s) RETURNING id", (data.content,))
        row = await cursor.fetchone()
    return {"id": row[0] if row else 0}


app = Litestar([ceiling], lifespan=[_database])

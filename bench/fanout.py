"""Fan-out into PostgreSQL: one post to 1k, 10k and 100k followers, beside the machine's raw limits.

Needs FEEDCORE_DATABASE_URL (make bench-fanout starts the services). Works in a database of its
own, made and dropped here. Reports feed entries written per second through the processor (one
transaction per event, chunks of FEEDCORE fan-out size), and in the same run the raw insert rates
of a plain psycopg script: COPY, and INSERT ... SELECT unnest ... ON CONFLICT DO NOTHING.

Usage: python -m bench.fanout [--runs 3] [--sizes 1000 10000 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from bench.harness import scratch_database
from feedcore import FeedProcessor, Policies, Post, PostId, PostPublished, UserId
from feedcore.adapters.postgres import (
    PostgresFeedUnitOfWork,
    PostgresPostStore,
    PostgresSocialGraph,
    connection_pool,
    migrate,
)

RAW_ROWS = 100_000


async def follow_all(pool: AsyncConnectionPool[Any], author: str, followers: int) -> None:
    """Set up the graph directly (not measured)."""
    async with pool.connection() as connection, connection.cursor() as cursor:
        async with cursor.copy("COPY follows (follower_id, followee_id) FROM STDIN") as copy:
            for n in range(followers):
                await copy.write_row((f"{author}-fan-{n:06d}", author))
        await cursor.execute(
            "INSERT INTO user_counts (user_id, followers) VALUES (%s, %s) ON CONFLICT (user_id) "
            "DO UPDATE SET followers = excluded.followers",
            (author, followers),
        )


async def timed(action: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


async def fan_out_once(pool: AsyncConnectionPool[Any], processor: FeedProcessor, author: str, serial: int) -> float:
    post = Post(
        id=PostId(1_000_000 + serial),
        author_id=UserId(author),
        content="benchmark",
        created_at=datetime.now(UTC),
    )
    event = PostPublished(
        event_id=str(uuid.uuid4()), occurred_at=post.created_at, post_id=post.id, author_id=post.author_id
    )
    await PostgresPostStore(pool).publish(post, event)
    return await timed(lambda: processor.apply(event))


async def raw_limits(pool: AsyncConnectionPool[Any]) -> dict[str, float]:
    users = [f"raw-{n:06d}" for n in range(RAW_ROWS)]
    rates: dict[str, float] = {}
    async with pool.connection() as connection:
        await connection.execute(
            'CREATE TABLE IF NOT EXISTS raw_entries (user_id text COLLATE "C" NOT NULL, post_id bigint NOT NULL, '
            'author_id text COLLATE "C" NOT NULL, PRIMARY KEY (user_id, post_id))'
        )

        async def copy_rows() -> None:
            async with connection.cursor() as cursor, cursor.copy("COPY raw_entries FROM STDIN") as copy:
                for user in users:
                    await copy.write_row((user, 1, "raw-author"))

        rates["COPY"] = RAW_ROWS / await timed(copy_rows)

        async def unnest_chunks() -> None:
            async with connection.transaction():
                for start in range(0, RAW_ROWS, 1_000):
                    await connection.execute(
                        "INSERT INTO raw_entries SELECT unnest(%s::text[]), 2, 'raw-author' ON CONFLICT DO NOTHING",
                        (users[start : start + 1_000],),
                    )

        rates["INSERT SELECT unnest ON CONFLICT (1k-row chunks, one transaction)"] = RAW_ROWS / await timed(
            unnest_chunks
        )

        async def unnest_once() -> None:
            await connection.execute(
                "INSERT INTO raw_entries SELECT unnest(%s::text[]), 3, 'raw-author' ON CONFLICT DO NOTHING", (users,)
            )

        rates["INSERT SELECT unnest ON CONFLICT (one statement)"] = RAW_ROWS / await timed(unnest_once)
        await connection.execute("DROP TABLE raw_entries")
    return rates


async def run(url: str, sizes: list[int], runs: int, chunk: int) -> None:
    async with await psycopg.AsyncConnection.connect(url) as connection:
        await migrate(connection)
    pool = connection_pool(url, min_size=2, max_size=4)
    await pool.open(wait=True)
    try:
        # Above every benchmark size: nobody here is a celebrity.
        policies = Policies(celebrity_threshold=10_000_000, fanout_chunk=chunk)
        processor = FeedProcessor(
            consumer="bench",
            posts=PostgresPostStore(pool),
            graph=PostgresSocialGraph(pool),
            unit_of_work=PostgresFeedUnitOfWork(pool),
            cache=None,
            policies=policies,
        )
        print(f"fan-out into PostgreSQL, one processor, chunks of {policies.fanout_chunk}, {runs} runs each")
        serial = 0
        for size in sizes:
            author = f"author-{size}"
            await follow_all(pool, author, size)
            rates = []
            for _ in range(runs):
                serial += 1
                elapsed = await fan_out_once(pool, processor, author, serial)
                rates.append((size + 1) / elapsed)
            listed = " ".join(f"{rate:,.0f}" for rate in rates)
            print(f"  {size:>7,} followers: median {statistics.median(rates):>9,.0f} entries/s   (runs: {listed})")
        limits = [await raw_limits(pool) for _ in range(runs)]
        print(f"raw limits of this machine, plain psycopg, {RAW_ROWS:,} rows, median of {runs}:")
        for label in limits[0]:
            print(f"  {label}: {statistics.median(run[label] for run in limits):,.0f} rows/s")
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=Policies().fanout_chunk, help="followers per fan-out step")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    arguments = parser.parse_args()
    with scratch_database() as (_, url):
        asyncio.run(run(url, arguments.sizes, arguments.runs, arguments.chunk))


if __name__ == "__main__":
    main()

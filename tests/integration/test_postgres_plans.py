"""The plans PostgreSQL picks for the hot reads: what EXPLAIN (ANALYZE) shows, not how fast it runs."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import psycopg

from feedcore.adapters.postgres import (
    PostgresFeedUnitOfWork,
    PostgresOutbox,
    PostgresPostStore,
    connection_pool,
    migrate,
)
from feedcore.adapters.postgres.feeds import FEED_PAGE
from feedcore.adapters.postgres.migrations import available
from feedcore.events import Event
from feedcore.model import PostId, UserId

#: The migration that partitions feed_entries by user.
PARTITIONED = 4


def nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(node for child in plan.get("Plans", []) for node in nodes(child))]


async def test_a_feed_page_is_a_backward_primary_key_scan_with_no_sort(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url) as connection:
        await migrate(connection)
        await connection.execute("TRUNCATE feed_entries")
        # 200 users with 500 entries each: enough rows that a sequential scan would lose.
        await connection.execute(
            "INSERT INTO feed_entries (user_id, post_id, author_id) "
            "SELECT 'plan-' || u, p, 'author-' || (p % 7) FROM generate_series(1, 200) u, generate_series(1, 500) p"
        )
        await connection.execute("ANALYZE feed_entries")
        cursor = await connection.execute(
            f"EXPLAIN (ANALYZE, FORMAT JSON) {FEED_PAGE}",  # a constant query
            ("plan-42", 400, 0, 20),
        )
        row = await cursor.fetchone()
        assert row is not None
        [explained] = row[0] if isinstance(row[0], list) else json.loads(row[0])
        plan = nodes(explained["Plan"])
        kinds = [node["Node Type"] for node in plan]
        assert "Sort" not in kinds
        # One partition, the user's: the planner prunes the other fifteen.
        scans = [node for node in plan if node["Node Type"] in {"Index Scan", "Index Only Scan"}]
        assert len(scans) == 1
        assert scans[0]["Scan Direction"] == "Backward"
        assert re.fullmatch(r"feed_entries_\d\d_pkey", scans[0]["Index Name"])
        assert explained["Plan"]["Actual Rows"] == 20
        await connection.rollback()


async def test_batch_lookups_are_planned_with_their_arguments_at_every_call(migrated_database: str) -> None:
    # A plan kept from the table's first rows would stay a sequential scan as the table grows, and
    # a generic one compares each row with every element of the array: 1.3 s for 300 events in
    # 200,000 rows. psycopg prepares a statement on its sixth call; these must never be prepared.
    pool = connection_pool(migrated_database, min_size=1, max_size=1)
    await pool.open(wait=True, timeout=10)
    try:
        posts, feeds, outbox = PostgresPostStore(pool), PostgresFeedUnitOfWork(pool), PostgresOutbox(pool)
        for _ in range(8):
            async with feeds.begin() as transaction:
                await transaction.ledger.applied("plans", ["e-1", "e-2"])
                await transaction.feeds.add_to_audiences([(PostId(1), UserId("plan-author"))], limit=10)
                await transaction.feeds.remove_post(PostId(1))
                await transaction.commit()  # a rollback deallocates the connection's prepared statements
            await posts.get_many([PostId(1), PostId(2)])
            await posts.authors_of([PostId(1), PostId(2)])
            await outbox.relay(published, limit=10)
        async with pool.connection() as connection:
            cursor = await connection.execute("SELECT statement FROM pg_prepared_statements")
            prepared = [row[0] for row in await cursor.fetchall()]
        assert not [statement for statement in prepared if "ANY(" in statement or "feed_entries" in statement], prepared
        # One post read, one author's timeline: prepared, as a request's planning would cost more
        # than a generic plan risks for a single key.
        for _ in range(8):
            await posts.get_many([PostId(1)])
            await posts.latest([UserId("plan-author")], before=None, floor=PostId(0), limit=20)
        async with pool.connection() as connection:
            cursor = await connection.execute(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%%FROM posts WHERE%%'"
            )
            assert await cursor.fetchone() == (2,)
    finally:
        await pool.close()


async def published(events: Sequence[Event]) -> None:
    del events


async def test_feeds_move_into_their_partitions_with_every_entry(database_url: str) -> None:
    # A database at the schema before the partitions, with entries, migrated: every entry is kept,
    # each in the partition of its user.
    before = [(version, name, sql) for version, name, sql in available() if version < PARTITIONED]
    async with await psycopg.AsyncConnection.connect(database_url) as admin:
        await admin.set_autocommit(True)
        await admin.execute("DROP SCHEMA IF EXISTS migrated CASCADE")
        await admin.execute("CREATE SCHEMA migrated")
    try:
        async with await psycopg.AsyncConnection.connect(database_url, options="-c search_path=migrated") as connection:
            await connection.set_autocommit(True)
            await connection.execute(
                "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for version, name, sql in before:
                await connection.execute(sql.encode())
                await connection.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name)
                )
            await connection.execute(
                "INSERT INTO feed_entries SELECT 'user-' || u, p, 'author' FROM generate_series(1, 50) u, "
                "generate_series(1, 20) p"
            )
            later = [name for version, name, _ in available() if version >= PARTITIONED]
            assert later[0] == "0004_feeds_partitioned_by_user.sql"
            assert await migrate(connection) == later
            cursor = await connection.execute(
                "SELECT count(*), count(DISTINCT tableoid), count(DISTINCT (tableoid, user_id)) FROM feed_entries"
            )
            entries, partitions, placed = await cursor.fetchone() or (0, 0, 0)
            assert entries == 1_000
            assert partitions > 1
            assert placed == 50  # each user's entries in one partition
    finally:
        async with await psycopg.AsyncConnection.connect(database_url) as admin:
            await admin.set_autocommit(True)
            await admin.execute("DROP SCHEMA migrated CASCADE")

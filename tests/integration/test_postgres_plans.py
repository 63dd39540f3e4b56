"""The plans PostgreSQL picks for the hot reads: what EXPLAIN (ANALYZE) shows, not how fast it runs."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from adapters.postgres import migrate
from adapters.postgres.feeds import FEED_PAGE


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
        scans = [node for node in plan if node["Node Type"] in {"Index Scan", "Index Only Scan"}]
        assert [(scan["Index Name"], scan["Scan Direction"]) for scan in scans] == [("feed_entries_pkey", "Backward")]
        assert explained["Plan"]["Actual Rows"] == 20
        await connection.rollback()

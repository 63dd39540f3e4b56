"""Forward-only schema migrations: numbered SQL files shipped in this package.

Pending files run in one transaction, all or none, and are recorded in ``schema_migrations``. A transaction-level
advisory lock makes concurrent runners (several processes starting at once) take turns; the second
finds the work done.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Final

from psycopg import AsyncConnection

_LOCK_KEY: Final = 0x6665_6564_636F_7265 & 0x7FFF_FFFF_FFFF_FFFF  # "feedcore"
_NAME: Final = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def available() -> list[tuple[int, str, str]]:
    """Every migration shipped: (version, file name, SQL), in order."""
    found = []
    for entry in resources.files("feedcore.adapters.postgres").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text()))
    return sorted(found)


async def migrate(connection: AsyncConnection[object]) -> list[str]:
    """Apply the migrations this database lacks; returns the names of those applied now."""
    applied: list[str] = []
    await connection.set_autocommit(False)
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cursor = await connection.execute("SELECT version FROM schema_migrations")
        done = {row[0] for row in await cursor.fetchall()}  # type: ignore[index]
        for version, name, sql in available():
            if version in done:
                continue
            await connection.execute(sql.encode())
            await connection.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name))
            applied.append(name)
    return applied

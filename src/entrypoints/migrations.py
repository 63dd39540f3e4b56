"""Applying the PostgreSQL schema: `feedcore migrate`, or at start with FEEDCORE_MIGRATE_ON_START."""

from __future__ import annotations

import psycopg

from feedcore.adapters.postgres import migrate
from feedcore.entrypoints.settings import ConfigurationError, Settings


async def migrate_database(settings: Settings) -> list[str]:
    """Apply pending migrations to FEEDCORE_DATABASE_URL; returns the names applied now."""
    if not settings.database_url:
        raise ConfigurationError("FEEDCORE_DATABASE_URL is not set: there is no database to migrate")
    async with await psycopg.AsyncConnection.connect(settings.database_url) as connection:
        return await migrate(connection)

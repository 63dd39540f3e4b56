"""PostgreSQL adapters (psycopg 3, async, on a psycopg_pool connection pool)."""

from feedcore.adapters.postgres.feeds import (
    PostgresFeedStore,
    PostgresFeedUnitOfWork,
    PostgresHealth,
    PostgresIdempotencyLedger,
)
from feedcore.adapters.postgres.graph import PostgresSocialGraph
from feedcore.adapters.postgres.lease import LeasedIdGenerator, NodeLease, NodeLeaseUnavailable
from feedcore.adapters.postgres.migrations import migrate
from feedcore.adapters.postgres.outbox import OutboxBell, PostgresOutbox
from feedcore.adapters.postgres.pool import connection_pool
from feedcore.adapters.postgres.posts import PostgresPostStore
from feedcore.adapters.postgres.retention import PostgresRetention

__all__ = [
    "LeasedIdGenerator",
    "NodeLease",
    "NodeLeaseUnavailable",
    "OutboxBell",
    "PostgresFeedStore",
    "PostgresFeedUnitOfWork",
    "PostgresHealth",
    "PostgresIdempotencyLedger",
    "PostgresOutbox",
    "PostgresPostStore",
    "PostgresRetention",
    "PostgresSocialGraph",
    "connection_pool",
    "migrate",
]

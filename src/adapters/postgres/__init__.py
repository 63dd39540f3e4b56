"""PostgreSQL adapters (psycopg 3, async, on a psycopg_pool connection pool)."""

from adapters.postgres.feeds import (
    PostgresFeedStore,
    PostgresFeedUnitOfWork,
    PostgresHealth,
    PostgresIdempotencyLedger,
)
from adapters.postgres.graph import PostgresSocialGraph
from adapters.postgres.lease import LeasedIdGenerator, NodeLease, NodeLeaseUnavailable
from adapters.postgres.migrations import migrate
from adapters.postgres.outbox import OutboxBell, PostgresOutbox
from adapters.postgres.pool import connection_pool
from adapters.postgres.posts import PostgresPostStore
from adapters.postgres.retention import PostgresRetention

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

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from feedcore.adapters.postgres.pool import PLANNED_PER_CALL
from feedcore.adapters.postgres.posts import below
from feedcore.model import Post, PostId, UserId

#: One page of a feed, served by the primary key (user_id, post_id) read backwards: no sort step.
FEED_PAGE: Final = (
    "SELECT post_id FROM feed_entries WHERE user_id = %s AND post_id <= %s AND post_id >= %s "
    "ORDER BY post_id DESC LIMIT %s"
)


#: The post's row, locked against deletion until the transaction ends; every statement that writes
#: a post into feeds takes it, and writes nothing when the post is deleted. A deletion then waits for
#: those writes to commit, and sees them when it reads who holds the post; a write that comes after
#: it waits for it, and reads the row as the deletion left it. (A post with no row at all is written:
#: only the store's own tests do that.)
_LOCKED: Final = (
    "locked AS MATERIALIZED (SELECT id, deleted_at IS NOT NULL AS gone FROM posts WHERE id = ANY(%(posts)s) "
    "FOR SHARE), gone AS (SELECT id FROM locked WHERE gone)"
)


#: The clause of an insert whose rows may exist already; see :func:`_insert_new`.
_SKIP_EXISTING: Final = "ON CONFLICT DO NOTHING"

#: Leaves out the followers who mute the author (``f`` being the follows row).
_NOT_MUTED: Final = "NOT EXISTS (SELECT FROM mutes m WHERE m.user_id = f.follower_id AND m.muted_id = f.followee_id)"

# The first chunk of many posts' fan-outs in one statement: each live post into its author's feed
# and those of the author's first followers who do not mute them, in id order; returns each live
# post and its followers.
_ADD_TO_AUDIENCES: Final = f"""
WITH {_LOCKED},
batch AS MATERIALIZED (
    SELECT DISTINCT post_id, author_id FROM unnest(%(posts)s::bigint[], %(authors)s::text[]) AS b (post_id, author_id)
    WHERE post_id NOT IN (SELECT id FROM gone)
),
audience AS MATERIALIZED (
    SELECT b.post_id, b.author_id, f.follower_id FROM batch b CROSS JOIN LATERAL (
        SELECT follower_id FROM follows f WHERE followee_id = b.author_id AND {_NOT_MUTED}
        ORDER BY follower_id LIMIT %(limit)s
    ) f
),
added AS (
    INSERT INTO feed_entries (user_id, post_id, author_id)
    SELECT follower_id, post_id, author_id FROM audience UNION ALL SELECT author_id, post_id, author_id FROM batch
    {{skip_existing}}
)
SELECT b.post_id, a.followers FROM batch b LEFT JOIN (
    SELECT post_id, array_agg(follower_id ORDER BY follower_id) AS followers FROM audience GROUP BY post_id
) a USING (post_id)
"""  # noqa: S608  # constant fragments only


# One chunk of one post's fan-out: the author's followers after ``after`` who do not mute them, and
# with the first chunk the author's own feed; returns whether the post is gone, and the followers
# written.
_ADD_TO_AUDIENCE: Final = f"""
WITH {_LOCKED},
audience AS MATERIALIZED (
    SELECT follower_id FROM follows f
    WHERE followee_id = %(author)s AND follower_id > %(after)s AND {_NOT_MUTED} AND NOT EXISTS (SELECT FROM gone)
    ORDER BY follower_id LIMIT %(limit)s
),
added AS (
    INSERT INTO feed_entries (user_id, post_id, author_id)
    SELECT follower_id, %(post)s, %(author)s FROM audience UNION ALL
    SELECT %(author)s, %(post)s, %(author)s WHERE %(first)s AND NOT EXISTS (SELECT FROM gone)
    {{skip_existing}}
)
SELECT EXISTS (SELECT FROM gone), (SELECT array_agg(follower_id ORDER BY follower_id) FROM audience)
"""  # noqa: S608  # constant fragments only


async def _insert_new(connection: AsyncConnection[Any], statement: str, params: dict[str, Any]) -> list[Any]:
    """The rows of ``statement``, an insert written with ``{skip_existing}`` where ``ON CONFLICT DO
    NOTHING`` would go, run in the transaction under way.

    Nearly always none of its rows exists yet: a post's fan-out meets an entry only when a backfill
    or another processor wrote it first. So it runs first without the clause, in a savepoint:
    PostgreSQL then writes each row once, where the clause costs a look-up before the insert and a
    second WAL record after it (two fifths of a fan-out's time, measured). A row that exists after
    all rolls the savepoint back, and the statement runs again with the clause.
    """
    try:
        async with connection.transaction():
            cursor = await connection.execute(statement.format(skip_existing=""), params, prepare=PLANNED_PER_CALL)
    except psycopg.errors.UniqueViolation:
        cursor = await connection.execute(
            statement.format(skip_existing=_SKIP_EXISTING), params, prepare=PLANNED_PER_CALL
        )
    return await cursor.fetchall() if cursor.description is not None else []


class _FeedQueries:
    """The feed store's statements, on whatever connection the caller holds."""

    @staticmethod
    async def entries(
        connection: AsyncConnection[Any], user: UserId, before: PostId | None, floor: PostId, limit: int
    ) -> list[PostId]:
        cursor = await connection.execute(FEED_PAGE, (user, below(before), floor, limit), prepare=PLANNED_PER_CALL)
        return [row[0] for row in await cursor.fetchall()]

    @staticmethod
    async def horizon(connection: AsyncConnection[Any], user: UserId) -> PostId:
        cursor = await connection.execute("SELECT horizon FROM feed_horizons WHERE user_id = %s", (user,))
        row = await cursor.fetchone()
        return PostId(row[0]) if row is not None else PostId(0)


class PostgresFeedStore:
    """Read access to the materialised feeds, each read on a connection from the pool."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool

    async def entries(self, user: UserId, *, before: PostId | None, floor: PostId, limit: int) -> list[PostId]:
        async with self._pool.connection() as connection:
            return await _FeedQueries.entries(connection, user, before, floor, limit)

    async def horizon(self, user: UserId) -> PostId:
        async with self._pool.connection() as connection:
            return await _FeedQueries.horizon(connection, user)


class _TransactionFeedStore:
    """The feed store inside one processor transaction: set-based statements, no row loops."""

    def __init__(self, connection: AsyncConnection[Any]) -> None:
        self._connection = connection

    async def entries(self, user: UserId, *, before: PostId | None, floor: PostId, limit: int) -> list[PostId]:
        return await _FeedQueries.entries(self._connection, user, before, floor, limit)

    async def horizon(self, user: UserId) -> PostId:
        return await _FeedQueries.horizon(self._connection, user)

    async def add(self, users: Sequence[UserId], post_id: PostId, author_id: UserId) -> None:
        # The users go as a binary array (%b): dumping 10,000 of them as text took four times as long.
        await self._connection.execute(
            f"WITH {_LOCKED} INSERT INTO feed_entries (user_id, post_id, author_id) "  # noqa: S608  # constants
            "SELECT unnest(%(users)b::text[]), %(post)s, %(author)s WHERE NOT EXISTS (SELECT FROM gone) "
            "ON CONFLICT DO NOTHING",
            {"posts": [post_id], "users": list(users), "post": post_id, "author": author_id},
            prepare=PLANNED_PER_CALL,
        )

    async def add_to_audience(
        self, author_id: UserId, post_id: PostId, *, after: UserId | None, limit: int
    ) -> list[UserId] | None:
        # One statement per chunk, the author's own feed riding with the first: the followers
        # never leave the server on their way into the feeds. The audience is materialised, read
        # once, so the rows added are the followers returned.
        rows = await _insert_new(
            self._connection,
            _ADD_TO_AUDIENCE,
            {
                "posts": [post_id],
                "author": author_id,
                "after": after or "",
                "limit": limit,
                "post": post_id,
                "first": after is None,
            },
        )
        gone, audience = rows[0] if rows else (True, None)
        return None if gone else (audience or [])

    async def add_to_audiences(
        self, posts: Sequence[tuple[PostId, UserId]], *, limit: int
    ) -> dict[PostId, list[UserId]]:
        if not posts:
            return {}
        rows = await _insert_new(
            self._connection,
            _ADD_TO_AUDIENCES,
            {"posts": [post for post, _ in posts], "authors": [author for _, author in posts], "limit": limit},
        )
        return {row[0]: row[1] or [] for row in rows}

    async def remove_post(self, post_id: PostId) -> list[UserId]:
        cursor = await self._connection.execute(
            "DELETE FROM feed_entries WHERE post_id = %s RETURNING user_id", (post_id,), prepare=PLANNED_PER_CALL
        )
        return sorted(row[0] for row in await cursor.fetchall())

    async def backfill(self, user: UserId, posts: Sequence[Post], *, horizon: PostId) -> None:
        if posts:
            await self._connection.execute(
                f"WITH {_LOCKED} INSERT INTO feed_entries (user_id, post_id, author_id) "  # noqa: S608  # constants
                "SELECT %(user)s, * FROM unnest(%(posts)s::bigint[], %(authors)s::text[]) AS new (id, author_id) "
                "WHERE new.id NOT IN (SELECT id FROM gone) ON CONFLICT DO NOTHING",
                {"user": user, "posts": [post.id for post in posts], "authors": [post.author_id for post in posts]},
                prepare=PLANNED_PER_CALL,
            )
        if horizon > 0:
            await self._connection.execute(
                "INSERT INTO feed_horizons (user_id, horizon) VALUES (%s, %s) ON CONFLICT (user_id) "
                "DO UPDATE SET horizon = greatest(feed_horizons.horizon, excluded.horizon)",
                (user, horizon),
            )

    async def purge_author(self, user: UserId, author: UserId) -> None:
        await self._connection.execute(
            "DELETE FROM feed_entries WHERE user_id = %s AND author_id = %s", (user, author), prepare=PLANNED_PER_CALL
        )


class _TransactionLedger:
    def __init__(self, connection: AsyncConnection[Any]) -> None:
        self._connection = connection

    async def applied(self, consumer: str, event_ids: Collection[str]) -> set[str]:
        cursor = await self._connection.execute(
            "SELECT event_id FROM processed_events WHERE consumer = %s AND event_id = ANY(%s)",
            (consumer, list(event_ids)),
            prepare=PLANNED_PER_CALL,
        )
        return {row[0] for row in await cursor.fetchall()}

    async def mark(self, consumer: str, event_ids: Collection[str]) -> None:
        await _insert_new(
            self._connection,
            "INSERT INTO processed_events (consumer, event_id) SELECT %(consumer)s, unnest(%(events)s::text[]) "
            "{skip_existing}",
            {"consumer": consumer, "events": list(event_ids)},
        )


class _PostgresFeedTransaction:
    def __init__(self, connection: AsyncConnection[Any]) -> None:
        self._connection = connection
        self._feeds = _TransactionFeedStore(connection)
        self._ledger = _TransactionLedger(connection)
        self.committed = False

    @property
    def feeds(self) -> _TransactionFeedStore:
        return self._feeds

    @property
    def ledger(self) -> _TransactionLedger:
        return self._ledger

    async def commit(self) -> None:
        await self._connection.commit()
        self.committed = True


class PostgresFeedUnitOfWork:
    """One connection, one transaction: an event's feed effects and its ledger mark, or nothing."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[_PostgresFeedTransaction]:
        async with self._pool.connection() as connection:
            await connection.execute("BEGIN")  # the pool's connections autocommit; this one must not
            transaction = _PostgresFeedTransaction(connection)
            try:
                yield transaction
            finally:
                if not transaction.committed:
                    await connection.rollback()


class PostgresIdempotencyLedger:
    """The ledger outside a transaction, for inspection; the processor writes it through the unit of work."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool

    async def applied(self, consumer: str, event_ids: Collection[str]) -> set[str]:
        async with self._pool.connection() as connection:
            return await _TransactionLedger(connection).applied(consumer, event_ids)

    async def mark(self, consumer: str, event_ids: Collection[str]) -> None:
        async with self._pool.connection() as connection:
            await _TransactionLedger(connection).mark(consumer, event_ids)


class PostgresHealth:
    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool

    async def ready(self) -> bool:
        try:
            async with self._pool.connection(timeout=2) as connection:
                await connection.execute("SELECT 1")
        except (psycopg.Error, PoolTimeout):
            return False
        return True

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import timedelta
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from feedcore.events import Event, PostDeleted, PostPublished, encode_event
from feedcore.model import Post, PostId, UserId
from feedcore.ports import IdempotencyRecord

_POST_COLUMNS: Final = "id, author_id, content, created_at, fan_out"


def post_of(row: Sequence[Any]) -> Post:
    return Post(id=row[0], author_id=row[1], content=row[2], created_at=row[3], fan_out=row[4])


async def append_to_outbox(connection: AsyncConnection[Any], event: Event) -> None:
    await connection.execute("INSERT INTO outbox (key, payload) VALUES (%s, %s)", (event.key, encode_event(event)))


async def add_to_counts(connection: AsyncConnection[Any], rows: Sequence[tuple[UserId, int, int, int]]) -> None:
    """Add (followers, following, posts) deltas to users' counts.

    One statement, rows in user-id order: concurrent transactions lock count rows in the same
    order, so they queue instead of deadlocking.
    """
    ordered = sorted(rows)
    await connection.execute(
        "INSERT INTO user_counts (user_id, followers, following, posts) "
        "SELECT * FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::bigint[]) "
        "ON CONFLICT (user_id) DO UPDATE SET followers = user_counts.followers + excluded.followers, "
        "following = user_counts.following + excluded.following, posts = user_counts.posts + excluded.posts",
        [list(column) for column in zip(*ordered, strict=True)],
    )


class PostgresPostStore:
    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool

    async def publish(self, post: Post, event: PostPublished, *, idempotency_key: str | None = None) -> None:
        async with self._pool.connection() as connection, connection.transaction():
            await connection.execute(
                f"INSERT INTO posts ({_POST_COLUMNS}) VALUES (%s, %s, %s, %s, %s)",  # noqa: S608  # constant columns
                (post.id, post.author_id, post.content, post.created_at, post.fan_out),
            )
            await append_to_outbox(connection, event)
            await add_to_counts(connection, [(post.author_id, 0, 0, 1)])
            if idempotency_key is not None:
                completed = await connection.execute(
                    "UPDATE idempotency_keys SET post_id = %s WHERE user_id = %s AND key = %s AND post_id IS NULL",
                    (post.id, post.author_id, idempotency_key),
                )
                if completed.rowcount != 1:
                    # The claim expired and was taken over: this request no longer owns the key.
                    raise RuntimeError(f"idempotency key {idempotency_key!r} is no longer claimed by this request")

    async def delete(self, post_id: PostId, event: PostDeleted) -> bool:
        async with self._pool.connection() as connection, connection.transaction():
            cursor = await connection.execute(
                "UPDATE posts SET deleted_at = now() WHERE id = %s AND deleted_at IS NULL RETURNING author_id",
                (post_id,),
            )
            row = await cursor.fetchone()
            if row is None:
                return False
            await append_to_outbox(connection, event)
            await add_to_counts(connection, [(row[0], 0, 0, -1)])
            return True

    async def get_many(self, post_ids: Collection[PostId]) -> dict[PostId, Post]:
        if not post_ids:
            return {}
        async with self._pool.connection() as connection:
            cursor = await connection.execute(
                f"SELECT {_POST_COLUMNS} FROM posts WHERE id = ANY(%s) AND deleted_at IS NULL",  # noqa: S608
                (list(post_ids),),
            )
            return {row[0]: post_of(row) for row in await cursor.fetchall()}

    async def latest(
        self,
        authors: Collection[UserId],
        *,
        before: PostId | None,
        floor: PostId,
        limit: int,
        unfanned_only: bool = False,
    ) -> list[Post]:
        if not authors:
            return []
        unfanned = " AND NOT fan_out" if unfanned_only else ""
        async with self._pool.connection() as connection:
            cursor = await connection.execute(
                f"SELECT {_POST_COLUMNS} FROM posts "  # noqa: S608  # constant fragments only
                f"WHERE author_id = ANY(%s) AND deleted_at IS NULL AND id <= %s AND id >= %s{unfanned} "
                "ORDER BY id DESC LIMIT %s",
                (list(authors), below(before), floor, limit),
            )
            return [post_of(row) for row in await cursor.fetchall()]

    async def count_by(self, author: UserId) -> int:
        async with self._pool.connection() as connection:
            cursor = await connection.execute("SELECT posts FROM user_counts WHERE user_id = %s", (author,))
            row = await cursor.fetchone()
            return int(row[0]) if row is not None else 0

    async def unfanned_authors(self) -> frozenset[UserId]:
        async with self._pool.connection() as connection:
            cursor = await connection.execute(
                "SELECT DISTINCT author_id FROM posts WHERE deleted_at IS NULL AND NOT fan_out"
            )
            return frozenset(row[0] for row in await cursor.fetchall())


def below(before: PostId | None) -> int:
    """The largest id strictly below ``before``: keyset reads compare with ``<=`` on bigints."""
    return (1 << 63) - 1 if before is None else before - 1


class PostgresIdempotencyKeys:
    """Idempotency-Key claims and their posts, kept ``ttl``; an in-flight claim older than
    ``abandoned_after`` belongs to a request that died and may be taken over."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        *,
        ttl: timedelta = timedelta(hours=24),
        abandoned_after: timedelta = timedelta(seconds=30),
    ) -> None:
        self._pool = pool
        self._ttl = ttl
        self._abandoned_after = abandoned_after

    async def reserve(self, user: UserId, key: str, fingerprint: str) -> IdempotencyRecord | None:
        async with self._pool.connection() as connection, connection.transaction():
            claimed = await connection.execute(
                "INSERT INTO idempotency_keys (user_id, key, fingerprint) VALUES (%s, %s, %s) "
                "ON CONFLICT (user_id, key) DO UPDATE SET fingerprint = excluded.fingerprint, created_at = now(), "
                "post_id = NULL WHERE idempotency_keys.created_at < now() - %s "
                "OR (idempotency_keys.post_id IS NULL AND idempotency_keys.created_at < now() - %s) "
                "RETURNING 1",
                (user, key, fingerprint, self._ttl, self._abandoned_after),
            )
            if await claimed.fetchone() is not None:
                return None
            cursor = await connection.execute(
                f"SELECT k.fingerprint, {', '.join('p.' + c for c in _POST_COLUMNS.split(', '))} "  # noqa: S608
                "FROM idempotency_keys k LEFT JOIN posts p ON p.id = k.post_id WHERE k.user_id = %s AND k.key = %s",
                (user, key),
            )
            row = await cursor.fetchone()
            if row is None:  # removed between the two statements: claim it again next time
                return IdempotencyRecord(fingerprint=fingerprint)
            return IdempotencyRecord(fingerprint=row[0], post=post_of(row[1:]) if row[1] is not None else None)

    async def release(self, user: UserId, key: str) -> None:
        async with self._pool.connection() as connection:
            await connection.execute(
                "DELETE FROM idempotency_keys WHERE user_id = %s AND key = %s AND post_id IS NULL", (user, key)
            )

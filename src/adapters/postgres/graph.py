from __future__ import annotations

from collections.abc import Collection
from typing import Any

from psycopg_pool import AsyncConnectionPool

from feedcore.adapters.postgres.outbox import OutboxBell
from feedcore.adapters.postgres.posts import add_to_counts, append_to_outbox
from feedcore.events import UserFollowed, UserUnfollowed
from feedcore.model import UserId
from feedcore.ports import FollowCounts


class PostgresSocialGraph:
    """Follow edges, with counts changed in the edge's own transaction, so they stay exact."""

    def __init__(self, pool: AsyncConnectionPool[Any], *, bell: OutboxBell | None = None) -> None:
        self._pool = pool
        self._bell = bell or OutboxBell()

    async def follow(self, follower: UserId, followee: UserId, event: UserFollowed) -> bool:
        async with self._pool.connection() as connection, connection.transaction():
            inserted = await connection.execute(
                "INSERT INTO follows (follower_id, followee_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (follower, followee),
            )
            if inserted.rowcount == 0:
                return False
            await add_to_counts(connection, [(follower, 0, 1, 0), (followee, 1, 0, 0)])
            await append_to_outbox(connection, event)
        self._bell.ring()
        return True

    async def unfollow(self, follower: UserId, followee: UserId, event: UserUnfollowed) -> bool:
        async with self._pool.connection() as connection, connection.transaction():
            deleted = await connection.execute(
                "DELETE FROM follows WHERE follower_id = %s AND followee_id = %s", (follower, followee)
            )
            if deleted.rowcount == 0:
                return False
            await add_to_counts(connection, [(follower, 0, -1, 0), (followee, -1, 0, 0)])
            await append_to_outbox(connection, event)
        self._bell.ring()
        return True

    async def is_following(self, follower: UserId, followee: UserId) -> bool:
        async with self._pool.connection() as connection:
            cursor = await connection.execute(
                "SELECT 1 FROM follows WHERE follower_id = %s AND followee_id = %s", (follower, followee)
            )
            return await cursor.fetchone() is not None

    async def followed_among(self, follower: UserId, candidates: Collection[UserId]) -> set[UserId]:
        if not candidates:
            return set()
        async with self._pool.connection() as connection:
            cursor = await connection.execute(
                "SELECT followee_id FROM follows WHERE follower_id = %s AND followee_id = ANY(%s)",
                (follower, list(candidates)),
            )
            return {row[0] for row in await cursor.fetchall()}

    async def followers(self, user: UserId, *, after: UserId | None, limit: int) -> list[UserId]:
        async with self._pool.connection() as connection:
            cursor = await connection.execute(
                "SELECT follower_id FROM follows WHERE followee_id = %s AND follower_id > %s "
                "ORDER BY follower_id LIMIT %s",
                (user, after or "", limit),
            )
            return [row[0] for row in await cursor.fetchall()]

    async def following(self, user: UserId, *, after: UserId | None, limit: int) -> list[UserId]:
        async with self._pool.connection() as connection:
            cursor = await connection.execute(
                "SELECT followee_id FROM follows WHERE follower_id = %s AND followee_id > %s "
                "ORDER BY followee_id LIMIT %s",
                (user, after or "", limit),
            )
            return [row[0] for row in await cursor.fetchall()]

    async def counts(self, user: UserId) -> FollowCounts:
        async with self._pool.connection() as connection:
            cursor = await connection.execute(
                "SELECT followers, following FROM user_counts WHERE user_id = %s", (user,)
            )
            row = await cursor.fetchone()
            return FollowCounts(followers=row[0], following=row[1]) if row else FollowCounts(followers=0, following=0)

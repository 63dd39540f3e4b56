from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from feedcore.adapters.postgres.outbox import OutboxBell
from feedcore.adapters.postgres.posts import add_to_counts, append_to_outbox
from feedcore.errors import FollowBlocked
from feedcore.events import Event, UserFollowed, UserMuted, UserUnfollowed, UserUnmuted
from feedcore.model import UserId
from feedcore.ports import FollowCounts

#: Leaves out the follows whose follower mutes the followee (``f`` being the follows row).
_NOT_MUTED: Final = "NOT EXISTS (SELECT FROM mutes m WHERE m.user_id = f.follower_id AND m.muted_id = f.followee_id)"


async def _lock_pair(connection: AsyncConnection[Any], one: UserId, other: UserId) -> None:
    """Take the lock of the pair of users until the transaction ends: a follow and a block of the
    same two users take it before reading anything, so each sees what the other committed (a block
    never misses a follow that slipped in beside it). User ids hold no space, so the key names the
    pair alone."""
    first, second = sorted((one, other))
    await connection.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"pair {first} {second}",))


class PostgresSocialGraph:
    """Follow edges, with counts changed in the edge's own transaction, so they stay exact; mutes
    and blocks."""

    def __init__(self, pool: AsyncConnectionPool[Any], *, bell: OutboxBell | None = None) -> None:
        self._pool = pool
        self._bell = bell or OutboxBell()

    async def follow(self, follower: UserId, followee: UserId, event: UserFollowed) -> bool:
        async with self._pool.connection() as connection, connection.transaction():
            await _lock_pair(connection, follower, followee)
            cursor = await connection.execute(
                "WITH blocked AS (SELECT EXISTS (SELECT FROM blocks WHERE blocker_id = %(follower)s AND "
                "blocked_id = %(followee)s OR blocker_id = %(followee)s AND blocked_id = %(follower)s) AS yes), "
                "inserted AS (INSERT INTO follows (follower_id, followee_id) SELECT %(follower)s, %(followee)s "
                "WHERE NOT (SELECT yes FROM blocked) ON CONFLICT DO NOTHING RETURNING 1) "
                "SELECT (SELECT yes FROM blocked), EXISTS (SELECT FROM inserted)",
                {"follower": follower, "followee": followee},
            )
            blocked, inserted = await cursor.fetchone() or (False, False)
            if blocked:
                raise FollowBlocked("a block stands between these users")
            if not inserted:
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

    async def mute(self, user: UserId, author: UserId, event: UserMuted) -> bool:
        return await self._change(
            "INSERT INTO mutes (user_id, muted_id) VALUES (%s, %s) ON CONFLICT DO NOTHING", user, author, event
        )

    async def unmute(self, user: UserId, author: UserId, event: UserUnmuted) -> bool:
        return await self._change("DELETE FROM mutes WHERE user_id = %s AND muted_id = %s", user, author, event)

    async def block(
        self, blocker: UserId, blocked: UserId, unfollows: Sequence[UserUnfollowed]
    ) -> list[UserUnfollowed]:
        async with self._pool.connection() as connection, connection.transaction():
            await _lock_pair(connection, blocker, blocked)
            await connection.execute(
                "INSERT INTO blocks (blocker_id, blocked_id) VALUES (%s, %s) ON CONFLICT DO NOTHING", (blocker, blocked)
            )
            cursor = await connection.execute(
                "DELETE FROM follows WHERE follower_id = %(a)s AND followee_id = %(b)s "
                "OR follower_id = %(b)s AND followee_id = %(a)s RETURNING follower_id, followee_id",
                {"a": blocker, "b": blocked},
            )
            edges = {(row[0], row[1]) for row in await cursor.fetchall()}
            removed = [event for event in unfollows if (event.follower_id, event.followee_id) in edges]
            if not removed:
                return []
            # One row per user: an upsert may not touch a row twice.
            deltas: dict[UserId, tuple[int, int]] = {}
            for event in removed:
                followers, following = deltas.get(UserId(event.follower_id), (0, 0))
                deltas[UserId(event.follower_id)] = (followers, following - 1)
                followers, following = deltas.get(UserId(event.followee_id), (0, 0))
                deltas[UserId(event.followee_id)] = (followers - 1, following)
            await add_to_counts(connection, [(user, *delta, 0) for user, delta in deltas.items()])
            for event in removed:
                await append_to_outbox(connection, event)
        self._bell.ring()
        return removed

    async def unblock(self, blocker: UserId, blocked: UserId) -> bool:
        async with self._pool.connection() as connection:
            deleted = await connection.execute(
                "DELETE FROM blocks WHERE blocker_id = %s AND blocked_id = %s", (blocker, blocked)
            )
            return bool(deleted.rowcount > 0)

    async def _change(self, statement: str, user: UserId, author: UserId, event: Event) -> bool:
        """Run ``statement`` on (user, author) and, when it changed a row, append ``event`` in its transaction."""
        async with self._pool.connection() as connection, connection.transaction():
            changed = await connection.execute(statement, (user, author))
            if changed.rowcount == 0:
                return False
            await append_to_outbox(connection, event)
        self._bell.ring()
        return True

    async def is_following(self, follower: UserId, followee: UserId) -> bool:
        async with self._pool.connection() as connection:
            cursor = await connection.execute(
                "SELECT 1 FROM follows WHERE follower_id = %s AND followee_id = %s", (follower, followee)
            )
            return await cursor.fetchone() is not None

    async def seen_among(self, user: UserId, candidates: Collection[UserId]) -> set[UserId]:
        if not candidates:
            return set()
        async with self._pool.connection() as connection:
            cursor = await connection.execute(
                f"SELECT followee_id FROM follows f WHERE follower_id = %s AND followee_id = ANY(%s) AND {_NOT_MUTED}",  # noqa: S608  # a constant
                (user, list(candidates)),
            )
            return {row[0] for row in await cursor.fetchall()}

    async def seen(self, user: UserId, *, after: UserId | None, limit: int) -> list[UserId]:
        async with self._pool.connection() as connection:
            cursor = await connection.execute(
                f"SELECT followee_id FROM follows f WHERE follower_id = %s AND followee_id > %s AND {_NOT_MUTED} "  # noqa: S608  # a constant
                "ORDER BY followee_id LIMIT %s",
                (user, after or "", limit),
            )
            return [row[0] for row in await cursor.fetchall()]

    async def audience(self, author: UserId, *, after: UserId | None, limit: int) -> list[UserId]:
        async with self._pool.connection() as connection:
            cursor = await connection.execute(
                f"SELECT follower_id FROM follows f WHERE followee_id = %s AND follower_id > %s AND {_NOT_MUTED} "  # noqa: S608  # a constant
                "ORDER BY follower_id LIMIT %s",
                (author, after or "", limit),
            )
            return [row[0] for row in await cursor.fetchall()]

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

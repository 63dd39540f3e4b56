from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Collection, Sequence
from datetime import timedelta
from typing import Any, Final

import msgspec
import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from feedcore.adapters.postgres.batches import Coalescer
from feedcore.adapters.postgres.outbox import OutboxBell
from feedcore.adapters.postgres.pool import PLANNED_PER_CALL, planned_for
from feedcore.events import Event, PostDeleted, PostPublished, encode_event
from feedcore.model import Post, PostId, UserId
from feedcore.ports import IdempotencyClaim, IdempotencyRecord

_POST_COLUMNS: Final = "id, author_id, content, created_at, fan_out"


def post_of(row: Sequence[Any]) -> Post:
    return Post(id=row[0], author_id=row[1], content=row[2], created_at=row[3], fan_out=row[4])


async def append_to_outbox(connection: AsyncConnection[Any], event: Event) -> None:
    """Add ``event`` to the outbox in the transaction under way; ring the outbox's bell after it commits."""
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


# The writes of a new post: the post, its outbox row and the author's post count, for each row of
# ``claim``; a CTE list for one statement, so one round trip and one commit.
_WRITES: Final = """
post AS (
    INSERT INTO posts (id, author_id, content, created_at, fan_out)
    SELECT %(id)s, %(author)s, %(content)s, %(created_at)s, CASE WHEN %(up_to)s::bigint IS NULL THEN %(fan_out)s
        ELSE coalesce((SELECT followers FROM user_counts WHERE user_id = %(author)s), 0) <= %(up_to)s END
    FROM claim
    RETURNING fan_out
),
outbox AS (INSERT INTO outbox (key, payload) SELECT %(author)s, %(payload)s FROM post),
counts AS (
    INSERT INTO user_counts (user_id, posts) SELECT %(author)s, 1 FROM post
    ON CONFLICT (user_id) DO UPDATE SET posts = user_counts.posts + 1
)"""
_PUBLISH: Final = f"WITH claim AS (SELECT), {_WRITES} SELECT fan_out FROM post"  # noqa: S608  # constants
# With an Idempotency-Key, the statement first takes a transaction-level advisory lock on
# (author, key) without waiting: a repeat that overlaps the first request finds it held, stores
# nothing and gets no row. A key recorded and still live stores nothing either (null); an expired
# one is taken over.
_PUBLISH_CLAIMED: Final = f"""
WITH lock AS (SELECT pg_try_advisory_xact_lock(hashtextextended(%(author)s || ' ' || %(key)s, 0)) AS held),
claim AS (
    INSERT INTO idempotency_keys (user_id, key, fingerprint, post_id)
    SELECT %(author)s, %(key)s, %(fingerprint)s, %(id)s FROM lock WHERE held
    ON CONFLICT (user_id, key) DO UPDATE
    SET fingerprint = excluded.fingerprint, post_id = excluded.post_id, created_at = now()
    WHERE idempotency_keys.created_at < now() - %(ttl)s
    RETURNING 1
),
{_WRITES}
SELECT (SELECT fan_out FROM post) FROM lock WHERE held
"""  # noqa: S608  # constant fragments only
# The same for many posts at once, with and without keys: one row per post, saying whether its
# key's lock was free (always, without a key) and, if the post was stored, whether it fans out. A
# key still recorded stores nothing for its post. Several posts of one author add to the count in
# one row, and count rows are locked in author order, so that concurrent batches queue, not deadlock.
# (It would serve one post too, but a lone post, the common case under light load, costs more with
# it: about 100 us of client CPU for nine one-element arrays, and 130-300 us more in the backend with
# scalar input, measured; hence the two statements above.)
_PUBLISH_MANY: Final = """
WITH input AS MATERIALIZED (
    SELECT * FROM unnest(
        %(ids)b::bigint[], %(authors)b::text[], %(contents)b::text[], %(created)b::timestamptz[],
        %(fan_outs)b::boolean[], %(up_tos)b::bigint[], %(payloads)b::bytea[], %(keys)b::text[], %(fingerprints)b::text[]
    ) AS i (id, author, content, created_at, fan_out, up_to, payload, key, fingerprint)
),
lock AS MATERIALIZED (
    SELECT id, key IS NULL OR pg_try_advisory_xact_lock(hashtextextended(author || ' ' || key, 0)) AS held FROM input
),
claim AS (
    INSERT INTO idempotency_keys (user_id, key, fingerprint, post_id)
    SELECT i.author, i.key, i.fingerprint, i.id FROM input i JOIN lock l USING (id) WHERE l.held AND i.key IS NOT NULL
    ON CONFLICT (user_id, key) DO UPDATE
    SET fingerprint = excluded.fingerprint, post_id = excluded.post_id, created_at = now()
    WHERE idempotency_keys.created_at < now() - %(ttl)s
    RETURNING post_id
),
go AS MATERIALIZED (
    SELECT i.* FROM input i JOIN lock l USING (id)
    WHERE l.held AND (i.key IS NULL OR i.id IN (SELECT post_id FROM claim))
),
post AS (
    INSERT INTO posts (id, author_id, content, created_at, fan_out)
    SELECT g.id, g.author, g.content, g.created_at,
        CASE WHEN g.up_to IS NULL THEN g.fan_out ELSE coalesce(c.followers, 0) <= g.up_to END
    FROM go g LEFT JOIN user_counts c ON c.user_id = g.author
    RETURNING id, fan_out
),
outbox AS (INSERT INTO outbox (key, payload) SELECT author, payload FROM go ORDER BY id),
counts AS (
    INSERT INTO user_counts (user_id, posts) SELECT author, count(*) FROM go GROUP BY author ORDER BY author
    ON CONFLICT (user_id) DO UPDATE SET posts = user_counts.posts + excluded.posts
)
SELECT l.id, l.held, p.fan_out FROM lock l LEFT JOIN post p USING (id)
"""


#: The statement's input arrays, in the order of :meth:`_Publication.columns`.
_MANY_COLUMNS: Final = [
    "ids",
    "authors",
    "contents",
    "created",
    "fan_outs",
    "up_tos",
    "payloads",
    "keys",
    "fingerprints",
]


class _Publication(msgspec.Struct, frozen=True):
    """One publish request, waiting to be written with the others that came with it."""

    post: Post
    payload: bytes
    claim: IdempotencyClaim | None
    up_to: int | None

    def columns(self) -> tuple[Any, ...]:
        post, claim = self.post, self.claim
        return (
            post.id,
            post.author_id,
            post.content,
            post.created_at,
            post.fan_out,
            self.up_to,
            self.payload,
            claim.key if claim else None,
            claim.fingerprint if claim else None,
        )

    def key(self) -> tuple[str, str] | None:
        """Two requests with one Idempotency-Key are never written together: they are taken in turn."""
        return (self.post.author_id, self.claim.key) if self.claim else None


def _columns(batch: Sequence[_Publication]) -> dict[str, list[Any]]:
    rows = [item.columns() for item in batch]
    return {name: [row[index] for row in rows] for index, name in enumerate(_MANY_COLUMNS)}


class PostgresPostStore:
    """Posts, their outbox rows and Idempotency-Keys; a key is kept ``key_ttl``.

    The celebrities (authors with unfanned posts), asked on every home-feed read, are remembered for
    ``celebrities_ttl`` seconds, then asked of the database again by one query in the background
    while reads go on with the copy (a query per read would make every read of that moment queue
    for the pool). This store's own publishes add to the copy at once; after its deletes, reads
    wait for one fresh answer. So only other processes' publishes and deletes show late, by a little
    over ``celebrities_ttl``.
    """

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        *,
        key_ttl: timedelta = timedelta(hours=24),
        celebrities_ttl: float = 1.0,
        bell: OutboxBell | None = None,
    ) -> None:
        self._pool = pool
        self._bell = bell or OutboxBell()  # rung with no relay listening: costs nothing
        self._key_ttl = key_ttl
        self._celebrities_ttl = celebrities_ttl
        self._celebrities: frozenset[UserId] | None = None
        self._celebrities_expire = 0.0
        self._asking: asyncio.Task[frozenset[UserId]] | None = None
        self._asks = 0
        self._published_while_asking: set[UserId] = set()
        # Concurrent publishes share statements and commits, one statement at a time: the publishes
        # that arrive while it runs are the next batch. (bench.write, 2 workers, c32: 66-71 % of the
        # ceiling with one writer, 64-66 % with two, 60 % with five.)
        self._publications: Coalescer[_Publication, Post | IdempotencyRecord] = Coalescer(
            self._publish_many, concurrency=1, max_batch=64, apart=_Publication.key
        )

    async def publish(
        self,
        post: Post,
        event: PostPublished,
        *,
        claim: IdempotencyClaim | None = None,
        fan_out_up_to: int | None = None,
    ) -> Post | IdempotencyRecord:
        return await self._publications.submit(
            _Publication(post=post, payload=encode_event(event), claim=claim, up_to=fan_out_up_to)
        )

    async def _publish_many(self, batch: Sequence[_Publication]) -> list[Post | IdempotencyRecord | Exception]:
        """Write a batch in one statement. A post whose key was recorded already, and every post
        of a batch the database refused (for one bad row, say), is then written as a request of its
        own: each gets its own answer or error."""
        if len(batch) == 1:
            return [await self._publish_one(batch[0])]
        try:
            async with self._pool.connection() as connection:
                cursor = await connection.execute(
                    _PUBLISH_MANY,
                    _columns(batch) | {"ttl": self._key_ttl},
                )
                rows = {row[0]: (row[1], row[2]) for row in await cursor.fetchall()}
        except psycopg.errors.TransactionRollback:  # a deadlock, say: one at a time then
            rows = {}
        except (psycopg.OperationalError, PoolTimeout):
            raise  # the database is out of reach: every request's answer
        except psycopg.Error:  # refused, for one bad row say: each request on its own
            rows = {}
        outcomes: list[Post | IdempotencyRecord | Exception] = []
        for item in batch:
            held, fan_out = rows.get(item.post.id, (True, None))
            if not held and item.claim is not None:
                outcomes.append(IdempotencyRecord(fingerprint=item.claim.fingerprint))  # its request is in flight
            elif fan_out is not None:
                outcomes.append(self._published(item.post, fan_out=fan_out))
            else:
                try:
                    outcomes.append(await self._publish_one(item))
                except Exception as error:  # noqa: BLE001  # this request's own error
                    outcomes.append(error)
        return outcomes

    async def _publish_one(self, item: _Publication) -> Post | IdempotencyRecord:
        post, claim = item.post, item.claim
        values = {
            "id": post.id,
            "author": post.author_id,
            "content": post.content,
            "created_at": post.created_at,
            "fan_out": post.fan_out,
            "up_to": item.up_to,
            "payload": item.payload,
        }
        async with self._pool.connection() as connection:
            if claim is None:
                cursor = await connection.execute(_PUBLISH, values)
                row = await cursor.fetchone()
                return self._published(post, fan_out=bool(row and row[0]))
            values |= {"key": claim.key, "fingerprint": claim.fingerprint, "ttl": self._key_ttl}
            # A key taken just now by a request that has since committed is read on a fresh snapshot.
            for _ in range(2):
                cursor = await connection.execute(_PUBLISH_CLAIMED, values)
                row = await cursor.fetchone()
                if row is None:
                    return IdempotencyRecord(fingerprint=claim.fingerprint)  # the key's request is in flight
                if row[0] is not None:
                    return self._published(post, fan_out=row[0])
                existing = await _idempotency_record(connection, post.author_id, claim.key)
                if existing is not None:
                    return existing
        raise RuntimeError(f"idempotency key {claim.key!r} was neither free nor recorded")

    def _published(self, post: Post, *, fan_out: bool) -> Post:
        self._bell.ring()
        if not fan_out:
            if self._celebrities is not None:
                self._celebrities |= {post.author_id}
            if self._asking is not None:
                self._published_while_asking.add(post.author_id)
        return post if post.fan_out == fan_out else msgspec.structs.replace(post, fan_out=fan_out)

    async def delete(self, post_id: PostId, event: PostDeleted) -> list[UserId] | None:
        # Whether the author has unfanned posts left is the database's to say, and reads wait for it.
        self._celebrities = None
        self._asking = None
        self._asks += 1
        async with self._pool.connection() as connection, connection.transaction():
            cursor = await connection.execute(
                "UPDATE posts SET deleted_at = now() WHERE id = %s AND deleted_at IS NULL RETURNING author_id",
                (post_id,),
            )
            row = await cursor.fetchone()
            if row is None:
                return None
            await append_to_outbox(connection, event)
            await add_to_counts(connection, [(row[0], 0, 0, -1)])
            # A statement of its own, after the row lock: its snapshot has every feed write that
            # held the post (adapters.postgres.feeds), and none can come after.
            cursor = await connection.execute(
                "SELECT user_id FROM feed_entries WHERE post_id = %s ORDER BY user_id",
                (post_id,),
                prepare=PLANNED_PER_CALL,
            )
            holders = [row[0] for row in await cursor.fetchall()]
        self._bell.ring()
        return holders

    async def authors_of(self, post_ids: Collection[PostId]) -> dict[PostId, UserId]:
        if not post_ids:
            return {}
        async with self._pool.connection() as connection:
            cursor = await connection.execute(
                "SELECT id, author_id FROM posts WHERE id = ANY(%s) AND deleted_at IS NULL",
                (list(post_ids),),
                prepare=planned_for(post_ids),
            )
            return {row[0]: row[1] for row in await cursor.fetchall()}

    async def get_many(self, post_ids: Collection[PostId]) -> dict[PostId, Post]:
        if not post_ids:
            return {}
        async with self._pool.connection() as connection:
            cursor = await connection.execute(
                f"SELECT {_POST_COLUMNS} FROM posts WHERE id = ANY(%s) AND deleted_at IS NULL",  # noqa: S608
                (list(post_ids),),
                prepare=planned_for(post_ids),
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
        # One author by equality: given `= ANY` of one element, PostgreSQL does not read the index
        # in id order, but every post of the author, then sorts them (an author of 1,000 posts:
        # 0.32 ms a page against 0.04 ms, and it grows with the author's posts).
        matches, wanted = ("= %s", next(iter(authors))) if len(authors) == 1 else ("= ANY(%s)", list(authors))
        async with self._pool.connection() as connection:
            cursor = await connection.execute(
                f"SELECT {_POST_COLUMNS} FROM posts "  # noqa: S608  # constant fragments only
                f"WHERE author_id {matches} AND deleted_at IS NULL AND id <= %s AND id >= %s{unfanned} "
                "ORDER BY id DESC LIMIT %s",
                (wanted, below(before), floor, limit),
                prepare=planned_for(authors),
            )
            return [post_of(row) for row in await cursor.fetchall()]

    async def count_by(self, author: UserId) -> int:
        async with self._pool.connection() as connection:
            cursor = await connection.execute("SELECT posts FROM user_counts WHERE user_id = %s", (author,))
            row = await cursor.fetchone()
            return int(row[0]) if row is not None else 0

    async def celebrities(self) -> frozenset[UserId]:
        known = self._celebrities
        if known is not None and time.monotonic() < self._celebrities_expire:
            return known
        if self._asking is None:
            self._asking = self._ask_celebrities()
        if known is not None:
            return known
        return await asyncio.shield(self._asking)

    def _ask_celebrities(self) -> asyncio.Task[frozenset[UserId]]:
        self._asks += 1
        self._published_while_asking = set()
        # A context of its own: the read that happened to start it is not its owner.
        task = asyncio.create_task(self._query_celebrities(self._asks), context=contextvars.Context())
        # Nobody may await it: its failure (the database away) is the next read's to meet.
        task.add_done_callback(lambda done: done.cancelled() or done.exception())
        return task

    async def _query_celebrities(self, ask: int) -> frozenset[UserId]:
        try:
            async with self._pool.connection() as connection:
                cursor = await connection.execute(
                    "SELECT DISTINCT author_id FROM posts WHERE deleted_at IS NULL AND NOT fan_out"
                )
                found = frozenset(row[0] for row in await cursor.fetchall())
            # Publishes of this process's that committed after the query's snapshot are not in it.
            found |= self._published_while_asking
            if ask == self._asks:  # an answer begun before one of this store's deletions is not kept
                self._celebrities = found
                self._celebrities_expire = time.monotonic() + self._celebrities_ttl
            return found
        finally:
            if ask == self._asks:
                self._asking = None


def below(before: PostId | None) -> int:
    """The largest id strictly below ``before``: keyset reads compare with ``<=`` on bigints."""
    return (1 << 63) - 1 if before is None else before - 1


async def _idempotency_record(connection: AsyncConnection[Any], author: UserId, key: str) -> IdempotencyRecord | None:
    cursor = await connection.execute(
        f"SELECT k.fingerprint, {', '.join('p.' + c for c in _POST_COLUMNS.split(', '))} "  # noqa: S608
        "FROM idempotency_keys k JOIN posts p ON p.id = k.post_id WHERE k.user_id = %s AND k.key = %s",
        (author, key),
    )
    row = await cursor.fetchone()
    return IdempotencyRecord(fingerprint=row[0], post=post_of(row[1:])) if row is not None else None

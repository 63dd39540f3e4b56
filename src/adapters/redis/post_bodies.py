"""Post bodies in Redis, and the burial marks of deleted posts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import timedelta
from typing import Final

import msgspec
from redis.asyncio import RedisCluster

from feedcore.adapters.redis.connection import Lanes, RedisClient
from feedcore.adapters.redis.resilient import Guard, Unguarded
from feedcore.model import Post, PostId

# A deleted post's body key holds this instead of the body, so that no late fill brings it back.
_DELETED: Final = b"-"


class RedisPostBodies:
    """Post bodies, each kept ``ttl`` after it was cached; a burial outlives any body that a read
    begun before the deletion could still write."""

    def __init__(
        self,
        client: RedisClient,
        *,
        prefix: str = "feedcore:",
        ttl: timedelta = timedelta(days=1),
        guard: Guard | None = None,
        lanes: Lanes | None = None,
    ) -> None:
        self._client = client
        execute = lanes.execute if lanes is not None else client.execute_command
        # Bodies lie in every slot of a cluster: its client reads them a node at a time.
        self._mget: Callable[[list[str]], Awaitable[list[bytes | None]]] = (
            client.mget_nonatomic if isinstance(client, RedisCluster) else lambda keys: execute("MGET", *keys)
        )
        self._prefix = prefix
        self._guard = guard or Unguarded()
        self._ttl_ms = int(ttl.total_seconds() * 1000)
        self._buried_ttl_ms = 2 * self._ttl_ms
        self._encode = msgspec.json.Encoder().encode
        self._decode = msgspec.json.Decoder(Post).decode

    def _key(self, post_id: PostId) -> str:
        return f"{self._prefix}post:{post_id}"

    async def get(self, post_ids: Collection[PostId]) -> dict[PostId, Post | None]:
        ordered = list(post_ids)
        if not ordered:
            return {}
        return await self._guard.run("get_posts", lambda: self._get(ordered), {})

    async def _get(self, ordered: list[PostId]) -> dict[PostId, Post | None]:
        found: dict[PostId, Post | None] = {}
        values = await self._mget([self._key(post_id) for post_id in ordered])
        for post_id, value in zip(ordered, values, strict=True):
            if value == _DELETED:
                found[post_id] = None
            elif value is not None:
                found[post_id] = self._decode(value)
        return found

    async def keep(self, posts: Sequence[Post]) -> None:
        if posts:
            await self._guard.run("keep_posts", lambda: self._keep(posts), None)

    async def _keep(self, posts: Sequence[Post]) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            for post in posts:
                # NX: a burial stays; a body already there is the same body. (The command as it is
                # sent: redis-py's set() spends more on its options than the pipeline on the rest.)
                pipe.execute_command("SET", self._key(post.id), self._encode(post), "NX", "PX", self._ttl_ms)
            await pipe.execute()

    async def bury(self, post_id: PostId) -> None:
        key = self._key(post_id)
        await self._guard.run("bury", lambda: self._client.set(key, _DELETED, px=self._buried_ttl_ms), None)

from __future__ import annotations

import heapq
from collections.abc import Collection
from datetime import timedelta
from itertools import islice

import msgspec

from feedcore.adapters.memory._sorted import SortedKeys
from feedcore.adapters.memory.feeds import InMemoryFeedStore
from feedcore.adapters.memory.graph import InMemorySocialGraph
from feedcore.adapters.memory.idempotency import IdempotencyRecords
from feedcore.adapters.memory.outbox import InMemoryOutbox
from feedcore.events import PostDeleted, PostPublished
from feedcore.model import Post, PostId, UserId
from feedcore.ports import Clock, IdempotencyClaim, IdempotencyRecord


class InMemoryPostStore:
    """Posts in a dict. ``feeds`` is the feed store whose holders of a post :meth:`delete` reports,
    and ``graph`` the graph whose follower counts decide fan-out when :meth:`publish` is asked to."""

    def __init__(
        self,
        outbox: InMemoryOutbox,
        clock: Clock,
        *,
        feeds: InMemoryFeedStore | None = None,
        graph: InMemorySocialGraph | None = None,
        key_ttl: timedelta = timedelta(hours=24),
    ) -> None:
        self._outbox = outbox
        self._feeds = feeds
        self._graph = graph
        self._keys = IdempotencyRecords(clock, key_ttl)
        self._posts: dict[PostId, Post] = {}
        self._by_author: dict[UserId, SortedKeys[PostId]] = {}
        self._unfanned: dict[UserId, SortedKeys[PostId]] = {}

    async def publish(
        self,
        post: Post,
        event: PostPublished,
        *,
        claim: IdempotencyClaim | None = None,
        fan_out_up_to: int | None = None,
    ) -> Post | IdempotencyRecord:
        if post.id in self._posts:
            raise ValueError(f"post {post.id} exists already")
        if claim is not None:
            existing = self._keys.find(post.author_id, claim.key)
            if existing is not None:
                return existing
        if fan_out_up_to is not None:
            followers = (await self._graph.counts(post.author_id)).followers if self._graph is not None else 0
            post = msgspec.structs.replace(post, fan_out=followers <= fan_out_up_to)
        if claim is not None:
            self._keys.record(post.author_id, claim.key, claim.fingerprint, post)
        self._posts[post.id] = post
        self._by_author.setdefault(post.author_id, SortedKeys()).add(post.id)
        if not post.fan_out:
            self._unfanned.setdefault(post.author_id, SortedKeys()).add(post.id)
        self._outbox.append(event)
        return post

    async def delete(self, post_id: PostId, event: PostDeleted) -> list[UserId] | None:
        post = self._posts.pop(post_id, None)
        if post is None:
            return None
        self._by_author[post.author_id].discard(post_id)
        unfanned = self._unfanned.get(post.author_id)
        if unfanned is not None and unfanned.discard(post_id) and not unfanned:
            del self._unfanned[post.author_id]
        self._outbox.append(event)
        return self._feeds.holders_of(post_id) if self._feeds is not None else []

    async def authors_of(self, post_ids: Collection[PostId]) -> dict[PostId, UserId]:
        return {post_id: self._posts[post_id].author_id for post_id in post_ids if post_id in self._posts}

    async def get_many(self, post_ids: Collection[PostId]) -> dict[PostId, Post]:
        return {post_id: self._posts[post_id] for post_id in post_ids if post_id in self._posts}

    async def latest(
        self,
        authors: Collection[UserId],
        *,
        before: PostId | None,
        floor: PostId,
        limit: int,
        unfanned_only: bool = False,
    ) -> list[Post]:
        index = self._unfanned if unfanned_only else self._by_author
        per_author = [
            index[author].descending(before=before, floor=floor, limit=limit) for author in authors if author in index
        ]
        newest = heapq.merge(*per_author, reverse=True)
        return [self._posts[post_id] for post_id in islice(newest, limit)]

    async def count_by(self, author: UserId) -> int:
        posts = self._by_author.get(author)
        return len(posts) if posts is not None else 0

    async def celebrities(self) -> frozenset[UserId]:
        return frozenset(self._unfanned)

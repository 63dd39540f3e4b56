from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import asynccontextmanager

from feedcore.adapters.memory._sorted import SortedKeys
from feedcore.model import Post, PostId, UserId
from feedcore.ports import SocialGraph


class InMemoryFeedStore:
    def __init__(self) -> None:
        self._feeds: dict[UserId, SortedKeys[PostId]] = {}
        self._holders: dict[PostId, set[UserId]] = {}
        self._authors: dict[PostId, UserId] = {}
        self._horizons: dict[UserId, PostId] = {}

    async def entries(self, user: UserId, *, before: PostId | None, floor: PostId, limit: int) -> list[PostId]:
        feed = self._feeds.get(user)
        return feed.descending(before=before, floor=floor, limit=limit) if feed is not None else []

    async def horizon(self, user: UserId) -> PostId:
        return self._horizons.get(user, PostId(0))

    async def add(self, users: Sequence[UserId], post_id: PostId, author_id: UserId) -> None:
        self.add_now(users, post_id, author_id)

    async def remove_post(self, post_id: PostId) -> list[UserId]:
        holders = self.holders_of(post_id)
        self.remove_post_now(post_id)
        return holders

    async def backfill(self, user: UserId, posts: Sequence[Post], *, horizon: PostId) -> None:
        self.backfill_now(user, posts, horizon)

    async def purge_author(self, user: UserId, author: UserId) -> None:
        self.purge_author_now(user, author)

    def holders_of(self, post_id: PostId) -> list[UserId]:
        return sorted(self._holders.get(post_id, ()))

    def add_now(self, users: Sequence[UserId], post_id: PostId, author_id: UserId) -> None:
        holders = self._holders.setdefault(post_id, set())
        self._authors[post_id] = author_id
        for user in users:
            self._feeds.setdefault(user, SortedKeys()).add(post_id)
            holders.add(user)

    def remove_post_now(self, post_id: PostId) -> None:
        for user in self._holders.pop(post_id, ()):
            self._feeds[user].discard(post_id)
        self._authors.pop(post_id, None)

    def backfill_now(self, user: UserId, posts: Sequence[Post], horizon: PostId) -> None:
        for post in posts:
            self.add_now((user,), post.id, post.author_id)
        self._horizons[user] = max(self._horizons.get(user, PostId(0)), horizon)

    def purge_author_now(self, user: UserId, author: UserId) -> None:
        feed = self._feeds.get(user)
        if feed is None:
            return
        for post_id in [post_id for post_id in feed if self._authors.get(post_id) == author]:
            feed.discard(post_id)
            holders = self._holders[post_id]
            holders.discard(user)
            if not holders:
                del self._holders[post_id]
                del self._authors[post_id]


class InMemoryIdempotencyLedger:
    """Applied event ids per consumer, forgetting the oldest past ``retain`` ids per consumer.

    Redeliveries come soon after the first delivery, so a bounded memory of recent ids suffices.
    """

    def __init__(self, *, retain: int = 1_000_000) -> None:
        self._retain = retain
        self._applied: dict[str, OrderedDict[str, None]] = {}

    async def applied(self, consumer: str, event_ids: Collection[str]) -> set[str]:
        known = self._applied.get(consumer) or OrderedDict[str, None]()
        return {event_id for event_id in event_ids if event_id in known}

    async def mark(self, consumer: str, event_ids: Collection[str]) -> None:
        self.mark_now(consumer, event_ids)

    def mark_now(self, consumer: str, event_ids: Collection[str]) -> None:
        applied = self._applied.setdefault(consumer, OrderedDict())
        for event_id in event_ids:
            applied[event_id] = None
        while len(applied) > self._retain:
            applied.popitem(last=False)


Staged = list[Callable[[], None]]


class _StagedFeedStore:
    """Reads the committed state; holds writes back until the transaction commits."""

    def __init__(self, base: InMemoryFeedStore, graph: SocialGraph, staged: Staged) -> None:
        self._base = base
        self._graph = graph
        self._staged = staged

    async def entries(self, user: UserId, *, before: PostId | None, floor: PostId, limit: int) -> list[PostId]:
        return await self._base.entries(user, before=before, floor=floor, limit=limit)

    async def horizon(self, user: UserId) -> PostId:
        return await self._base.horizon(user)

    async def add(self, users: Sequence[UserId], post_id: PostId, author_id: UserId) -> None:
        users = list(users)
        self._staged.append(lambda: self._base.add_now(users, post_id, author_id))

    async def add_to_audience(
        self, author_id: UserId, post_id: PostId, *, after: UserId | None, limit: int
    ) -> list[UserId]:
        followers = await self._graph.audience(author_id, after=after, limit=limit)
        await self.add([author_id, *followers] if after is None else followers, post_id, author_id)
        return followers

    async def add_to_audiences(
        self, posts: Sequence[tuple[PostId, UserId]], *, limit: int
    ) -> dict[PostId, list[UserId]]:
        return {post: await self.add_to_audience(author, post, after=None, limit=limit) for post, author in posts}

    async def remove_post(self, post_id: PostId) -> list[UserId]:
        self._staged.append(lambda: self._base.remove_post_now(post_id))
        return self._base.holders_of(post_id)

    async def backfill(self, user: UserId, posts: Sequence[Post], *, horizon: PostId) -> None:
        posts = list(posts)
        self._staged.append(lambda: self._base.backfill_now(user, posts, horizon))

    async def purge_author(self, user: UserId, author: UserId) -> None:
        self._staged.append(lambda: self._base.purge_author_now(user, author))


class _StagedLedger:
    def __init__(self, base: InMemoryIdempotencyLedger, staged: Staged) -> None:
        self._base = base
        self._staged = staged

    async def applied(self, consumer: str, event_ids: Collection[str]) -> set[str]:
        return await self._base.applied(consumer, event_ids)

    async def mark(self, consumer: str, event_ids: Collection[str]) -> None:
        marked = list(event_ids)
        self._staged.append(lambda: self._base.mark_now(consumer, marked))


class _InMemoryFeedTransaction:
    def __init__(self, feeds: InMemoryFeedStore, graph: SocialGraph, ledger: InMemoryIdempotencyLedger) -> None:
        self._staged: Staged = []
        self._feeds = _StagedFeedStore(feeds, graph, self._staged)
        self._ledger = _StagedLedger(ledger, self._staged)

    @property
    def feeds(self) -> _StagedFeedStore:
        return self._feeds

    @property
    def ledger(self) -> _StagedLedger:
        return self._ledger

    async def commit(self) -> None:
        # Every write applies here with no await in between: all of them or, on failure before
        # this point, none.
        staged, self._staged[:] = list(self._staged), []
        for write in staged:
            write()


class InMemoryFeedUnitOfWork:
    """Transactions over ``feeds`` and ``ledger``; fan-out reads its followers from ``graph``."""

    def __init__(self, feeds: InMemoryFeedStore, graph: SocialGraph, ledger: InMemoryIdempotencyLedger) -> None:
        self._feeds = feeds
        self._graph = graph
        self._ledger = ledger

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[_InMemoryFeedTransaction]:
        yield _InMemoryFeedTransaction(self._feeds, self._graph, self._ledger)

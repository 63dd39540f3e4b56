from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Sequence

from adapters.memory._sorted import SortedKeys
from feedcore.model import Post, PostId, UserId
from feedcore.ports import CachedFeed


class _Window:
    __slots__ = ("entries", "horizon")

    def __init__(self, horizon: PostId) -> None:
        self.entries: SortedKeys[PostId] = SortedKeys()
        self.horizon = horizon


class _Windows:
    """The newest ``size`` ids of up to ``max_owners`` lists, least recently used out first."""

    def __init__(self, *, size: int, max_owners: int) -> None:
        self._size = size
        self._max_owners = max_owners
        self._lists: OrderedDict[UserId, _Window] = OrderedDict()

    def read(self, owner: UserId, *, before: PostId | None, limit: int) -> CachedFeed | None:
        window = self._lists.get(owner)
        if window is None:
            return None
        self._lists.move_to_end(owner)
        entries = window.entries.descending(before=before, floor=window.horizon, limit=limit)
        return CachedFeed(entries=entries, horizon=window.horizon)

    def fill(self, owner: UserId, entries: Sequence[PostId], *, horizon: PostId) -> None:
        window = _Window(horizon)
        for post_id in entries:
            if post_id >= horizon:
                window.entries.add(post_id)
        self._lists[owner] = window
        self._lists.move_to_end(owner)
        self._trim(window)
        while len(self._lists) > self._max_owners:
            self._lists.popitem(last=False)

    def add(self, owner: UserId, post_id: PostId) -> None:
        window = self._lists.get(owner)
        # Below the horizon the store serves reads; an entry there would never be read.
        if window is not None and post_id >= window.horizon and window.entries.add(post_id):
            self._trim(window)

    def remove(self, owner: UserId, post_id: PostId) -> None:
        window = self._lists.get(owner)
        if window is not None:
            window.entries.discard(post_id)

    def invalidate(self, owner: UserId) -> None:
        self._lists.pop(owner, None)

    def _trim(self, window: _Window) -> None:
        if len(window.entries) <= self._size:
            return
        while len(window.entries) > self._size:
            window.entries.pop_lowest()
        # Everything at or above the lowest entry kept is still here.
        window.horizon = max(window.horizon, window.entries.lowest())


class InMemoryFeedCache:
    """The newest ``window`` entries of up to ``max_users`` feeds (and as many authors' unfanned
    posts), and up to ``max_posts`` post bodies; least recently used out first."""

    def __init__(self, *, window: int = 800, max_users: int = 100_000, max_posts: int = 200_000) -> None:
        self._feeds = _Windows(size=window, max_owners=max_users)
        self._unfanned = _Windows(size=window, max_owners=max_users)
        self._max_posts = max_posts
        self._posts: OrderedDict[PostId, Post | None] = OrderedDict()
        self._max_users = max_users
        self._followed: OrderedDict[UserId, tuple[str, frozenset[UserId]]] = OrderedDict()

    async def read(self, user: UserId, *, before: PostId | None, limit: int) -> CachedFeed | None:
        return self._feeds.read(user, before=before, limit=limit)

    async def fill(self, user: UserId, entries: Sequence[PostId], *, horizon: PostId) -> None:
        self._feeds.fill(user, entries, horizon=horizon)

    async def add(self, users: Sequence[UserId], post_id: PostId) -> None:
        for user in users:
            self._feeds.add(user, post_id)

    async def remove(self, users: Sequence[UserId], post_id: PostId) -> None:
        for user in users:
            self._feeds.remove(user, post_id)

    async def invalidate(self, user: UserId) -> None:
        self._feeds.invalidate(user)
        self._followed.pop(user, None)

    async def read_followed_unfanned(self, user: UserId, *, digest: str) -> frozenset[UserId] | None:
        kept = self._followed.get(user)
        if kept is None or kept[0] != digest:
            return None
        self._followed.move_to_end(user)
        return kept[1]

    async def keep_followed_unfanned(self, user: UserId, *, digest: str, authors: Collection[UserId]) -> None:
        self._followed[user] = (digest, frozenset(authors))
        self._followed.move_to_end(user)
        while len(self._followed) > self._max_users:
            self._followed.popitem(last=False)

    async def read_unfanned(
        self, authors: Collection[UserId], *, before: PostId | None, limit: int
    ) -> dict[UserId, CachedFeed]:
        found = {author: self._unfanned.read(author, before=before, limit=limit) for author in authors}
        return {author: cached for author, cached in found.items() if cached is not None}

    async def fill_unfanned(self, author: UserId, entries: Sequence[PostId], *, horizon: PostId) -> None:
        self._unfanned.fill(author, entries, horizon=horizon)

    async def add_unfanned(self, author: UserId, post_id: PostId) -> None:
        self._unfanned.add(author, post_id)

    async def remove_unfanned(self, author: UserId, post_id: PostId) -> None:
        self._unfanned.remove(author, post_id)

    async def invalidate_unfanned(self, author: UserId) -> None:
        self._unfanned.invalidate(author)

    async def posts(self, post_ids: Collection[PostId]) -> dict[PostId, Post | None]:
        return {post_id: self._posts[post_id] for post_id in post_ids if post_id in self._posts}

    async def keep_posts(self, posts: Sequence[Post]) -> None:
        for post in posts:
            if post.id not in self._posts:
                self._posts[post.id] = post
        self._trim_posts()

    async def forget_post(self, post_id: PostId) -> None:
        self._posts[post_id] = None
        self._posts.move_to_end(post_id)
        self._trim_posts()

    def _trim_posts(self) -> None:
        while len(self._posts) > self._max_posts:
            self._posts.popitem(last=False)

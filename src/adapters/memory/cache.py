from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence

from feedcore.adapters.memory._sorted import SortedKeys
from feedcore.model import Post, PostId, UserId
from feedcore.ports import CachedFeed, FeedView


class _Window:
    __slots__ = ("entries", "horizon")

    def __init__(self, horizon: PostId) -> None:
        self.entries: SortedKeys[PostId] = SortedKeys()
        self.horizon = horizon


class _Windows:
    """The newest ``size`` ids of up to ``max_owners`` lists, least recently used out first, and
    the fills begun (whether a change reached them since)."""

    def __init__(self, *, size: int, max_owners: int) -> None:
        self._size = size
        self._max_owners = max_owners
        self._lists: OrderedDict[UserId, _Window] = OrderedDict()
        self._filling: dict[UserId, bool] = {}

    def begin_fill(self, owner: UserId) -> None:
        if owner not in self._lists:
            self._filling.setdefault(owner, False)

    def finish_fill(self, owner: UserId, entries: Sequence[PostId], horizon: PostId) -> list[UserId] | None:
        """Fill ``owner``'s list if its fill is pending and unchanged; returns the owners evicted,
        or None when nothing was filled."""
        if self._filling.pop(owner, True):
            return None
        window = _Window(horizon)
        for post_id in entries:
            if post_id >= horizon:
                window.entries.add(post_id)
        self._lists[owner] = window
        self._lists.move_to_end(owner)
        self._trim(window)
        evicted = []
        while len(self._lists) > self._max_owners:
            evicted.append(self._lists.popitem(last=False)[0])
        return evicted

    def _changed(self, owner: UserId) -> None:
        if owner in self._filling:
            self._filling[owner] = True

    def read(self, owner: UserId, *, before: PostId | None, limit: int) -> CachedFeed | None:
        window = self._lists.get(owner)
        if window is None:
            return None
        self._lists.move_to_end(owner)
        entries = window.entries.descending(before=before, floor=window.horizon, limit=limit)
        return CachedFeed(entries=entries, horizon=window.horizon)

    def __contains__(self, owner: UserId) -> bool:
        return owner in self._lists

    def add(self, owner: UserId, post_id: PostId) -> bool:
        """Add ``post_id`` to ``owner``'s list, if kept; returns whether the list changed."""
        self._changed(owner)
        window = self._lists.get(owner)
        # Below the horizon the store serves reads; an entry there would never be read.
        if window is None or post_id < window.horizon or not window.entries.add(post_id):
            return False
        self._trim(window)
        return True

    def remove(self, owner: UserId, post_id: PostId) -> None:
        self._changed(owner)
        window = self._lists.get(owner)
        if window is not None:
            window.entries.discard(post_id)

    def drop(self, owner: UserId) -> None:
        self._filling.pop(owner, None)
        self._lists.pop(owner, None)

    def _trim(self, window: _Window) -> None:
        if len(window.entries) <= self._size:
            return
        while len(window.entries) > self._size:
            window.entries.pop_lowest()
        # Everything at or above the lowest entry kept is still here.
        window.horizon = max(window.horizon, window.entries.lowest())


class _Pages:
    """One user's rendered pages, and the stamp a page must be kept with."""

    __slots__ = ("rendered", "stamp")

    def __init__(self, stamp: str) -> None:
        self.stamp = stamp
        self.rendered: dict[str, bytes] = {}


class InMemoryFeedCache:
    """The newest ``window`` entries of up to ``max_users`` feeds, with the celebrities each user
    sees and their rendered pages; least recently used out first."""

    def __init__(self, *, window: int = 800, max_users: int = 100_000) -> None:
        self._feeds = _Windows(size=window, max_owners=max_users)
        self._max_users = max_users
        self._celebrities: OrderedDict[UserId, tuple[str, frozenset[UserId]]] = OrderedDict()
        self._pages: dict[UserId, _Pages] = {}
        self._stamps = itertools.count(1)

    async def view(
        self,
        user: UserId,
        *,
        before: PostId | None,
        limit: int,
        page: str | None = None,
        celebrities: str | None = None,
    ) -> FeedView:
        pages = self._pages.get(user)
        if page is not None and pages is not None and (rendered := pages.rendered.get(page)) is not None:
            self._feeds.read(user, before=None, limit=0)  # renews the feed's place, as a read does
            return FeedView(page=rendered)
        window = self._feeds.read(user, before=before, limit=limit)
        stamp = ""
        if page is not None and window is not None:
            if pages is None:
                pages = self._pages[user] = _Pages(str(next(self._stamps)))
            stamp = pages.stamp
        return FeedView(window=window, celebrities=self._seen(user, celebrities), stamp=stamp)

    def _seen(self, user: UserId, celebrities: str | None) -> frozenset[UserId] | None:
        kept = self._celebrities.get(user)
        if celebrities is None or kept is None or kept[0] != celebrities:
            return None
        self._celebrities.move_to_end(user)
        return kept[1]

    async def begin_fill(self, user: UserId) -> None:
        self._feeds.begin_fill(user)

    async def finish_fill(self, user: UserId, entries: Sequence[PostId], *, horizon: PostId) -> bool:
        evicted = self._feeds.finish_fill(user, entries, horizon)
        if evicted is None:
            return False
        self._pages.pop(user, None)
        for owner in evicted:
            self._pages.pop(owner, None)
        return True

    async def add(self, additions: Mapping[PostId, Sequence[UserId]]) -> None:
        for post_id, users in additions.items():
            for user in users:
                if self._feeds.add(user, post_id):
                    self._pages.pop(user, None)

    async def remove(self, users: Sequence[UserId], post_id: PostId) -> None:
        for user in users:
            self._pages.pop(user, None)
            self._feeds.remove(user, post_id)

    async def drop(self, user: UserId) -> None:
        self._pages.pop(user, None)
        self._feeds.drop(user)
        self._celebrities.pop(user, None)

    async def keep_celebrities(self, user: UserId, *, celebrities: str, seen: Collection[UserId]) -> None:
        self._celebrities[user] = (celebrities, frozenset(seen))
        self._celebrities.move_to_end(user)
        while len(self._celebrities) > self._max_users:
            self._celebrities.popitem(last=False)

    async def keep_page(self, user: UserId, *, page: str, rendered: bytes, stamp: str) -> None:
        pages = self._pages.get(user)
        if pages is not None and pages.stamp == stamp and user in self._feeds:
            pages.rendered[page] = rendered

    async def drop_pages(self, users: Sequence[UserId]) -> None:
        for user in users:
            self._pages.pop(user, None)


class InMemoryCelebrityWindows:
    """The newest ``window`` unfanned posts of up to ``max_authors`` celebrities."""

    def __init__(self, *, window: int = 800, max_authors: int = 100_000) -> None:
        self._windows = _Windows(size=window, max_owners=max_authors)

    async def read(self, authors: Collection[UserId], *, before: PostId | None, limit: int) -> dict[UserId, CachedFeed]:
        found = {author: self._windows.read(author, before=before, limit=limit) for author in authors}
        return {author: cached for author, cached in found.items() if cached is not None}

    async def begin_fill(self, author: UserId) -> None:
        self._windows.begin_fill(author)

    async def finish_fill(self, author: UserId, entries: Sequence[PostId], *, horizon: PostId) -> bool:
        return self._windows.finish_fill(author, entries, horizon) is not None

    async def add(self, author: UserId, post_id: PostId) -> None:
        self._windows.add(author, post_id)

    async def remove(self, author: UserId, post_id: PostId) -> None:
        self._windows.remove(author, post_id)

    async def drop(self, author: UserId) -> None:
        self._windows.drop(author)


class InMemoryPostBodies:
    """Up to ``max_posts`` post bodies and burials, least recently cached out first."""

    def __init__(self, *, max_posts: int = 200_000) -> None:
        self._max_posts = max_posts
        self._posts: OrderedDict[PostId, Post | None] = OrderedDict()

    async def get(self, post_ids: Collection[PostId]) -> dict[PostId, Post | None]:
        return {post_id: self._posts[post_id] for post_id in post_ids if post_id in self._posts}

    async def keep(self, posts: Sequence[Post]) -> None:
        for post in posts:
            if post.id not in self._posts:
                self._posts[post.id] = post
        self._trim()

    async def bury(self, post_id: PostId) -> None:
        self._posts[post_id] = None
        self._posts.move_to_end(post_id)
        self._trim()

    def _trim(self) -> None:
        while len(self._posts) > self._max_posts:
            self._posts.popitem(last=False)

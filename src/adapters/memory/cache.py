from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from adapters.memory._sorted import SortedKeys
from feedcore.model import PostId, UserId
from feedcore.ports import CachedFeed


class _Window:
    __slots__ = ("entries", "horizon")

    def __init__(self, horizon: PostId) -> None:
        self.entries: SortedKeys[PostId] = SortedKeys()
        self.horizon = horizon


class InMemoryFeedCache:
    """The newest ``window`` entries of up to ``max_users`` feeds, least recently used out first."""

    def __init__(self, *, window: int = 800, max_users: int = 100_000) -> None:
        self._window = window
        self._max_users = max_users
        self._feeds: OrderedDict[UserId, _Window] = OrderedDict()

    async def read(self, user: UserId, *, before: PostId | None, limit: int) -> CachedFeed | None:
        window = self._feeds.get(user)
        if window is None:
            return None
        self._feeds.move_to_end(user)
        entries = window.entries.descending(before=before, floor=window.horizon, limit=limit)
        return CachedFeed(entries=entries, horizon=window.horizon)

    async def fill(self, user: UserId, entries: Sequence[PostId], *, horizon: PostId) -> None:
        window = _Window(horizon)
        for post_id in entries:
            if post_id >= horizon:
                window.entries.add(post_id)
        self._feeds[user] = window
        self._feeds.move_to_end(user)
        self._trim(window)
        while len(self._feeds) > self._max_users:
            self._feeds.popitem(last=False)

    async def add(self, users: Sequence[UserId], post_id: PostId) -> None:
        for user in users:
            window = self._feeds.get(user)
            # Below the horizon the store serves reads; an entry there would never be read.
            if window is not None and post_id >= window.horizon and window.entries.add(post_id):
                self._trim(window)

    async def remove(self, users: Sequence[UserId], post_id: PostId) -> None:
        for user in users:
            window = self._feeds.get(user)
            if window is not None:
                window.entries.discard(post_id)

    async def invalidate(self, user: UserId) -> None:
        self._feeds.pop(user, None)

    def _trim(self, window: _Window) -> None:
        if len(window.entries) <= self._window:
            return
        while len(window.entries) > self._window:
            window.entries.pop_lowest()
        # Everything at or above the lowest entry kept is still here.
        window.horizon = max(window.horizon, window.entries.lowest())

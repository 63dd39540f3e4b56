from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from feedcore.adapters.memory._sorted import SortedKeys
from feedcore.adapters.memory.outbox import InMemoryOutbox
from feedcore.errors import FollowBlocked
from feedcore.events import UserFollowed, UserMuted, UserUnfollowed, UserUnmuted
from feedcore.model import UserId
from feedcore.ports import FollowCounts


class InMemorySocialGraph:
    """Follow edges, mutes and blocks. No method awaits between its reads and writes, so each is
    atomic, as a transaction is: no follow slips in between a block's check and its removals."""

    def __init__(self, outbox: InMemoryOutbox) -> None:
        self._outbox = outbox
        self._followers: dict[UserId, SortedKeys[UserId]] = {}
        self._following: dict[UserId, SortedKeys[UserId]] = {}
        #: Who mutes whom: user -> authors muted.
        self._muted: dict[UserId, set[UserId]] = {}
        #: (blocker, blocked) pairs.
        self._blocks: set[tuple[UserId, UserId]] = set()

    async def follow(self, follower: UserId, followee: UserId, event: UserFollowed) -> bool:
        if (follower, followee) in self._blocks or (followee, follower) in self._blocks:
            raise FollowBlocked("a block stands between these users")
        if not self._following.setdefault(follower, SortedKeys()).add(followee):
            return False
        self._followers.setdefault(followee, SortedKeys()).add(follower)
        self._outbox.append(event)
        return True

    async def unfollow(self, follower: UserId, followee: UserId, event: UserUnfollowed) -> bool:
        if not self._remove_edge(follower, followee):
            return False
        self._outbox.append(event)
        return True

    async def mute(self, user: UserId, author: UserId, event: UserMuted) -> bool:
        muted = self._muted.setdefault(user, set())
        if author in muted:
            return False
        muted.add(author)
        self._outbox.append(event)
        return True

    async def unmute(self, user: UserId, author: UserId, event: UserUnmuted) -> bool:
        muted = self._muted.get(user)
        if muted is None or author not in muted:
            return False
        muted.discard(author)
        self._outbox.append(event)
        return True

    async def block(
        self, blocker: UserId, blocked: UserId, unfollows: Sequence[UserUnfollowed]
    ) -> list[UserUnfollowed]:
        self._blocks.add((blocker, blocked))
        removed = [
            event
            for event in unfollows
            if {event.follower_id, event.followee_id} == {blocker, blocked}
            and self._remove_edge(UserId(event.follower_id), UserId(event.followee_id))
        ]
        for event in removed:
            self._outbox.append(event)
        return removed

    async def unblock(self, blocker: UserId, blocked: UserId) -> bool:
        if (blocker, blocked) not in self._blocks:
            return False
        self._blocks.discard((blocker, blocked))
        return True

    async def is_following(self, follower: UserId, followee: UserId) -> bool:
        following = self._following.get(follower)
        return following is not None and followee in following

    async def seen_among(self, user: UserId, candidates: Collection[UserId]) -> set[UserId]:
        following = self._following.get(user)
        if following is None:
            return set()
        muted = self._muted.get(user, set())
        return {candidate for candidate in candidates if candidate in following and candidate not in muted}

    async def seen(self, user: UserId, *, after: UserId | None, limit: int) -> list[UserId]:
        muted = self._muted.get(user, set())
        return self._keys_but(self._following.get(user), lambda author: author in muted, after, limit)

    async def audience(self, author: UserId, *, after: UserId | None, limit: int) -> list[UserId]:
        return self._keys_but(
            self._followers.get(author), lambda follower: author in self._muted.get(follower, ()), after, limit
        )

    async def followers(self, user: UserId, *, after: UserId | None, limit: int) -> list[UserId]:
        followers = self._followers.get(user)
        return followers.ascending(after=after, limit=limit) if followers is not None else []

    async def following(self, user: UserId, *, after: UserId | None, limit: int) -> list[UserId]:
        following = self._following.get(user)
        return following.ascending(after=after, limit=limit) if following is not None else []

    async def counts(self, user: UserId) -> FollowCounts:
        followers = self._followers.get(user)
        following = self._following.get(user)
        return FollowCounts(
            followers=len(followers) if followers is not None else 0,
            following=len(following) if following is not None else 0,
        )

    def _remove_edge(self, follower: UserId, followee: UserId) -> bool:
        following = self._following.get(follower)
        if following is None or not following.discard(followee):
            return False
        self._followers[followee].discard(follower)
        return True

    @staticmethod
    def _keys_but(
        keys: SortedKeys[UserId] | None, left_out: Callable[[UserId], bool], after: UserId | None, limit: int
    ) -> list[UserId]:
        """Up to ``limit`` of ``keys`` after ``after``, in order, leaving out those ``left_out`` names."""
        found: list[UserId] = []
        while keys is not None and len(found) < limit:
            page = keys.ascending(after=after, limit=limit)
            found += [key for key in page if not left_out(key)][: limit - len(found)]
            if len(page) < limit:
                break
            after = page[-1]
        return found

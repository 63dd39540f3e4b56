from __future__ import annotations

from collections.abc import Collection

from feedcore.adapters.memory._sorted import SortedKeys
from feedcore.adapters.memory.outbox import InMemoryOutbox
from feedcore.events import UserFollowed, UserUnfollowed
from feedcore.model import UserId
from feedcore.ports import FollowCounts


class InMemorySocialGraph:
    def __init__(self, outbox: InMemoryOutbox) -> None:
        self._outbox = outbox
        self._followers: dict[UserId, SortedKeys[UserId]] = {}
        self._following: dict[UserId, SortedKeys[UserId]] = {}

    async def follow(self, follower: UserId, followee: UserId, event: UserFollowed) -> bool:
        if not self._following.setdefault(follower, SortedKeys()).add(followee):
            return False
        self._followers.setdefault(followee, SortedKeys()).add(follower)
        self._outbox.append(event)
        return True

    async def unfollow(self, follower: UserId, followee: UserId, event: UserUnfollowed) -> bool:
        following = self._following.get(follower)
        if following is None or not following.discard(followee):
            return False
        self._followers[followee].discard(follower)
        self._outbox.append(event)
        return True

    async def is_following(self, follower: UserId, followee: UserId) -> bool:
        following = self._following.get(follower)
        return following is not None and followee in following

    async def followed_among(self, follower: UserId, candidates: Collection[UserId]) -> set[UserId]:
        following = self._following.get(follower)
        if following is None:
            return set()
        return {candidate for candidate in candidates if candidate in following}

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

"""Use cases around the social graph: follow, unfollow, and the paged lists of both sides."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from feedcore.errors import SelfFollow
from feedcore.events import UserFollowed, UserUnfollowed
from feedcore.model import Page, UserId, decode_user_cursor, encode_user_cursor
from feedcore.policies import Policies
from feedcore.ports import Clock, FeedCache, IdGenerator, SocialGraph


class Social:
    """Following, unfollowing, and the paged lists of both sides.

    ``cache``, when the service keeps one, has the follower's cached feed dropped at once.
    """

    def __init__(
        self,
        *,
        graph: SocialGraph,
        ids: IdGenerator,
        clock: Clock,
        policies: Policies,
        cache: FeedCache | None = None,
    ) -> None:
        self._graph = graph
        self._ids = ids
        self._clock = clock
        self._policies = policies
        self._cache = cache

    async def follow(self, follower: UserId, followee: UserId) -> None:
        """Make ``follower`` follow ``followee``; following again changes nothing.

        The follower's cached feed is dropped at once, with the celebrities kept as seen, so that a
        followee whose posts are merged at read time shows at once, as it did before any cache.
        """
        if follower == followee:
            raise SelfFollow("a user cannot follow themselves")
        event = UserFollowed(
            event_id=str(self._ids.next_id()), occurred_at=self._clock.now(), follower_id=follower, followee_id=followee
        )
        if await self._graph.follow(follower, followee, event) and self._cache is not None:
            await self._cache.drop(follower)

    async def unfollow(self, follower: UserId, followee: UserId) -> None:
        """Make ``follower`` stop following ``followee``; unfollowing again changes nothing.

        The follower's cached feed is dropped at once, so that reads stop showing the followee
        before the processor has taken the followee's posts out of the feed.
        """
        event = UserUnfollowed(
            event_id=str(self._ids.next_id()), occurred_at=self._clock.now(), follower_id=follower, followee_id=followee
        )
        if await self._graph.unfollow(follower, followee, event) and self._cache is not None:
            await self._cache.drop(follower)

    async def followers(self, user: UserId, *, limit: int | None = None, cursor: str | None = None) -> Page[UserId]:
        """Who follows ``user``, in ascending id order."""
        return await self._page(lambda after, n: self._graph.followers(user, after=after, limit=n), limit, cursor)

    async def following(self, user: UserId, *, limit: int | None = None, cursor: str | None = None) -> Page[UserId]:
        """Whom ``user`` follows, in ascending id order."""
        return await self._page(lambda after, n: self._graph.following(user, after=after, limit=n), limit, cursor)

    async def _page(
        self, fetch: Callable[[UserId | None, int], Awaitable[list[UserId]]], limit: int | None, cursor: str | None
    ) -> Page[UserId]:
        size = self._policies.page_size(limit)
        after = decode_user_cursor(cursor) if cursor is not None else None
        found = await fetch(after, size + 1)
        if len(found) <= size:
            return Page(items=found)
        return Page(items=found[:size], next_cursor=encode_user_cursor(found[size - 1]))

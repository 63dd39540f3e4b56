"""Use cases around the social graph: follow, unfollow, mute, block, and the paged lists of follows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from feedcore.errors import SelfBlock, SelfFollow, SelfMute
from feedcore.events import UserFollowed, UserMuted, UserUnfollowed, UserUnmuted
from feedcore.model import Page, UserId, decode_user_cursor, encode_user_cursor
from feedcore.policies import Policies
from feedcore.ports import Clock, FeedCache, IdGenerator, SocialGraph


class Social:
    """Following, unfollowing, muting, blocking, and the paged lists of follows.

    ``cache``, when the service keeps one, has the cached feed of whoever a change makes see more
    or less dropped at once, so that reads show the change before the processor applied it.
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
        A follow between users with a block between them, either way, raises ``FollowBlocked``.
        """
        if follower == followee:
            raise SelfFollow("a user cannot follow themselves")
        event = UserFollowed(
            event_id=self._event_id(), occurred_at=self._clock.now(), follower_id=follower, followee_id=followee
        )
        if await self._graph.follow(follower, followee, event):
            await self._drop(follower)

    async def unfollow(self, follower: UserId, followee: UserId) -> None:
        """Make ``follower`` stop following ``followee``; unfollowing again changes nothing.

        The follower's cached feed is dropped at once, so that reads stop showing the followee
        before the processor has taken the followee's posts out of the feed.
        """
        event = UserUnfollowed(
            event_id=self._event_id(), occurred_at=self._clock.now(), follower_id=follower, followee_id=followee
        )
        if await self._graph.unfollow(follower, followee, event):
            await self._drop(follower)

    async def mute(self, user: UserId, author: UserId) -> None:
        """Hide ``author``'s posts from ``user``'s home feed, telling ``author`` nothing; muting
        again changes nothing. The user's cached feed is dropped at once, as by an unfollow."""
        if user == author:
            raise SelfMute("a user cannot mute themselves")
        event = UserMuted(event_id=self._event_id(), occurred_at=self._clock.now(), user_id=user, muted_id=author)
        if await self._graph.mute(user, author, event):
            await self._drop(user)

    async def unmute(self, user: UserId, author: UserId) -> None:
        """Show ``author``'s posts in ``user``'s home feed again (if ``user`` follows them), all
        those the feed would hold had there been no mute; unmuting again changes nothing."""
        event = UserUnmuted(event_id=self._event_id(), occurred_at=self._clock.now(), user_id=user, muted_id=author)
        if await self._graph.unmute(user, author, event):
            await self._drop(user)

    async def block(self, blocker: UserId, blocked: UserId) -> None:
        """Block ``blocked``: the follows between the two users go, both ways, as unfollows do
        (their events take each one's posts out of the other's feed), and neither may follow the
        other while the block stands. Blocking again changes nothing."""
        if blocker == blocked:
            raise SelfBlock("a user cannot block themselves")
        now = self._clock.now()
        unfollows = [
            UserUnfollowed(event_id=self._event_id(), occurred_at=now, follower_id=follower, followee_id=followee)
            for follower, followee in ((blocker, blocked), (blocked, blocker))
        ]
        for removed in await self._graph.block(blocker, blocked, unfollows):
            await self._drop(UserId(removed.follower_id))

    async def unblock(self, blocker: UserId, blocked: UserId) -> None:
        """Lift the block, so that either may follow the other again (unless the other blocks too);
        no follow comes back by itself."""
        await self._graph.unblock(blocker, blocked)

    async def followers(self, user: UserId, *, limit: int | None = None, cursor: str | None = None) -> Page[UserId]:
        """Who follows ``user``, in ascending id order."""
        return await self._page(lambda after, n: self._graph.followers(user, after=after, limit=n), limit, cursor)

    async def following(self, user: UserId, *, limit: int | None = None, cursor: str | None = None) -> Page[UserId]:
        """Whom ``user`` follows, in ascending id order."""
        return await self._page(lambda after, n: self._graph.following(user, after=after, limit=n), limit, cursor)

    def _event_id(self) -> str:
        return str(self._ids.next_id())

    async def _drop(self, user: UserId) -> None:
        if self._cache is not None:
            await self._cache.drop(user)

    async def _page(
        self, fetch: Callable[[UserId | None, int], Awaitable[list[UserId]]], limit: int | None, cursor: str | None
    ) -> Page[UserId]:
        size = self._policies.page_size(limit)
        after = decode_user_cursor(cursor) if cursor is not None else None
        found = await fetch(after, size + 1)
        if len(found) <= size:
            return Page(items=found)
        return Page(items=found[:size], next_cursor=encode_user_cursor(found[size - 1]))

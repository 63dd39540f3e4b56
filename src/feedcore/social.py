"""Use cases around the social graph: follow, unfollow, and the paged lists of both sides."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from feedcore.errors import SelfFollow
from feedcore.events import UserFollowed, UserUnfollowed
from feedcore.model import Page, UserId, decode_user_cursor, encode_user_cursor
from feedcore.policies import Policies
from feedcore.ports import Clock, FeedCache, IdGenerator, SocialGraph


async def follow(
    follower: UserId,
    followee: UserId,
    *,
    graph: SocialGraph,
    ids: IdGenerator,
    clock: Clock,
    cache: FeedCache | None = None,
) -> None:
    """Make ``follower`` follow ``followee``; following again changes nothing.

    The follower's cached feed is dropped at once, with the celebrities kept as seen, so that a
    followee whose posts are merged at read time shows at once, as it did before any cache.
    """
    if follower == followee:
        raise SelfFollow("a user cannot follow themselves")
    event = UserFollowed(
        event_id=str(ids.next_id()), occurred_at=clock.now(), follower_id=follower, followee_id=followee
    )
    if await graph.follow(follower, followee, event) and cache is not None:
        await cache.drop(follower)


async def unfollow(
    follower: UserId,
    followee: UserId,
    *,
    graph: SocialGraph,
    ids: IdGenerator,
    clock: Clock,
    cache: FeedCache | None = None,
) -> None:
    """Make ``follower`` stop following ``followee``; unfollowing again changes nothing.

    The follower's cached feed is dropped at once, so that reads stop showing the followee before
    the processor has taken the followee's posts out of the feed.
    """
    event = UserUnfollowed(
        event_id=str(ids.next_id()), occurred_at=clock.now(), follower_id=follower, followee_id=followee
    )
    if await graph.unfollow(follower, followee, event) and cache is not None:
        await cache.drop(follower)


async def _page_of_users(
    fetch: Callable[[UserId | None, int], Awaitable[list[UserId]]],
    limit: int | None,
    cursor: str | None,
    policies: Policies,
) -> Page[UserId]:
    size = policies.page_size(limit)
    after = decode_user_cursor(cursor) if cursor is not None else None
    found = await fetch(after, size + 1)
    if len(found) <= size:
        return Page(items=found)
    return Page(items=found[:size], next_cursor=encode_user_cursor(found[size - 1]))


async def read_followers(
    user: UserId, *, limit: int | None, cursor: str | None, graph: SocialGraph, policies: Policies
) -> Page[UserId]:
    """Who follows ``user``, in ascending id order."""
    return await _page_of_users(lambda after, n: graph.followers(user, after=after, limit=n), limit, cursor, policies)


async def read_following(
    user: UserId, *, limit: int | None, cursor: str | None, graph: SocialGraph, policies: Policies
) -> Page[UserId]:
    """Whom ``user`` follows, in ascending id order."""
    return await _page_of_users(lambda after, n: graph.following(user, after=after, limit=n), limit, cursor, policies)

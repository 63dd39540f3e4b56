"""The processor side: applying each event to the materialised feeds, exactly once per consumer.

Handlers converge on the truth instead of trusting the order events arrive in: each one re-reads
the post store and the graph, so a late, repeated or reordered event leaves the feeds as the current
state says they should be. The ledger, written in the same transaction as an event's effects, makes
each event's work happen once per consumer; the cache is updated after that transaction commits,
and the bus offset only after both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from feedcore.events import Event, PostDeleted, PostPublished, UserFollowed, UserUnfollowed
from feedcore.model import PostId, UserId
from feedcore.policies import Policies
from feedcore.ports import EventBus, FeedCache, FeedStore, FeedUnitOfWork, PostStore, SocialGraph

CacheUpdate = Callable[[FeedCache], Awaitable[None]]


async def _nothing(_: FeedCache) -> None:
    return None


class FeedProcessor:
    """Applies events to the feeds of one consumer group."""

    def __init__(
        self,
        *,
        consumer: str,
        posts: PostStore,
        graph: SocialGraph,
        unit_of_work: FeedUnitOfWork,
        cache: FeedCache | None,
        policies: Policies,
    ) -> None:
        self._consumer = consumer
        self._posts = posts
        self._graph = graph
        self._unit_of_work = unit_of_work
        self._cache = cache
        self._policies = policies

    async def apply(self, event: Event) -> bool:
        """Apply one event; returns False when this consumer had already applied it."""
        async with self._unit_of_work.begin() as tx:
            if await tx.ledger.applied(self._consumer, event.event_id):
                return False
            update_cache = await self._apply(tx.feeds, event)
            await tx.ledger.mark(self._consumer, event.event_id)
            await tx.commit()
        if self._cache is not None:
            await update_cache(self._cache)
        return True

    async def process_batch(self, bus: EventBus, *, max_events: int = 500, max_wait: float = 1.0) -> int:
        """Receive one batch, apply it, then commit it; returns how many events it held."""
        deliveries = await bus.receive(max_events=max_events, max_wait=max_wait)
        for delivery in deliveries:
            await self.apply(delivery.event)
        if deliveries:
            await bus.commit(deliveries)
        return len(deliveries)

    async def _apply(self, feeds: FeedStore, event: Event) -> CacheUpdate:
        match event:
            case PostPublished(post_id=post_id):
                return await self.fan_out_post(feeds, PostId(post_id))
            case PostDeleted(post_id=post_id):
                return await self.remove_post(feeds, PostId(post_id))
            case UserFollowed(follower_id=follower, followee_id=followee):
                return await self.backfill_followee(feeds, UserId(follower), UserId(followee))
            case UserUnfollowed(follower_id=follower, followee_id=followee):
                return await self.purge_followee(feeds, UserId(follower), UserId(followee))

    async def fan_out_post(self, feeds: FeedStore, post_id: PostId) -> CacheUpdate:
        """Write a post into its author's feed and each current follower's, a chunk at a time."""
        post = (await self._posts.get_many((post_id,))).get(post_id)
        if post is None or not post.fan_out:
            return _nothing
        recipients: list[UserId] = [post.author_id]
        await feeds.add(recipients, post.id, post.author_id)
        after: UserId | None = None
        while chunk := await self._graph.followers(post.author_id, after=after, limit=self._policies.fanout_chunk):
            await feeds.add(chunk, post.id, post.author_id)
            recipients += chunk
            after = chunk[-1]

        async def update(cache: FeedCache) -> None:
            await cache.add(recipients, post.id)

        return update

    async def remove_post(self, feeds: FeedStore, post_id: PostId) -> CacheUpdate:
        holders = await feeds.remove_post(post_id)

        async def update(cache: FeedCache) -> None:
            await cache.remove(holders, post_id)

        return update

    async def backfill_followee(self, feeds: FeedStore, follower: UserId, followee: UserId) -> CacheUpdate:
        """Copy the followee's newest posts into the follower's feed, if the follow still stands."""
        if not await self._graph.is_following(follower, followee):
            return _nothing
        limit = self._policies.backfill_limit
        newest = await self._posts.latest((followee,), before=None, floor=PostId(0), limit=limit)
        # Past the newest ``limit`` posts the feed is incomplete; reads continue from timelines there.
        horizon = newest[-1].id if len(newest) == limit else PostId(0)
        await feeds.backfill(follower, [post for post in newest if post.fan_out], horizon=horizon)
        return _invalidator(follower)

    async def purge_followee(self, feeds: FeedStore, follower: UserId, followee: UserId) -> CacheUpdate:
        """Take the followee's posts out of the follower's feed, if the unfollow still stands."""
        if await self._graph.is_following(follower, followee):
            return _nothing
        await feeds.purge_author(follower, followee)
        return _invalidator(follower)


def _invalidator(user: UserId) -> CacheUpdate:
    # Follows and unfollows change a feed in bulk and are rare next to posts: rebuilding the cached
    # copy on the next read is simpler and safer than patching it.
    async def update(cache: FeedCache) -> None:
        await cache.invalidate(user)

    return update

"""The processor side: applying each event to the materialised feeds and their cache.

Handlers converge on the truth instead of trusting the order events arrive in: each re-reads the
post store and the graph, so a late, repeated or reordered event (concurrent outbox relays can
publish one key's events out of order) leaves the feeds as the current state says they should be.

Per batch of events: their feed-store effects and ledger marks commit in one transaction, so the
store work happens once per consumer; then the cache is updated, and the bus offsets are committed
last. A crash
between the store commit and the cache update is repaired on redelivery: the ledger skips the store
work, and the cache update, which is idempotent, is derived again from the event and the truth.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence

from feedcore.events import Event, PostDeleted, PostPublished, UserFollowed, UserMuted, UserUnfollowed, UserUnmuted
from feedcore.model import Post, PostId, UserId
from feedcore.policies import Policies
from feedcore.ports import (
    NO_TELEMETRY,
    CelebrityWindows,
    EventBus,
    FeedCache,
    FeedChanges,
    FeedsChanged,
    FeedStore,
    FeedUnitOfWork,
    PostBodies,
    PostStore,
    Removal,
    SocialGraph,
    Telemetry,
)


class FeedProcessor:
    """Applies events to the feeds, as one consumer of the event stream."""

    def __init__(
        self,
        *,
        consumer: str,
        posts: PostStore,
        graph: SocialGraph,
        unit_of_work: FeedUnitOfWork,
        policies: Policies,
        cache: FeedCache | None = None,
        celebrity_windows: CelebrityWindows | None = None,
        bodies: PostBodies | None = None,
        changes: FeedChanges | None = None,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self._consumer = consumer
        self._changes = changes
        self._telemetry = telemetry
        self._posts = posts
        self._graph = graph
        self._unit_of_work = unit_of_work
        self._cache = cache
        self._celebrity_windows = celebrity_windows
        self._bodies = bodies
        self._policies = policies

    async def apply(self, event: Event) -> bool:
        """Apply one event; returns False when this consumer had already applied it to the store."""
        return bool(await self.apply_all([event]))

    async def apply_all(self, events: Sequence[Event]) -> list[Event]:
        """Apply ``events`` in one transaction: all their store effects and ledger marks commit
        together, or none do. Then the caches are brought in line with each of them. Publications
        go first, all at once, and the other events after them in order (see :meth:`_fan_out`).

        Returns the events applied to the store now: those this consumer had not applied before
        (an event repeated within ``events`` counts once).
        """
        touched: dict[str, list[UserId]] = {}
        posts: Mapping[PostId, Post] = {}
        async with self._unit_of_work.begin() as tx:
            skip = await tx.ledger.applied(self._consumer, [event.event_id for event in events])
            fresh: list[Event] = []
            for event in events:
                if event.event_id not in skip:
                    skip.add(event.event_id)
                    fresh.append(event)
            if fresh:
                published = {PostId(e.post_id) for e in fresh if isinstance(e, PostPublished)}
                posts = await self._posts.get_many(published) if published else {}
                audiences = await self._fan_out(tx.feeds, [post for post in posts.values() if post.fan_out])
                for event in fresh:
                    if isinstance(event, PostPublished):
                        touched[event.event_id] = audiences.get(PostId(event.post_id), [])
                    else:
                        touched[event.event_id] = await self._apply_to_store(tx.feeds, event)
                await tx.ledger.mark(self._consumer, [event.event_id for event in fresh])
                await tx.commit()
        if self._bodies is not None and posts:
            await self._bodies.keep(list(posts.values()))  # before any deletion's burial
        await self._cache_publications(events, touched, posts)
        for event in events:
            await self._apply_to_caches(event, touched.get(event.event_id))
        for event in fresh:
            if isinstance(event, PostPublished) and (post := posts.get(PostId(event.post_id))) is not None:
                self._telemetry.reached_feeds(post)
        self._telemetry.events_applied(events, fresh)
        if self._changes is not None and (change := _changes_of(fresh, touched, posts)):
            # Once per batch, whatever its size: the write path pays for one announcement.
            await self._changes.announce(change)
        return fresh

    async def process_batch(self, bus: EventBus, *, max_events: int = 500, max_wait: float = 1.0) -> int:
        """Receive one batch, apply it, then commit it; returns how many events it held."""
        deliveries = await bus.receive(max_events=max_events, max_wait=max_wait)
        if deliveries:
            await self.apply_all([delivery.event for delivery in deliveries])
            await bus.commit(deliveries)
        return len(deliveries)

    async def _apply_to_store(
        self, feeds: FeedStore, event: PostDeleted | UserFollowed | UserUnfollowed | UserMuted | UserUnmuted
    ) -> list[UserId]:
        """Apply ``event`` to the feed store; returns whose feeds it changed. (Publications are
        applied all at once, by :meth:`_fan_out`.)"""
        match event:
            case PostDeleted(post_id=post_id):
                return await feeds.remove_post(PostId(post_id))
            case UserFollowed(follower_id=user, followee_id=author) | UserUnmuted(user_id=user, muted_id=author):
                return await self.backfill_followee(feeds, UserId(user), UserId(author))
            case UserUnfollowed(follower_id=user, followee_id=author) | UserMuted(user_id=user, muted_id=author):
                return await self.purge_followee(feeds, UserId(user), UserId(author))

    async def _cache_publications(
        self, events: Sequence[Event], touched: Mapping[str, list[UserId]], posts: Mapping[PostId, Post]
    ) -> None:
        """Bring the caches in line with the batch's publications, all of them at once (before its
        other events, as in the store). ``touched`` has no entry for an event applied before, and
        ``posts`` holds the live posts among those the batch published, when it was applied now."""
        additions: dict[PostId, list[UserId]] = {}
        for event in events:
            if isinstance(event, PostPublished):
                post_id, author = PostId(event.post_id), UserId(event.author_id)
                audience = await self._cache_published(post_id, author, touched.get(event.event_id), posts)
                if audience:
                    additions[post_id] = audience
        if additions and self._cache is not None:
            await self._cache.add(additions)

    async def _apply_to_caches(self, event: Event, touched: list[UserId] | None) -> None:
        """Bring the caches in line with ``event``, not a publication; ``touched`` is None on a redelivery."""
        match event:
            case PostPublished():
                pass  # all of the batch's at once, by _cache_publications
            case PostDeleted(post_id=post_id, author_id=author):
                await self._cache_deleted(PostId(post_id), UserId(author), touched)
            case (
                UserFollowed(follower_id=user)
                | UserUnfollowed(follower_id=user)
                | UserMuted(user_id=user)
                | UserUnmuted(user_id=user)
            ):
                # Follows and mutes change a feed in bulk and are rare next to posts: rebuilding the
                # cached copy on the next read is simpler and safer than patching it.
                if self._cache is not None and (touched is None or touched):
                    await self._cache.drop(UserId(user))

    async def _cache_published(
        self, post_id: PostId, author: UserId, touched: list[UserId] | None, posts: Mapping[PostId, Post]
    ) -> list[UserId]:
        """The post's body and celebrity window brought in line; returns whose cached feeds get it."""
        post = posts.get(post_id)
        if touched is None or post is None:
            post = (await self._posts.get_many((post_id,))).get(post_id)
            if post is not None and self._bodies is not None:
                await self._bodies.keep([post])
        if post is None:
            return []
        if not post.fan_out:
            if self._celebrity_windows is not None:
                await self._celebrity_windows.add(author, post.id)
            return []
        if self._cache is None:
            return []
        return await self._audience(author) if touched is None else touched

    async def _cache_deleted(self, post_id: PostId, author: UserId, touched: list[UserId] | None) -> None:
        if self._bodies is not None:
            await self._bodies.bury(post_id)
        if self._celebrity_windows is not None:
            await self._celebrity_windows.remove(author, post_id)
        if self._cache is not None:
            # Whoever held the post and is not a follower any more had the cached feed dropped when
            # the unfollow was applied.
            await self._cache.remove(await self._audience(author) if touched is None else touched, post_id)

    async def _fan_out(self, feeds: FeedStore, posts: Sequence[Post]) -> dict[PostId, list[UserId]]:
        """Write posts into their authors' feeds and each current follower's: the first chunk of
        every post at once, then the rest of each big audience a chunk at a time. Returns each
        post's recipients; posts deleted meanwhile are left out (their deletion reaches the feeds).

        Events of a batch are otherwise applied in order; publications may go first because every
        handler converges on the truth (a deleted post is never written, a follow is read as it
        stands now), whatever the order.
        """
        if not posts:
            return {}
        limit = self._policies.fanout_chunk
        started = time.perf_counter()
        firsts = await feeds.add_to_audiences([(post.id, post.author_id) for post in posts], limit=limit)
        together = time.perf_counter() - started  # every post waited for the statement that wrote them all
        audiences: dict[PostId, list[UserId]] = {}
        for post in posts:
            chunk = firsts.get(post.id)
            if chunk is None:
                continue
            started = time.perf_counter()
            recipients = [post.author_id, *chunk]
            while chunk is not None and len(chunk) == limit:
                chunk = await feeds.add_to_audience(post.author_id, post.id, after=chunk[-1], limit=limit)
                recipients += chunk or []
            audiences[post.id] = recipients
            self._telemetry.fanned_out(entries=len(recipients), seconds=together + time.perf_counter() - started)
        return audiences

    async def backfill_followee(self, feeds: FeedStore, follower: UserId, followee: UserId) -> list[UserId]:
        """Copy the followee's newest posts into the follower's feed, if the follower sees the
        followee now (a follow, or an unmute, that still stands)."""
        if not await self._graph.seen_among(follower, (followee,)):
            return []
        limit = self._policies.backfill_limit
        newest = await self._posts.latest((followee,), before=None, floor=PostId(0), limit=limit)
        # Past the newest ``limit`` posts the feed is incomplete; reads continue from timelines there.
        horizon = newest[-1].id if len(newest) == limit else PostId(0)
        await feeds.backfill(follower, [post for post in newest if post.fan_out], horizon=horizon)
        return [follower]

    async def purge_followee(self, feeds: FeedStore, follower: UserId, followee: UserId) -> list[UserId]:
        """Take the followee's posts out of the follower's feed, if the follower does not see the
        followee now (an unfollow, or a mute, that still stands)."""
        if await self._graph.seen_among(follower, (followee,)):
            return []
        await feeds.purge_author(follower, followee)
        return [follower]

    async def _audience_chunks(self, author: UserId) -> AsyncIterator[list[UserId]]:
        """Whose feeds an author's post belongs in: the author's own (with the first chunk), then
        each of the audience's (followers who do not mute the author)."""
        limit = self._policies.fanout_chunk
        chunk = await self._graph.audience(author, after=None, limit=limit)
        yield [author, *chunk]
        while len(chunk) == limit:
            chunk = await self._graph.audience(author, after=chunk[-1], limit=limit)
            if chunk:
                yield chunk

    async def _audience(self, author: UserId) -> list[UserId]:
        return [user async for chunk in self._audience_chunks(author) for user in chunk]


def _changes_of(
    fresh: Sequence[Event], touched: Mapping[str, list[UserId]], posts: Mapping[PostId, Post]
) -> FeedsChanged:
    """What the events applied now changed in home feeds, for the live streams to read again."""
    grown: dict[UserId, None] = {}
    merged: dict[UserId, None] = {}
    regraphed: list[UserId] = []
    removals: list[Removal] = []
    for event in fresh:
        users = touched.get(event.event_id, [])
        match event:
            case PostPublished(post_id=post_id, author_id=author):
                post = posts.get(PostId(post_id))
                if post is not None and not post.fan_out:
                    merged[UserId(author)] = None
                grown.update(dict.fromkeys(users))
            case PostDeleted(post_id=post_id, author_id=author):
                removals.append(Removal(author=UserId(author), post_id=PostId(post_id), users=users))
            case UserFollowed(follower_id=user) | UserUnmuted(user_id=user):
                grown.update(dict.fromkeys(users))
                regraphed.append(UserId(user))
            case UserUnfollowed(follower_id=user, followee_id=author) | UserMuted(user_id=user, muted_id=author):
                if users:
                    removals.append(Removal(author=UserId(author), users=users))
                regraphed.append(UserId(user))
    return FeedsChanged(grown=list(grown), merged=list(merged), regraphed=regraphed, removals=removals)

"""Every port on its in-memory adapter, with the use cases bound to them, for tests to drive."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import msgspec

from adapters.memory import (
    InMemoryCelebrityWindows,
    InMemoryEventBus,
    InMemoryFeedCache,
    InMemoryFeedStore,
    InMemoryFeedUnitOfWork,
    InMemoryIdempotencyLedger,
    InMemoryOutbox,
    InMemoryPostBodies,
    InMemoryPostStore,
    InMemorySocialGraph,
    ManualClock,
)
from feedcore import (
    CelebrityWindows,
    Clock,
    FeedCache,
    FeedProcessor,
    FeedReader,
    FeedUnitOfWork,
    HomeFeeds,
    IdempotencyLedger,
    Outbox,
    Page,
    Policies,
    Post,
    PostBodies,
    PostId,
    Posts,
    PostStore,
    Profile,
    SnowflakeIdGenerator,
    Social,
    SocialGraph,
    UserId,
)


@dataclass(frozen=True, kw_only=True)
class Adapters:
    """The storage ports a world runs on."""

    posts: PostStore
    graph: SocialGraph
    feeds: FeedReader
    ledger: IdempotencyLedger
    unit_of_work: FeedUnitOfWork
    outbox: Outbox


def memory_adapters(clock: Clock) -> Adapters:
    outbox = InMemoryOutbox()
    feeds = InMemoryFeedStore()
    graph = InMemorySocialGraph(outbox)
    ledger = InMemoryIdempotencyLedger()
    return Adapters(
        posts=InMemoryPostStore(outbox, clock, feeds=feeds, graph=graph),
        graph=graph,
        feeds=feeds,
        ledger=ledger,
        unit_of_work=InMemoryFeedUnitOfWork(feeds, graph, ledger),
        outbox=outbox,
    )


_encode_page = msgspec.json.Encoder().encode
_decode_page = msgspec.json.Decoder(Page[Post]).decode


class World:
    """The ports on in-memory adapters (storage from ``adapters``, the caches from ``caches``; none
    when ``cached`` is False), and the use cases bound to them. Feeds are read rendered and decoded again, as the HTTP
    API serves them, so that kept pages are read as well."""

    def __init__(
        self,
        policies: Policies | None = None,
        *,
        partitions: int = 4,
        cached: bool = True,
        caches: tuple[FeedCache, CelebrityWindows, PostBodies] | None = None,
        adapters: Callable[[Clock], Adapters] = memory_adapters,
    ) -> None:
        self.policies = policies or Policies()
        self.clock = ManualClock()
        self.ids = SnowflakeIdGenerator(self.clock)
        built = adapters(self.clock)
        self.outbox = built.outbox
        self.posts = built.posts
        self.graph = built.graph
        self.feeds = built.feeds
        self.ledger = built.ledger
        self.unit_of_work = built.unit_of_work
        window = self.policies.cache_window
        if caches is None and cached:
            caches = InMemoryFeedCache(window=window), InMemoryCelebrityWindows(window=window), InMemoryPostBodies()
        self.cache: FeedCache | None = caches[0] if caches else None
        self.celebrity_windows: CelebrityWindows | None = caches[1] if caches else None
        self.bodies: PostBodies | None = caches[2] if caches else None
        self.bus = InMemoryEventBus(partitions=partitions)
        self.processor = self.make_processor(self.cache)
        self.home_feeds = HomeFeeds(
            posts=self.posts,
            graph=self.graph,
            feeds=self.feeds,
            policies=self.policies,
            cache=self.cache,
            celebrity_windows=self.celebrity_windows,
            bodies=self.bodies,
        )
        #: The use cases of posts and of the graph, over this world's ports.
        self.posting = Posts(
            posts=self.posts,
            graph=self.graph,
            ids=self.ids,
            clock=self.clock,
            policies=self.policies,
            cache=self.cache,
            bodies=self.bodies,
        )
        self.social = Social(graph=self.graph, ids=self.ids, clock=self.clock, policies=self.policies, cache=self.cache)

    def make_processor(
        self,
        cache: FeedCache | None,
        celebrity_windows: CelebrityWindows | None = None,
        bodies: PostBodies | None = None,
    ) -> FeedProcessor:
        return FeedProcessor(
            consumer="feedcore-test",
            posts=self.posts,
            graph=self.graph,
            unit_of_work=self.unit_of_work,
            policies=self.policies,
            cache=cache,
            celebrity_windows=celebrity_windows or self.celebrity_windows,
            bodies=bodies or self.bodies,
        )

    def tick(self, milliseconds: int = 1) -> None:
        self.clock.advance(timedelta(milliseconds=milliseconds))

    async def publish(self, author: str, content: str = "hello", *, key: str | None = None) -> Post:
        self.tick()
        return await self.posting.publish(UserId(author), content, idempotency_key=key)

    async def delete(self, requester: str, post_id: PostId) -> None:
        await self.posting.delete(UserId(requester), post_id)

    async def follow(self, follower: str, followee: str) -> None:
        await self.social.follow(UserId(follower), UserId(followee))

    async def unfollow(self, follower: str, followee: str) -> None:
        await self.social.unfollow(UserId(follower), UserId(followee))

    async def relay(self, limit: int = 1_000) -> int:
        return await self.outbox.relay(self.bus.publish, limit=limit)

    async def drain(self) -> None:
        """Relay everything, restart the consumer, and apply and commit until nothing is left."""
        while await self.relay():
            pass
        self.bus.rewind()
        while deliveries := self.bus.take(100):
            for delivery in deliveries:
                await self.processor.apply(delivery.event)
            await self.bus.commit(deliveries)

    async def feed(
        self, user: str, *, limit: int | None = None, cursor: str | None = None, viewer: str | None = None
    ) -> Page[Post]:
        """A page of ``user``'s home feed as ``viewer`` (the user by default) reads it."""
        rendered = await self.home_feeds.rendered(
            UserId(viewer or user), UserId(user), limit=limit, cursor=cursor, render=_encode_page
        )
        return _decode_page(rendered)

    async def whole_feed(self, user: str, page_sizes: list[int] | None = None) -> list[Post]:
        """Every post of the feed, page by page, cycling through ``page_sizes``."""
        sizes = page_sizes or [self.policies.default_page_size]
        found: list[Post] = []
        cursor: str | None = None
        for turn in range(100_000):
            page = await self.feed(user, limit=sizes[turn % len(sizes)], cursor=cursor)
            found += page.items
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor
        raise AssertionError("the feed did not end")

    async def timeline(self, author: str, *, limit: int | None = None, cursor: str | None = None) -> Page[Post]:
        return await self.posting.timeline(UserId(author), limit=limit, cursor=cursor)

    async def followers(self, user: str, *, limit: int | None = None, cursor: str | None = None) -> Page[UserId]:
        return await self.social.followers(UserId(user), limit=limit, cursor=cursor)

    async def following(self, user: str, *, limit: int | None = None, cursor: str | None = None) -> Page[UserId]:
        return await self.social.following(UserId(user), limit=limit, cursor=cursor)

    async def profile(self, user: str) -> Profile:
        return await self.posting.profile(UserId(user))

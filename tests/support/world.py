"""Every port on its in-memory adapter, with the use cases bound to them, for tests to drive."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import msgspec
from dependency_injector import providers

from feedcore import (
    CelebrityWindows,
    Clock,
    FeedCache,
    FeedProcessor,
    FeedReader,
    FeedUnitOfWork,
    IdempotencyLedger,
    Outbox,
    Page,
    Policies,
    Post,
    PostBodies,
    PostId,
    PostStore,
    Profile,
    SocialGraph,
    UserId,
)
from feedcore.adapters.memory import InMemoryEventBus, ManualClock
from feedcore.entrypoints.container import Caches, MemoryStorage, build_containers
from feedcore.entrypoints.settings import Settings

_STORAGE_PORTS = ("posts", "graph", "feeds", "ledger", "unit_of_work", "outbox")


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
    """The storage ports as the embedded service wires them (entrypoints.container)."""
    storage = MemoryStorage(settings=Settings(), clock=clock)
    return Adapters(**{name: getattr(storage, name)() for name in _STORAGE_PORTS})


def _settings(policies: Policies) -> Settings:
    """Embedded settings that carry ``policies`` (the container sizes the caches from them)."""
    return Settings(
        celebrity_threshold=policies.celebrity_threshold,
        backfill_limit=policies.backfill_limit,
        cache_window=policies.cache_window,
        fanout_chunk=policies.fanout_chunk,
    )


_encode_page = msgspec.json.Encoder().encode
_decode_page = msgspec.json.Decoder(Page[Post]).decode


class World:
    """The embedded service's wiring (entrypoints.container) with a manual clock, for tests to
    drive: storage from ``adapters`` when given, the caches from ``caches`` (none when ``cached`` is
    False), the use cases bound to them. Feeds are read rendered and decoded again, as the HTTP API
    serves them, so that kept pages are read as well."""

    def __init__(
        self,
        policies: Policies | None = None,
        *,
        partitions: int = 4,
        cached: bool = True,
        caches: tuple[FeedCache, CelebrityWindows, PostBodies] | None = None,
        adapters: Callable[[Clock], Adapters] | None = None,
    ) -> None:
        self.policies = policies or Policies()
        self.clock = ManualClock()
        built = build_containers(_settings(self.policies))
        app, storage = built.app, built.storage
        app.clock.override(providers.Object(self.clock))
        app.policies.override(providers.Object(self.policies))
        app.bus.override(providers.Object(InMemoryEventBus(partitions=partitions)))
        if adapters is not None:
            given = adapters(self.clock)
            for name in _STORAGE_PORTS:
                getattr(storage, name).override(providers.Object(getattr(given, name)))
        if caches is not None or not cached:
            trio = caches if cached else None
            chosen = Caches(feeds=trio[0], celebrities=trio[1], bodies=trio[2]) if trio else Caches()
            storage.caches.override(providers.Object(chosen))
        self._app = app
        self.ids = app.ids()
        self.outbox: Outbox = storage.outbox()
        self.posts: PostStore = storage.posts()
        self.graph: SocialGraph = storage.graph()
        self.feeds: FeedReader = storage.feeds()
        self.ledger: IdempotencyLedger = storage.ledger()
        self.unit_of_work: FeedUnitOfWork = storage.unit_of_work()
        self.cache: FeedCache | None = app.cache()
        self.celebrity_windows: CelebrityWindows | None = app.celebrity_windows()
        self.bodies: PostBodies | None = app.bodies()
        self.bus: InMemoryEventBus = app.bus()
        self.processor = self.make_processor(self.cache)
        self.home_feeds = app.home_feeds()
        #: The use cases of posts and of the graph, over this world's ports.
        self.posting = app.posts()
        self.social = app.social()

    def make_processor(
        self,
        cache: FeedCache | None,
        celebrity_windows: CelebrityWindows | None = None,
        bodies: PostBodies | None = None,
    ) -> FeedProcessor:
        """The wiring's processor, on other caches than the world's where given."""
        processor: FeedProcessor = self._app.processor(
            consumer="feedcore-test",
            cache=cache,
            celebrity_windows=celebrity_windows or self.celebrity_windows,
            bodies=bodies or self.bodies,
        )
        return processor

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

    async def mute(self, user: str, author: str) -> None:
        await self.social.mute(UserId(user), UserId(author))

    async def unmute(self, user: str, author: str) -> None:
        await self.social.unmute(UserId(user), UserId(author))

    async def block(self, blocker: str, blocked: str) -> None:
        await self.social.block(UserId(blocker), UserId(blocked))

    async def unblock(self, blocker: str, blocked: str) -> None:
        await self.social.unblock(UserId(blocker), UserId(blocked))

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

"""The composition root: the only place that knows which adapter serves which port."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from dependency_injector import containers, providers
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

from adapters.memory import (
    InMemoryEventBus,
    InMemoryFeedCache,
    InMemoryFeedStore,
    InMemoryFeedUnitOfWork,
    InMemoryIdempotencyKeys,
    InMemoryIdempotencyLedger,
    InMemoryOutbox,
    InMemoryPostStore,
    InMemoryRateLimiter,
    InMemorySocialGraph,
)
from adapters.system import SystemClock
from entrypoints.auth import Tokens
from entrypoints.settings import Settings
from feedcore import (
    Clock,
    FeedCache,
    FeedProcessor,
    FeedReader,
    IdempotencyKeys,
    IdGenerator,
    Policies,
    PostStore,
    SnowflakeIdGenerator,
    SocialGraph,
)


class RateLimiter(Protocol):
    async def acquire(self, key: str) -> float:
        """Take one token; returns 0 when granted, else the seconds until one is available."""
        ...


class _Unlimited:
    async def acquire(self, key: str) -> float:  # the same signature as the real one
        return 0.0


@dataclass(frozen=True, kw_only=True, slots=True)
class Services:
    """What the HTTP handlers are given: ports and policies, never concrete adapters."""

    posts: PostStore
    graph: SocialGraph
    feeds: FeedReader
    cache: FeedCache | None
    keys: IdempotencyKeys
    ids: IdGenerator
    clock: Clock
    policies: Policies
    tokens: Tokens
    rate_limiter: RateLimiter
    registry: CollectorRegistry


def _rate_limiter(settings: Settings) -> RateLimiter:
    if settings.rate_limit_per_second == 0:
        return _Unlimited()
    return InMemoryRateLimiter(rate=settings.rate_limit_per_second, burst=settings.rate_limit_burst)


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


class EmbeddedContainer(containers.DeclarativeContainer):
    """Every port on its in-memory adapter, in one process; nothing is persisted."""

    settings = providers.Dependency(instance_of=Settings)
    secret = providers.Dependency(instance_of=str)

    policies = providers.Singleton(lambda settings: settings.policies, settings)
    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(SnowflakeIdGenerator, clock, node=settings.provided.node_id)
    registry = providers.Singleton(_registry)
    tokens = providers.Singleton(Tokens, secret)
    rate_limiter = providers.Singleton(_rate_limiter, settings)

    outbox = providers.Singleton(InMemoryOutbox)
    keys = providers.Singleton(
        InMemoryIdempotencyKeys,
        clock,
        ttl=providers.Factory(lambda s: timedelta(hours=s.idempotency_ttl_hours), settings),
    )
    posts = providers.Singleton(InMemoryPostStore, outbox, keys)
    graph = providers.Singleton(InMemorySocialGraph, outbox)
    feeds = providers.Singleton(InMemoryFeedStore)
    ledger = providers.Singleton(InMemoryIdempotencyLedger)
    unit_of_work = providers.Singleton(InMemoryFeedUnitOfWork, feeds, ledger)
    cache = providers.Singleton(InMemoryFeedCache, window=policies.provided.cache_window)
    bus = providers.Singleton(InMemoryEventBus)
    processor = providers.Singleton(
        FeedProcessor,
        consumer="feedcore-embedded",
        posts=posts,
        graph=graph,
        unit_of_work=unit_of_work,
        cache=cache,
        policies=policies,
    )

    services = providers.Singleton(
        Services,
        posts=posts,
        graph=graph,
        feeds=feeds,
        cache=cache,
        keys=keys,
        ids=ids,
        clock=clock,
        policies=policies,
        tokens=tokens,
        rate_limiter=rate_limiter,
        registry=registry,
    )


def embedded_container(settings: Settings, secret: str) -> EmbeddedContainer:
    settings.check()
    return EmbeddedContainer(settings=settings, secret=secret)

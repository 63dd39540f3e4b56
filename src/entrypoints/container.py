"""The composition root: the only place that knows which adapter serves which port."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import timedelta
from operator import attrgetter
from typing import Any, TypeVar

import psycopg
from dependency_injector import containers, providers
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from redis.asyncio import Redis

from feedcore import (
    CelebrityWindows,
    Clock,
    FeedCache,
    FeedChanges,
    FeedProcessor,
    Health,
    HomeFeeds,
    LiveFeeds,
    PostBodies,
    Posts,
    RateLimiter,
    SnowflakeIdGenerator,
    Social,
)
from feedcore.adapters.memory import (
    InMemoryCelebrityWindows,
    InMemoryEventBus,
    InMemoryFeedCache,
    InMemoryFeedChanges,
    InMemoryFeedStore,
    InMemoryFeedUnitOfWork,
    InMemoryIdempotencyLedger,
    InMemoryOutbox,
    InMemoryPostBodies,
    InMemoryPostStore,
    InMemoryRateLimiter,
    InMemorySocialGraph,
)
from feedcore.adapters.metrics import Metrics, process_registry
from feedcore.adapters.postgres import (
    LeasedIdGenerator,
    NodeLease,
    OutboxBell,
    PostgresFeedStore,
    PostgresFeedUnitOfWork,
    PostgresHealth,
    PostgresIdempotencyLedger,
    PostgresOutbox,
    PostgresPostStore,
    PostgresRetention,
    PostgresSocialGraph,
    connection_pool,
)
from feedcore.adapters.redis import (
    Lanes,
    RedisCelebrityWindows,
    RedisClient,
    RedisFeedCache,
    RedisFeedChanges,
    RedisOutages,
    RedisPostBodies,
    redis_client,
)
from feedcore.adapters.system import SystemClock
from feedcore.entrypoints.auth import Tokens
from feedcore.entrypoints.settings import Settings

T = TypeVar("T")


class _Unlimited:
    async def acquire(self, key: str) -> float:  # the same signature as the real one
        return 0.0


@dataclass(frozen=True, kw_only=True, slots=True)
class Caches:
    """The caches the read path and the processor keep in line: none, in this process, or Redis."""

    feeds: FeedCache | None = None
    celebrities: CelebrityWindows | None = None
    bodies: PostBodies | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Services:
    """What the HTTP handlers are given: the use cases, and what serving needs besides."""

    home_feeds: HomeFeeds
    live_feeds: LiveFeeds
    posts: Posts
    social: Social
    tokens: Tokens
    rate_limiter: RateLimiter
    metrics: Metrics
    health: Health
    stream_heartbeat_seconds: float = 15.0


async def awaited(value: T | Awaitable[T]) -> T:
    """What a provider gave: async providers (those with async resources) give awaitables."""
    return await value if inspect.isawaitable(value) else value


def _rate_limiter(settings: Settings) -> RateLimiter:
    if settings.rate_limit_per_second == 0:
        return _Unlimited()
    return InMemoryRateLimiter(rate=settings.rate_limit_per_second, burst=settings.rate_limit_burst)


def _caches(settings: Settings, redis: RedisClient | None, lanes: Lanes | None, metrics: Metrics) -> Caches:
    """Redis when configured (shared by every process). Else caches in this process, but only when
    this process also applies the events (no Kafka): otherwise they would go stale."""
    window = settings.policies.cache_window
    if redis is not None:
        prefix = settings.redis_prefix
        guard = RedisOutages(
            redis,
            prefix=prefix,
            keep=[RedisFeedCache.registry(prefix)],
            on_fallback=lambda operation: metrics.fell_back("redis", operation),
        )
        return Caches(
            feeds=RedisFeedCache(redis, prefix=prefix, window=window, guard=guard, lanes=lanes),
            celebrities=RedisCelebrityWindows(redis, prefix=prefix, window=window, guard=guard, lanes=lanes),
            bodies=RedisPostBodies(redis, prefix=prefix, guard=guard, lanes=lanes),
        )
    if settings.kafka_bootstrap:
        return Caches()
    return Caches(
        feeds=InMemoryFeedCache(window=window),
        celebrities=InMemoryCelebrityWindows(window=window),
        bodies=InMemoryPostBodies(),
    )


def _feed_changes(settings: Settings, redis: RedisClient | None) -> FeedChanges | None:
    """Through Redis when configured (every server hears every processor); else in this process,
    when it applies the events itself; else none, and streams poll their feeds."""
    if redis is not None:
        return RedisFeedChanges(redis, prefix=settings.redis_prefix)
    if settings.kafka_bootstrap:
        return None
    return InMemoryFeedChanges()


async def _redis(settings: Settings) -> AsyncIterator[RedisClient | None]:
    if not settings.redis_url:
        yield None
        return
    client = redis_client(
        settings.redis_url, max_connections=settings.redis_pool_max, timeout=settings.redis_timeout_seconds
    )
    try:
        yield client
    finally:
        await client.aclose()


async def _lanes(redis: RedisClient | None, settings: Settings) -> AsyncIterator[Lanes | None]:
    """As many lanes as the pool has connections: a request never waits for one. (Lanes go to one
    server: a cluster's commands go through its client, which knows which node has which slot.)"""
    if not isinstance(redis, Redis):
        yield None
        return
    lanes = Lanes.beside(redis, size=settings.redis_pool_max)
    try:
        yield lanes
    finally:
        await lanes.close()


def _ttl(settings: Settings) -> timedelta:
    return timedelta(hours=settings.idempotency_ttl_hours)


def _retention(pool: AsyncConnectionPool[Any], settings: Settings) -> PostgresRetention:
    return PostgresRetention(
        pool, key_ttl=_ttl(settings), ledger_retention=timedelta(hours=settings.ledger_retention_hours)
    )


class _AlwaysReady:
    async def ready(self) -> bool:
        return True


class MemoryStorage(containers.DeclarativeContainer):
    """The storage ports on their in-memory adapters: nothing is persisted."""

    settings = providers.Dependency(instance_of=Settings)
    clock: providers.Dependency[Clock] = providers.Dependency()
    metrics = providers.Dependency(instance_of=Metrics)

    outbox = providers.Singleton(InMemoryOutbox)
    polled_outbox = outbox
    feeds = providers.Singleton(InMemoryFeedStore)
    graph = providers.Singleton(InMemorySocialGraph, outbox)
    posts = providers.Singleton(
        InMemoryPostStore, outbox, clock, feeds=feeds, graph=graph, key_ttl=providers.Callable(_ttl, settings)
    )
    ledger = providers.Singleton(InMemoryIdempotencyLedger)
    unit_of_work = providers.Singleton(InMemoryFeedUnitOfWork, feeds, graph, ledger)
    health = providers.Singleton(_AlwaysReady)
    caches = providers.Singleton(_caches, settings, None, None, metrics)
    feed_changes = providers.Singleton(_feed_changes, settings, None)
    ids = providers.Singleton(SnowflakeIdGenerator, clock, node=settings.provided.node_id)
    #: Nothing to prune: the in-memory stores forget by themselves.
    retention: providers.Object[PostgresRetention | None] = providers.Object(None)
    #: Exceptions that mean "the store is down, try later" rather than a bug.
    unavailable_errors: providers.Object[tuple[type[Exception], ...]] = providers.Object(())


async def _pool(settings: Settings) -> AsyncIterator[AsyncConnectionPool[Any]]:
    pool = connection_pool(
        settings.database_url or "",
        min_size=settings.database_pool_min,
        max_size=settings.database_pool_max,
        timeout=settings.database_timeout_seconds,
    )
    # Not waiting for connections: the service starts even while PostgreSQL is down, says so on
    # /readyz, and answers 503 until it is back.
    await pool.open(wait=False)
    try:
        yield pool
    finally:
        await pool.close()


class PostgresStorage(containers.DeclarativeContainer):
    """The storage ports on PostgreSQL, through one connection pool."""

    settings = providers.Dependency(instance_of=Settings)
    clock: providers.Dependency[Clock] = providers.Dependency()
    metrics = providers.Dependency(instance_of=Metrics)

    pool = providers.Resource(_pool, settings)
    #: This process's writes wake its relay; it looks at the table each second besides.
    bell = providers.Singleton(OutboxBell)
    outbox = providers.Singleton(PostgresOutbox, pool, bell=bell, poll_every=1.0)
    #: The outbox for a relay in a process that writes nothing itself (`feedcore relay`): it polls.
    polled_outbox = providers.Singleton(PostgresOutbox, pool, poll_every=0.05)
    posts = providers.Singleton(PostgresPostStore, pool, key_ttl=providers.Callable(_ttl, settings), bell=bell)
    graph = providers.Singleton(PostgresSocialGraph, pool, bell=bell)
    feeds = providers.Singleton(PostgresFeedStore, pool)
    ledger = providers.Singleton(PostgresIdempotencyLedger, pool)
    unit_of_work = providers.Singleton(PostgresFeedUnitOfWork, pool)
    health = providers.Singleton(PostgresHealth, pool)
    retention = providers.Singleton(_retention, pool, settings)
    redis = providers.Resource(_redis, settings)
    lanes = providers.Resource(_lanes, redis, settings)
    caches = providers.Singleton(_caches, settings, redis, lanes, metrics)
    feed_changes = providers.Singleton(_feed_changes, settings, redis)
    #: Servers sharing the database lease distinct node numbers; the lease is taken by ``serve``.
    ids = providers.Singleton(
        LeasedIdGenerator,
        clock,
        providers.Singleton(NodeLease, settings.provided.database_url, first=settings.provided.node_id),
    )
    unavailable_errors: providers.Object[tuple[type[Exception], ...]] = providers.Object(
        (psycopg.OperationalError, PoolTimeout)
    )


class AppContainer(containers.DeclarativeContainer):
    """Everything but storage, which comes from the storage container the settings choose."""

    settings = providers.Dependency(instance_of=Settings)
    secret = providers.Dependency(instance_of=str)
    clock = providers.Singleton(SystemClock)
    storage = providers.DependenciesContainer()

    policies = providers.Singleton(lambda settings: settings.policies, settings)
    ids = storage.ids
    registry = providers.Singleton(process_registry)
    metrics = providers.Singleton(Metrics, registry)
    tokens = providers.Singleton(Tokens, secret)
    rate_limiter = providers.Singleton(_rate_limiter, settings)
    caches = storage.caches
    cache = providers.Callable(attrgetter("feeds"), caches)
    celebrity_windows = providers.Callable(attrgetter("celebrities"), caches)
    bodies = providers.Callable(attrgetter("bodies"), caches)
    bus = providers.Singleton(InMemoryEventBus)
    #: Called with the consumer's name: the processor of `feedcore process`, or the in-process one.
    processor = providers.Factory(
        FeedProcessor,
        posts=storage.posts,
        graph=storage.graph,
        unit_of_work=storage.unit_of_work,
        policies=policies,
        cache=cache,
        celebrity_windows=celebrity_windows,
        bodies=bodies,
        changes=storage.feed_changes,
        telemetry=metrics,
    )
    home_feeds = providers.Singleton(
        HomeFeeds,
        posts=storage.posts,
        graph=storage.graph,
        feeds=storage.feeds,
        policies=policies,
        cache=cache,
        celebrity_windows=celebrity_windows,
        bodies=bodies,
        telemetry=metrics,
    )
    posts = providers.Singleton(
        Posts,
        posts=storage.posts,
        graph=storage.graph,
        ids=ids,
        clock=clock,
        policies=policies,
        cache=cache,
        bodies=bodies,
        telemetry=metrics,
    )
    live_feeds = providers.Singleton(
        LiveFeeds,
        feeds=home_feeds,
        changes=storage.feed_changes,
        max_streams=settings.provided.max_streams,
        poll_seconds=settings.provided.stream_poll_seconds,
    )
    social = providers.Singleton(Social, graph=storage.graph, ids=ids, clock=clock, policies=policies, cache=cache)

    services = providers.Singleton(
        Services,
        home_feeds=home_feeds,
        live_feeds=live_feeds,
        posts=posts,
        social=social,
        tokens=tokens,
        rate_limiter=rate_limiter,
        metrics=metrics,
        health=storage.health,
        stream_heartbeat_seconds=settings.provided.stream_heartbeat_seconds,
    )


@dataclass(frozen=True, slots=True)
class Containers:
    app: AppContainer
    storage: MemoryStorage | PostgresStorage


def build_containers(settings: Settings, secret: str | None = None) -> Containers:
    """The containers the settings call for; the storage one must be initialised before use. Only
    a server needs the token ``secret``."""
    settings.check(serving=secret is not None)
    app = AppContainer(settings=settings, secret=secret)
    storage: MemoryStorage | PostgresStorage = (
        PostgresStorage(settings=settings, clock=app.clock, metrics=app.metrics)
        if settings.database_url
        else MemoryStorage(settings=settings, clock=app.clock, metrics=app.metrics)
    )
    app.storage.override(storage)
    return Containers(app=app, storage=storage)


@contextlib.asynccontextmanager
async def running(settings: Settings, secret: str | None = None) -> AsyncIterator[Containers]:
    """The containers the settings call for, their resources (pools, clients) open until the end."""
    built = build_containers(settings, secret)
    await awaited(built.storage.init_resources())
    try:
        yield built
    finally:
        await awaited(built.storage.shutdown_resources())


@contextlib.asynccontextmanager
async def node_lease(built: Containers) -> AsyncIterator[None]:
    """This server's node number (in its post ids) held while serving, where servers lease one."""
    ids = await awaited(built.app.ids())
    if not isinstance(ids, LeasedIdGenerator):
        yield
        return
    await ids.start()
    try:
        yield
    finally:
        await ids.stop()


def embedded_container(settings: Settings, secret: str) -> AppContainer:
    """The in-memory application container, ready to use (no resources to initialise)."""
    return build_containers(settings, secret).app

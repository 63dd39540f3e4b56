"""In-memory adapters for every port: what the embedded server runs on and what tests drive."""

from adapters.memory.bus import InMemoryEventBus
from adapters.memory.cache import InMemoryCelebrityWindows, InMemoryFeedCache, InMemoryPostBodies
from adapters.memory.clock import ManualClock
from adapters.memory.feeds import InMemoryFeedStore, InMemoryFeedUnitOfWork, InMemoryIdempotencyLedger
from adapters.memory.graph import InMemorySocialGraph
from adapters.memory.outbox import InMemoryOutbox
from adapters.memory.posts import InMemoryPostStore
from adapters.memory.ratelimit import InMemoryRateLimiter

__all__ = [
    "InMemoryCelebrityWindows",
    "InMemoryEventBus",
    "InMemoryFeedCache",
    "InMemoryFeedStore",
    "InMemoryFeedUnitOfWork",
    "InMemoryIdempotencyLedger",
    "InMemoryOutbox",
    "InMemoryPostBodies",
    "InMemoryPostStore",
    "InMemoryRateLimiter",
    "InMemorySocialGraph",
    "ManualClock",
]

"""In-memory adapters for every port: what the embedded server runs on and what tests drive."""

from feedcore.adapters.memory.bus import InMemoryEventBus
from feedcore.adapters.memory.cache import InMemoryCelebrityWindows, InMemoryFeedCache, InMemoryPostBodies
from feedcore.adapters.memory.changes import InMemoryFeedChanges
from feedcore.adapters.memory.clock import ManualClock
from feedcore.adapters.memory.feeds import InMemoryFeedStore, InMemoryFeedUnitOfWork, InMemoryIdempotencyLedger
from feedcore.adapters.memory.graph import InMemorySocialGraph
from feedcore.adapters.memory.outbox import InMemoryOutbox
from feedcore.adapters.memory.posts import InMemoryPostStore
from feedcore.adapters.memory.ratelimit import InMemoryRateLimiter

__all__ = [
    "InMemoryCelebrityWindows",
    "InMemoryEventBus",
    "InMemoryFeedChanges",
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

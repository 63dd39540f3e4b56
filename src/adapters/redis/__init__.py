"""Redis adapters (redis-py asyncio): the feed cache."""

from adapters.redis.cache import RedisFeedCache
from adapters.redis.connection import HiredisPackedConnection
from adapters.redis.resilient import ResilientFeedCache

__all__ = ["HiredisPackedConnection", "RedisFeedCache", "ResilientFeedCache"]

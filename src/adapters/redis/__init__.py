"""Redis adapters (redis-py asyncio): the feed cache."""

from adapters.redis.cache import RedisFeedCache
from adapters.redis.resilient import ResilientFeedCache

__all__ = ["RedisFeedCache", "ResilientFeedCache"]

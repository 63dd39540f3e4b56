"""Redis adapters (redis-py asyncio): the feed cache."""

from adapters.redis.cache import RedisFeedCache

__all__ = ["RedisFeedCache"]

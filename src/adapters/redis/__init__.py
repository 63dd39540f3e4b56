"""Redis adapters (redis-py asyncio): the feed cache, celebrity windows and post bodies."""

from adapters.redis.cache import Guard, RedisCelebrityWindows, RedisFeedCache, RedisPostBodies, Unguarded
from adapters.redis.connection import HiredisPackedConnection, Lanes
from adapters.redis.resilient import RedisOutages

__all__ = [
    "Guard",
    "HiredisPackedConnection",
    "Lanes",
    "RedisCelebrityWindows",
    "RedisFeedCache",
    "RedisOutages",
    "RedisPostBodies",
    "Unguarded",
]

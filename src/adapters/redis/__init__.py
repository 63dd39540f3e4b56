"""Redis adapters (redis-py asyncio): the feed cache, celebrity windows and post bodies.

Keys, under a prefix (``feedcore:`` by default)::

    feed:{user}          a user's cached window (a sorted set; the user is the hash tag)
    pages:{user}         the user's rendered first pages, and the stamp they are kept under
    seen:{user}          the celebrities the user sees, after the version of the set of celebrities
                         they were worked out for (one line each)
    cached               every user whose feed was ever cached (a set)
    celebrity:{author}   a celebrity's posts that were not fanned out (a sorted set)
    post:{id}            a post's body (msgspec JSON), or "-" once it is deleted
    feeds-changed        the pub/sub channel of feed changes, for live streams

Everything of one user's is in the user's hash slot, so that every script and transaction touches
one slot of a cluster. Bodies are read with one MGET, which a cluster's client splits by slot
(``redis_client`` gives one for a ``redis+cluster://`` URL).

Given :class:`Lanes`, the single commands of reads (scripts, MGET) go through them rather than
through the client's pool.
"""

from feedcore.adapters.redis.celebrity_windows import RedisCelebrityWindows
from feedcore.adapters.redis.connection import HiredisPackedConnection, Lanes, RedisClient, redis_client
from feedcore.adapters.redis.feed_cache import RedisFeedCache
from feedcore.adapters.redis.feed_changes import RedisFeedChanges
from feedcore.adapters.redis.post_bodies import RedisPostBodies
from feedcore.adapters.redis.resilient import Guard, RedisOutages, Unguarded

__all__ = [
    "Guard",
    "HiredisPackedConnection",
    "Lanes",
    "RedisCelebrityWindows",
    "RedisClient",
    "RedisFeedCache",
    "RedisFeedChanges",
    "RedisOutages",
    "RedisPostBodies",
    "Unguarded",
    "redis_client",
]

"""Redis down while the stack runs: reads fall back to PostgreSQL, writes flow on, and once Redis
is back no cached feed is left missing what happened meanwhile (nor a page rendered from one)."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import redis
import redis.asyncio as aioredis
from infra.tcp_proxy import TcpProxy

from feedcore.adapters.redis import RedisClient, RedisFeedCache
from feedcore.adapters.redis.resilient import RedisOutages
from tests.integration.conftest import service_url
from tests.integration.stack import isolated_stack, scrape, wait_until

POSTS_DURING_OUTAGE = 5


def cached_ids(client: redis.Redis, key: str) -> list[str]:
    members = client.zrange(key, "+", "[0", desc=True, bylex=True)
    return [str(int(cast("bytes", member))) for member in members]


def test_redis_down_reads_fall_back_and_no_cached_feed_is_left_stale(tmp_path: Path, redis_prefix: str) -> None:
    address = urlsplit(service_url("FEEDCORE_REDIS_URL"))
    prefix = f"{redis_prefix}{uuid.uuid4().hex[:8]}:"
    key = f"{prefix}feed:{{ana}}"
    direct = redis.Redis(host=address.hostname or "127.0.0.1", port=address.port or 6379)
    with isolated_stack(tmp_path) as stack, TcpProxy(address.hostname or "127.0.0.1", address.port or 6379) as proxy:
        through_proxy = {"FEEDCORE_REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0", "FEEDCORE_REDIS_PREFIX": prefix}
        server = stack.serve(**through_proxy)
        processor = stack.spawn("process", **through_proxy)
        try:
            with stack.client("bo") as bo:
                posted = [stack.first_post_in_feed("ana", "bo")]
                # That read cached ana's feed in Redis; the processor writes through to it.
                assert cached_ids(direct, key) == posted

                proxy.cut()
                # The processor goes on applying them to PostgreSQL, and reads are served from there.
                stack.post_while_away(bo, "ana", posted, count=POSTS_DURING_OUTAGE, what="Redis")
                started = time.monotonic()
                assert stack.feed_ids("ana") == posted[::-1]
                assert time.monotonic() - started < 1.0, "a read waited for Redis"
                fallbacks = scrape(f"{stack.base_url}/metrics")
                assert fallbacks['feedcore_fallbacks_total{dependency="redis",operation="read"}'] >= 1
                # Redis itself still holds the copy from before the outage, without the new posts.
                assert cached_ids(direct, key) == posted[:1]

                proxy.restore()
                wait_until(
                    lambda: "dropped" in processor.output() and "dropped" in server.output(),
                    timeout=30,
                    what="both processes to drop the cached feeds once Redis answers",
                )
                assert stack.feed_ids("ana") == posted[::-1]
                assert cached_ids(direct, key) == posted[::-1]  # rebuilt from PostgreSQL, complete

                with stack.client("cy") as cy:
                    assert cy.post("/follow", json={"followee_id": "bo"}).status_code == 204
                after = bo.post("/posts", json={"content": "after the outage"}).json()["id"]
                wait_until(lambda: after in stack.feed_ids("ana"), timeout=30, what="a post after the outage")
                assert cached_ids(direct, key)[0] == after  # written through again

            for output in (server.output(), processor.output()):
                assert "Redis unavailable" in output
            assert processor.stop(signal.SIGTERM) == 0, processor.output()
            assert server.stop(signal.SIGTERM) == 0, server.output()
        finally:
            for leftover in direct.scan_iter(match=f"{prefix}*"):
                direct.delete(leftover)
            direct.close()


class PageKeptDuringScan:
    """Redis as a process recovering from an outage sees it while another process, which never lost
    Redis, keeps a rendered page from a stale window just after the first scan passed its key."""

    def __init__(self, client: aioredis.Redis, page: str) -> None:
        self._client = client
        self._page = page
        self.scans = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def scan_iter(self, **options: Any) -> AsyncIterator[Any]:
        self.scans += 1
        async for key in self._client.scan_iter(**options):
            yield key
        if self.scans == 1:
            await self._client.hset(self._page, "page", "rendered from the stale window")


async def test_the_drop_after_an_outage_catches_what_others_kept_while_it_scanned(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    prefix = f"{redis_prefix}recovery-{uuid.uuid4().hex[:8]}:"
    registry, window, page = RedisFeedCache.registry(prefix), f"{prefix}feed:{{ana}}", f"{prefix}pages:{{ana}}"
    await redis_client.sadd(registry, "ana")
    await redis_client.zadd(window, {"!h0": 0})  # a window that may have missed this process's writes
    client = PageKeptDuringScan(redis_client, page)
    guard = RedisOutages(cast("RedisClient", client), prefix=prefix, keep=[registry], pause=0.01)

    async def away() -> str:
        raise aioredis.ConnectionError("Redis is away")

    assert await guard.run("read", away, "fell back") == "fell back"
    assert guard._recovery is not None
    await asyncio.wait_for(guard._recovery, timeout=10)

    assert client.scans == 2
    assert await redis_client.exists(window, page) == 0, "a stale window or page outlived the recovery"
    # The registry is no copy of anything: dropped while a fill was under way, that fill's feed
    # would be left out of every later post's fan-out.
    assert await redis_client.smembers(registry) == {b"ana"}

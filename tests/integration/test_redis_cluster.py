"""feedcore on a Redis Cluster: the cluster refuses what would cross slots, and a master lost and
restarted empty leaves reads served from PostgreSQL meanwhile and no cached feed stale after.

(The cache contracts and the PostgreSQL state machine run on the cluster too: with the refusal
shown here, their passing there is the proof that every script and multi-key command keeps its keys
in one slot.)"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from pathlib import Path
from typing import cast

import pytest
import redis
import redis.asyncio as aioredis
from redis.cluster import RedisCluster

from tests.integration.conftest import service_url
from tests.integration.stack import isolated_stack, scrape, wait_until

POSTS_DURING_OUTAGE = 5


async def test_the_cluster_refuses_a_command_whose_keys_lie_in_two_slots(redis_cluster: aioredis.RedisCluster) -> None:
    # Sent to the node of the first key, past the client's own check, as a client that did not
    # check would send it.
    node = redis_cluster.get_node_from_key("{ana}")
    with pytest.raises(redis.ResponseError, match="don't hash to the same slot"):  # CROSSSLOT
        await redis_cluster.execute_command("MGET", "{ana}:a", "{bo}:b", target_nodes=node)
    # One hash tag, one slot: the same command is served.
    assert await redis_cluster.execute_command("MGET", "{ana}:a", "{ana}:b", target_nodes=node) == [None, None]


def cached_ids(client: RedisCluster, key: str) -> list[str]:
    members = client.zrange(key, "+", "[0", desc=True, bylex=True)
    return [str(int(member)) for member in cast("list[bytes]", members)]


def test_a_master_lost_and_restarted_empty_leaves_no_cached_feed_stale(tmp_path: Path, redis_prefix: str) -> None:
    url = service_url("FEEDCORE_TEST_REDIS_CLUSTER_URL")
    prefix = f"{redis_prefix}{uuid.uuid4().hex[:8]}:"
    key = f"{prefix}feed:{{ana}}"
    direct = RedisCluster.from_url(url.replace("+cluster", "", 1))
    on_cluster = {"FEEDCORE_REDIS_URL": url, "FEEDCORE_REDIS_PREFIX": prefix}
    with isolated_stack(tmp_path) as stack:
        server = stack.serve(**on_cluster)
        processor = stack.spawn("process", **on_cluster)
        try:
            with stack.client("bo") as bo:
                posted = [stack.first_post_in_feed("ana", "bo")]
                assert cached_ids(direct, key) == posted

                # The master holding ana's feed dies, and with it everything it held.
                node = direct.get_node_from_key(key)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                master = redis.Redis(host=node.host, port=node.port)
                about = master.info("server")
                pid, config = int(about["process_id"]), str(about["config_file"])
                os.kill(pid, signal.SIGKILL)

                deleted = posted.pop(0)
                assert bo.delete(f"/posts/{deleted}").status_code == 204
                stack.post_while_away(bo, "ana", posted, count=POSTS_DURING_OUTAGE, what="a master")
                assert stack.feed_ids("ana") == posted[::-1]
                fallbacks = scrape(f"{stack.base_url}/metrics")
                assert fallbacks['feedcore_fallbacks_total{dependency="redis",operation="read"}'] >= 1

                # Started again as it was, the master comes back empty, with its slots.
                # The config file the node was started with, read from the node itself.
                subprocess.run(["redis-server", config], check=True, capture_output=True)  # noqa: S603, S607
                wait_until(master.ping, timeout=30, what="the master to answer again")
                wait_until(
                    lambda: direct.cluster_info().get("cluster_state") == "ok",
                    timeout=30,
                    what="the cluster to cover every slot again",
                )
                wait_until(
                    lambda: "dropped" in processor.output() and "dropped" in server.output(),
                    timeout=30,
                    what="both processes to drop the cached feeds once the cluster answers",
                )
                assert stack.feed_ids("ana") == posted[::-1]
                assert cached_ids(direct, key) == posted[::-1]  # rebuilt from PostgreSQL, without the deleted post

                after = bo.post("/posts", json={"content": "after the failover"}).json()["id"]
                wait_until(lambda: after in stack.feed_ids("ana"), timeout=30, what="a post after the failover")
                assert cached_ids(direct, key)[0] == after  # written through again
            assert processor.stop(signal.SIGTERM) == 0, processor.output()
            assert server.stop(signal.SIGTERM) == 0, server.output()
        finally:
            for leftover in direct.scan_iter(match=f"{prefix}*"):
                direct.delete(leftover)
            direct.close()

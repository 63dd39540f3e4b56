"""A replicated Kafka cluster: three KRaft brokers, the topic in three copies written once two have
it, and one broker killed with ``kill -9`` while posts flow: the one coordinating the processors'
group (it leads partitions too). Every acknowledged post reaches each follower's feed once, no
request fails, and the relay and the processor carry on unrestarted."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from infra.infra import Kafka, kafka_cluster

from tests.integration.stack import free_port, isolated_stack, wait_until

POSTS = 60
FOLLOWERS = ("ana", "cy", "dee")


def coordinator(bootstrap: str, group: str) -> int:
    """The node id of the broker coordinating ``group``."""

    async def ask() -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            return int(await admin.find_coordinator(group))
        finally:
            await admin.close()

    return asyncio.run(ask())


@pytest.fixture
def brokers(tmp_path: Path) -> Iterator[list[Kafka]]:
    ports: set[int] = set()
    while len(ports) < 6:
        ports.add(free_port())
    chosen = sorted(ports)
    nodes = kafka_cluster(tmp_path / "kafka", [(chosen[n], chosen[n + 3]) for n in range(3)])
    try:
        yield nodes
    finally:
        # Killed, not stopped: the last node of a cluster would wait for a quorum to shut down.
        for node in nodes:
            if node.process is not None:
                node.process.kill()
                node.process.wait(timeout=30)
            node.down()


def test_a_broker_killed_while_posts_flow_loses_and_repeats_nothing(tmp_path: Path, brokers: list[Kafka]) -> None:
    bootstrap = ",".join(node.url() for node in brokers)
    with isolated_stack(tmp_path, FEEDCORE_KAFKA_BOOTSTRAP=bootstrap, FEEDCORE_KAFKA_REPLICATION="3") as stack:
        server = stack.serve()
        processor = stack.spawn("process")
        posted = [stack.first_post_in_feed("ana", "bo")]
        for follower in FOLLOWERS[1:]:
            with stack.client(follower) as client:
                assert client.post("/follow", json={"followee_id": "bo"}).status_code == 204
        halfway = threading.Event()
        failures: list[str] = []

        def post() -> None:
            with stack.client("bo") as bo:
                for number in range(POSTS):
                    created = bo.post("/posts", json={"content": f"while the brokers change, #{number}"})
                    if created.status_code != 201:
                        failures.append(f"{created.status_code} {created.text}")
                    else:
                        posted.append(created.json()["id"])
                    if number == POSTS // 3:
                        halfway.set()

        posting = threading.Thread(target=post)
        posting.start()
        assert halfway.wait(timeout=60)
        victim = brokers[coordinator(bootstrap, stack.settings["FEEDCORE_KAFKA_GROUP"]) - 1]
        assert victim.process is not None
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(timeout=30)
        posting.join(timeout=120)
        assert failures == []

        # (cy and dee followed after the first post, and a follow copies the author's posts in.)
        for follower in FOLLOWERS:
            wait_until(
                lambda: set(posted) <= set(stack.feed_ids(follower)),  # noqa: B023  # waited for at once
                timeout=120,
                what=f"every post in {follower}'s feed",
            )
            assert stack.feed_ids(follower) == posted[::-1]
            assert stack.scalar("SELECT count(*) FROM feed_entries WHERE user_id = %s", follower) == len(posted)
        assert stack.scalar("SELECT count(*) FROM outbox") == 0
        # Carried on without a restart, and stop cleanly.
        assert processor.stop(signal.SIGTERM) == 0, processor.output()
        assert server.stop(signal.SIGTERM) == 0, server.output()

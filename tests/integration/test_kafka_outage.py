"""Kafka stopped while posts are being accepted: every post gets its 201, and the relay catches up
after the broker returns.

The outage needs a broker of its own: this test runs a private one (infra.py's, on free ports, its
data under tmp_path), stops it and starts it again on the same data, so the topics survive.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from infra.infra import Kafka

from tests.integration.stack import free_port, isolated_stack, wait_until

POSTS_DURING_OUTAGE = 30
#: An accepted post touches PostgreSQL only: far below the relay's 10 s publish timeout.
QUICK = 2.0
#: What serve logs when a batch could not be published (entrypoints/worker.py).
RELAY_GAVE_UP = "outbox relay failed; retrying"


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[Kafka]:
    """A single-node KRaft broker of this test's, stopped at its end whatever happened."""
    port = free_port()
    controller_port = wait_until(lambda: (found := free_port()) != port and found, timeout=5, what="a second port")
    broker = Kafka(port=port, controller_port=controller_port, home=tmp_path / "kafka")
    try:
        broker.start()
        yield broker
    finally:
        broker.down()


def test_posts_are_accepted_while_kafka_is_down_and_relayed_once_it_is_back(
    tmp_path: Path, private_kafka: Kafka
) -> None:
    with isolated_stack(tmp_path, FEEDCORE_KAFKA_BOOTSTRAP=private_kafka.url()) as stack:
        server = stack.serve()
        processor = stack.spawn("process")
        with stack.client("bo") as bo:
            posted = [stack.first_post_in_feed("ana", "bo")]

            failures_before = server.output().count(RELAY_GAVE_UP)
            private_kafka.down()
            assert private_kafka.recorded_pid() is None

            for number in range(POSTS_DURING_OUTAGE):
                started = time.monotonic()
                response = bo.post("/posts", json={"content": f"while Kafka is away, #{number}"})
                took = time.monotonic() - started
                assert response.status_code == 201, response.text
                assert took < QUICK, f"post #{number} took {took:.1f}s with Kafka away"
                posted.append(response.json()["id"])
            # Nothing could leave: the events wait in the outbox, durable.
            assert stack.scalar("SELECT count(*) FROM outbox") > 0
            assert stack.scalar("SELECT count(*) FROM posts") == 1 + POSTS_DURING_OUTAGE
            # An outage longer than a publish may take: the relay gives its batch up (it stays in the
            # outbox) and retries; both processes wait the outage out rather than exit.
            wait_until(
                lambda: server.output().count(RELAY_GAVE_UP) > failures_before or server.popen.poll() is not None,
                timeout=45,
                what="the relay to give up a publish",
                interval=0.5,
            )
            assert server.popen.poll() is None, server.output()
            assert processor.popen.poll() is None, processor.output()
            assert stack.scalar("SELECT count(*) FROM outbox") == POSTS_DURING_OUTAGE

            private_kafka.start()  # the same ports and data: the topics and the group's offsets are back

            wait_until(lambda: stack.scalar("SELECT count(*) FROM outbox") == 0, timeout=90, what="the outbox to drain")
            wait_until(lambda: set(posted) <= set(stack.feed_ids("ana")), timeout=90, what="every post in ana's feed")
        # The batch the relay gave up may still leave the producer's buffer once the broker is back,
        # and it is published again from the outbox: the processor's ledger absorbs the duplicates.
        feed = stack.feed_ids("ana")
        assert sorted(feed) == sorted(posted), "each post exactly once"
        assert stack.scalar("SELECT count(*) FROM feed_entries WHERE user_id = 'ana'") == len(posted)

        assert processor.popen.poll() is None, f"the processor exited during the outage:\n{processor.output()}"
        assert processor.stop(signal.SIGTERM) == 0, processor.output()
        assert server.stop(signal.SIGTERM) == 0, server.output()

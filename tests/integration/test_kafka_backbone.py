"""The event path on the real services: HTTP -> PostgreSQL outbox -> relay -> Kafka -> processor -> feeds."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psycopg

from feedcore import Event, PostPublished
from feedcore.adapters.kafka import KafkaDeadLetters, KafkaRecordSource
from feedcore.entrypoints.consumer import EventConsumer, RetryPolicy
from feedcore.entrypoints.container import awaited, running
from feedcore.entrypoints.dead_letter_tools import dead_letters
from feedcore.entrypoints.kafka import consumer, create_topics, producer, started
from feedcore.entrypoints.processes import CONSUMER
from feedcore.entrypoints.settings import Settings
from tests.integration.stack import ROOT, Stack, isolated_stack, wait_until


def test_posts_reach_a_follower_s_feed_through_kafka_and_every_process_stops_cleanly(tmp_path: Path) -> None:
    with isolated_stack(tmp_path) as stack:
        server = stack.serve()
        relay = stack.spawn("relay")  # a second relay beside the server's: they share the outbox
        processor = stack.spawn("process")
        with stack.client("ana") as ana, stack.client("bo") as bo:
            assert ana.post("/follow", json={"followee_id": "bo"}).status_code == 204
            posted = []
            for number in range(40):
                created = bo.post("/posts", json={"content": f"through the backbone, #{number}"})
                assert created.status_code == 201, created.text
                posted.append(created.json()["id"])

        wait_until(lambda: set(posted) <= set(stack.feed_ids("ana")), timeout=30, what="the posts in ana's feed")
        # In the materialised feed, once each: the processor applied them (the API applies nothing here).
        assert stack.scalar("SELECT count(*) FROM feed_entries WHERE user_id = 'ana'") == len(posted)
        assert stack.feed_ids("ana") == posted[::-1]
        assert stack.scalar("SELECT count(*) FROM outbox") == 0

        started = time.monotonic()
        for process in (processor, relay, server):
            assert process.stop(signal.SIGTERM) == 0, process.output()
        assert time.monotonic() - started < 30


FOLLOWERS = 50_000


def test_a_processor_killed_mid_fan_out_leaves_every_follower_with_the_post_exactly_once(tmp_path: Path) -> None:
    # Small chunks make the fan-out of 50,000 followers take long enough to be caught in the middle.
    with isolated_stack(tmp_path, FEEDCORE_CELEBRITY_THRESHOLD="100000", FEEDCORE_FANOUT_CHUNK="50") as stack:
        stack.serve()
        with psycopg.connect(stack.database_url, autocommit=True) as connection:
            with connection.cursor().copy("COPY follows (follower_id, followee_id) FROM STDIN") as copy:
                for number in range(FOLLOWERS):
                    copy.write_row((f"fan-{number:05d}", "star"))
            connection.execute("INSERT INTO user_counts (user_id, followers) VALUES ('star', %s)", (FOLLOWERS,))
        with stack.client("star") as star:
            created = star.post("/posts", json={"content": "to fifty thousand feeds"})
            assert created.status_code == 201, created.text
            post_id = int(created.json()["id"])

        processor = stack.spawn("process")
        wait_until(
            lambda: stack.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND xact_start IS NOT NULL AND query LIKE '%%INSERT INTO feed_entries%%' AND pid <> pg_backend_pid()"
            ),
            timeout=60,
            what="the processor to be fanning the post out",
            interval=0.005,
        )
        time.sleep(0.1)
        processor.stop(signal.SIGKILL)
        # Killed in the middle: the fan-out's transaction and its ledger mark are both gone.
        assert stack.scalar("SELECT count(*) FROM processed_events") == 0
        assert stack.scalar("SELECT count(*) FROM feed_entries WHERE post_id = %s", post_id) == 0

        restarted = stack.spawn("process")
        wait_until(
            lambda: stack.scalar("SELECT count(*) FROM processed_events"), timeout=120, what="the redelivered fan-out"
        )
        holders = stack.query("SELECT user_id, count(*) FROM feed_entries WHERE post_id = %s GROUP BY user_id", post_id)
        assert len(holders) == FOLLOWERS + 1  # every follower, and the author
        assert {count for _, count in holders} == {1}
        assert (
            stack.scalar(
                "SELECT count(*) FROM follows f WHERE followee_id = 'star' AND NOT EXISTS "
                "(SELECT FROM feed_entries e WHERE e.user_id = f.follower_id AND e.post_id = %s)",
                post_id,
            )
            == 0
        )
        assert restarted.stop(signal.SIGTERM) == 0, restarted.output()


async def consume_until(events: EventConsumer, done: Callable[[], bool]) -> None:
    async with asyncio.timeout(30):
        while not done():
            await events.consume_batch(idle_wait=0.2)


def feedcore(stack: Stack, *arguments: str) -> str:
    result = subprocess.run(  # noqa: S603  # our own command
        [str(ROOT / ".venv" / "bin" / "feedcore"), *arguments],
        env=stack.environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


async def test_poison_goes_to_the_dead_letter_topic_and_a_replay_after_the_fix_applies_it(tmp_path: Path) -> None:
    with isolated_stack(tmp_path) as stack:
        stack.serve()
        settings = Settings.from_env(stack.environment())
        await create_topics(settings, asyncio.Event())
        broken: set[str] = set()
        async with (
            running(settings) as built,
            started(lambda: producer(settings), asyncio.Event(), what="test") as kafka_producer,
            started(lambda: consumer(settings), asyncio.Event(), what="test") as member,
        ):
            assert kafka_producer is not None
            assert member is not None
            metrics = built.app.metrics()
            processor = await awaited(built.app.processor(consumer=CONSUMER))

            async def apply(events: Sequence[Event]) -> list[Event]:
                for event in events:
                    if isinstance(event, PostPublished) and str(event.post_id) in broken:
                        raise RuntimeError(f"handler bug on post {event.post_id}")
                return await processor.apply_all(events)

            events = EventConsumer(
                KafkaRecordSource(member),
                apply,
                KafkaDeadLetters(kafka_producer, settings.dead_letter_topic),
                transient=built.storage.unavailable_errors(),
                policy=RetryPolicy(max_attempts=3, first_wait=0.01, max_wait=0.05),
                metrics=metrics,
            )
            with stack.client("ana") as ana, stack.client("bo") as bo:
                assert ana.post("/follow", json={"followee_id": "bo"}).status_code == 204
                # The follow applied first: bo's posts then reach ana's feed by fan-out only.
                await consume_until(events, lambda: bool(stack.scalar("SELECT count(*) FROM processed_events")))
                first = bo.post("/posts", json={"content": "meets a handler bug"}).json()["id"]
                broken.add(first)
                wait_until(lambda: not stack.scalar("SELECT count(*) FROM outbox"), timeout=30, what="the relay")
                # bo's key: the partition of bo's posts, between the first and the next.
                await kafka_producer.send_and_wait(settings.kafka_topic, b"\xff not an event", key=b"bo")
                after = bo.post("/posts", json={"content": "after the poison"}).json()["id"]

            await consume_until(events, lambda: after in stack.feed_ids("ana"))
            assert first not in stack.feed_ids("ana")

            letters = await dead_letters(settings)
            by_error = {letter.error_type: letter for letter in letters}
            assert set(by_error) == {"builtins.RuntimeError", "msgspec.DecodeError"}
            bug, poison = by_error["builtins.RuntimeError"], by_error["msgspec.DecodeError"]
            assert (bug.attempts, poison.attempts) == (3, 1)
            assert poison.value == b"\xff not an event"
            assert poison.key == bug.key == b"bo"
            assert bug.original_topic == poison.original_topic == settings.kafka_topic
            assert bug.original_partition == poison.original_partition
            assert bug.original_offset < poison.original_offset
            assert f"handler bug on post {first}" in bug.error_message
            dead = metrics.registry.get_sample_value
            assert dead("feedcore_dead_letters_total", {"reason": "failing"}) == 1
            assert dead("feedcore_dead_letters_total", {"reason": "undecodable"}) == 1
            assert dead("feedcore_events_processed_total", {"type": "post_published", "outcome": "dead_lettered"}) == 1
            assert (dead("feedcore_events_processed_total", {"type": "post_published", "outcome": "applied"}) or 0) >= 1

            listed = feedcore(stack, "dlq", "list")
            for expected in (bug.id, poison.id, "RuntimeError", "DecodeError"):
                assert expected in listed
            assert f'"post_id":{first}' in feedcore(stack, "dlq", "show", bug.id)

            broken.clear()  # the fix is deployed
            assert "replayed 1 dead letter(s)" in feedcore(stack, "dlq", "replay", bug.id)
            await consume_until(events, lambda: first in stack.feed_ids("ana"))
            assert stack.feed_ids("ana") == [after, first]

        assert "purged 2 dead letter(s)" in feedcore(stack, "dlq", "purge", "--yes")
        assert "empty" in feedcore(stack, "dlq", "list")

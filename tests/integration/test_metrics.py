"""Every metric family exists and moves when its event happens: an end-to-end run on the real
stack (API + relay + processor on PostgreSQL, Kafka and Redis), scraped as Prometheus would."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer

from feedcore import UserId
from feedcore.entrypoints.auth import Tokens
from tests.integration.conftest import service_url
from tests.integration.stack import SECRET, Stack, free_port, isolated_stack, scrape, wait_until
from tests.prometheus import Scrape

#: What each process exports (the HTTP API also runs a relay; `feedcore process` applies events).
API_FAMILIES = (
    "feedcore_http_requests",
    "feedcore_http_request_duration_seconds",
    "feedcore_posts_created",
    "feedcore_idempotent_replays",
    "feedcore_outbox_backlog",
    "feedcore_relay_publish_seconds",
    "feedcore_relayed_events",
    "feedcore_cache_lookups",
    "feedcore_cache_rebuilds",
    "feedcore_fallbacks",
    "feedcore_retries",
    "feedcore_pruned_rows",
)
PROCESSOR_FAMILIES = (
    "feedcore_events_processed",
    "feedcore_fanout_entries",
    "feedcore_fanout_duration_seconds",
    "feedcore_post_to_feed_seconds",
    "feedcore_consumer_lag",
    "feedcore_dead_letters",
    "feedcore_retries",
    "feedcore_fallbacks",
    "process_resident_memory_bytes",
)
POSTS = 5


async def test_every_family_moves_when_its_event_happens(tmp_path: Path) -> None:
    processor_port, relay_port = free_port(), free_port()
    redis = {"FEEDCORE_REDIS_URL": service_url("FEEDCORE_REDIS_URL"), "FEEDCORE_REDIS_PREFIX": f"{uuid.uuid4().hex}:"}
    with isolated_stack(tmp_path, FEEDCORE_PRUNE_EVERY_SECONDS="0.2", **redis) as stack:
        stack.serve()
        stack.spawn("relay", FEEDCORE_METRICS_PORT=str(relay_port))
        stack.spawn("process", FEEDCORE_METRICS_PORT=str(processor_port))
        processor_metrics = f"http://127.0.0.1:{processor_port}/metrics"
        posted = publish_and_read(stack)
        await send_poison(stack)
        wait_until(
            lambda: scrape(processor_metrics).get('feedcore_dead_letters_total{reason="undecodable"}') == 1,
            timeout=30,
            what="the poison in the dead-letter topic",
        )
        # Everything taken and applied: the lag of each of the stack's 4 partitions drops to 0 (it
        # is sampled), and the follow is counted (its partition is not the posts').
        wait_until(
            lambda: (
                list(lags(taken := scrape(processor_metrics)).values()) == [0] * 4
                and taken.get('feedcore_events_processed_total{outcome="applied",type="user_followed"}') == 1
            ),
            timeout=30,
            what="no lag",
        )

        # The key and every ledger mark age past their retention; the server's next pass deletes them.
        assert len(stack.query("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' RETURNING 1")) == 1
        marks = stack.query("UPDATE processed_events SET processed_at = now() - interval '8 days' RETURNING 1")
        assert len(marks) == POSTS + 2  # the follow and the posts
        wait_until(
            lambda: scrape(f"{stack.base_url}/metrics").get('feedcore_pruned_rows_total{table="processed_events"}'),
            timeout=10,
            what="the expired rows pruned",
        )
        assert stack.scalar("SELECT count(*) FROM idempotency_keys") == 0
        assert stack.scalar("SELECT count(*) FROM processed_events") == 0

        api = scrape(f"{stack.base_url}/metrics")
        processor = scrape(processor_metrics)
        relay = scrape(f"http://127.0.0.1:{relay_port}/metrics")

    assert set(API_FAMILIES) <= api.families, set(API_FAMILIES) - api.families
    assert set(PROCESSOR_FAMILIES) <= processor.families, set(PROCESSOR_FAMILIES) - processor.families

    assert api["feedcore_posts_created_total"] == POSTS + 1
    assert api["feedcore_idempotent_replays_total"] == 1
    assert api['feedcore_http_requests_total{method="POST",route="/posts",status="201"}'] == POSTS + 2
    assert api['feedcore_http_requests_total{method="POST",route="/follow",status="204"}'] == 1
    assert api['feedcore_http_request_duration_seconds_count{method="GET",route="/feeds/{user_id}"}'] >= 2
    assert api['feedcore_cache_lookups_total{kind="feed",result="miss"}'] >= 1
    assert api['feedcore_cache_lookups_total{kind="feed",result="hit"}'] >= 1
    assert api['feedcore_cache_lookups_total{kind="post",result="hit"}'] >= 1
    assert api['feedcore_cache_rebuilds_total{kind="feed"}'] >= 1
    assert api["feedcore_outbox_backlog"] == 0
    assert api['feedcore_pruned_rows_total{table="idempotency_keys"}'] == 1
    assert api['feedcore_pruned_rows_total{table="processed_events"}'] == POSTS + 2
    # Two relays share the outbox: between them, every event left it once.
    relayed = api["feedcore_relayed_events_total"] + relay["feedcore_relayed_events_total"]
    assert relayed >= POSTS + 2  # the follow and the posts
    assert api["feedcore_relay_publish_seconds_count"] + relay["feedcore_relay_publish_seconds_count"] >= 1

    applied = processor['feedcore_events_processed_total{outcome="applied",type="post_published"}']
    assert applied == POSTS + 1
    assert processor['feedcore_events_processed_total{outcome="applied",type="user_followed"}'] == 1
    assert processor['feedcore_events_processed_total{outcome="dead_lettered",type="undecodable"}'] == 1
    assert processor["feedcore_fanout_entries_total"] == 2 * (POSTS + 1)  # the author's feed and ana's
    assert processor["feedcore_fanout_duration_seconds_count"] == POSTS + 1
    assert processor["feedcore_post_to_feed_seconds_count"] == POSTS + 1
    assert sorted(lags(processor)) == [f'feedcore_consumer_lag{{partition="{n}"}}' for n in range(4)]
    assert len(posted) == POSTS


def lags(samples: Scrape) -> dict[str, float]:
    return {name: value for name, value in samples.items() if name.startswith("feedcore_consumer_lag{")}


def publish_and_read(stack: Stack) -> list[str]:
    with stack.client("ana") as ana, stack.client("bo") as bo:
        assert ana.post("/follow", json={"followee_id": "bo"}).status_code == 204
        posted = [bo.post("/posts", json={"content": f"post {n}"}).json()["id"] for n in range(POSTS)]
        keyed = {"Idempotency-Key": "once"}
        first = bo.post("/posts", json={"content": "sent twice"}, headers=keyed)
        again = bo.post("/posts", json={"content": "sent twice"}, headers=keyed)
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        everything = {*posted, first.json()["id"]}
        wait_until(lambda: everything <= set(stack.feed_ids("ana")), timeout=30, what="the posts in ana's feed")
        assert set(stack.feed_ids("ana")) == everything  # a read from the cached copy
        return posted


async def send_poison(stack: Stack) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings["FEEDCORE_KAFKA_BOOTSTRAP"])
    await producer.start()
    try:
        await producer.send_and_wait(stack.settings["FEEDCORE_KAFKA_TOPIC"], b"\xff not an event", key=b"bo")
    finally:
        await producer.stop()
    await asyncio.sleep(0)


def test_two_server_workers_lease_two_node_numbers_and_report_the_sum_of_both(tmp_path: Path) -> None:
    with isolated_stack(tmp_path) as stack:
        stack.serve("--workers", "2")
        token = {"Authorization": f"Bearer {Tokens(SECRET).issue(UserId('bo'))}"}
        for number in range(20):  # a connection each: granian hands them to either worker
            created = httpx.post(f"{stack.base_url}/posts", json={"content": f"post {number}"}, headers=token)
            assert created.status_code == 201, created.text
        # Whichever worker answers a scrape, it reports what both did.
        for _ in range(6):
            assert scrape(f"{stack.base_url}/metrics")["feedcore_posts_created_total"] == 20
        leased = stack.query(
            "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            0x6E6F6465,
        )
        assert len(leased) == 2, leased  # a node number each

"""PostgreSQL out of the processor's reach while events flow: the processor waits the outage out,
dead-letters nothing, and applies every event once PostgreSQL is back; and a pool that finds one
of its connections broken checks the others at once.

Only the processor reaches PostgreSQL through a proxy, which the test cuts: the API keeps its own
connections, so posts are still accepted (and relayed to Kafka) during the outage.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import psycopg
import pytest
from infra.tcp_proxy import TcpProxy
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from feedcore.adapters.postgres import connection_pool
from feedcore.adapters.postgres.pool import RecoveringPool
from feedcore.entrypoints.dead_letter_tools import dead_letters
from feedcore.entrypoints.settings import Settings
from tests.integration.stack import Stack, free_port, isolated_stack, log_records, scrape, wait_until

POSTS_DURING_OUTAGE = 20
OUTAGE_SECONDS = 4.0
#: What the processor's connection pool (psycopg_pool) logs each time it fails to reconnect.
POOL_CANNOT_CONNECT = "error connecting in 'pool-"
#: What the processor logs when it sets a record aside (entrypoints/consumer.py).
DEAD_LETTERING = "dead-lettering"


def server_address(database_url: str) -> tuple[str, int]:
    parts = conninfo_to_dict(database_url)
    return str(parts.get("host") or "localhost"), int(str(parts.get("port") or 5432))


def entries_of(stack: Stack, user: str) -> int:
    return int(stack.scalar("SELECT count(*) FROM feed_entries WHERE user_id = %s", user))


def test_postgres_unreachable_for_a_few_seconds_while_events_flow_dead_letters_nothing_and_applies_all_after(
    tmp_path: Path,
) -> None:
    metrics_port = free_port()
    with isolated_stack(tmp_path) as stack, TcpProxy(*server_address(stack.database_url)) as proxy:
        server = stack.serve()
        processor = stack.spawn(
            "process",
            FEEDCORE_METRICS_PORT=str(metrics_port),
            FEEDCORE_DATABASE_URL=make_conninfo(stack.database_url, host="127.0.0.1", port=proxy.port),
            # Shorter than the outage: waits for a connection end in PoolTimeout as well as the
            # OperationalError of the connections the cut dropped; both must be waited out.
            FEEDCORE_DATABASE_TIMEOUT_SECONDS="1",
            # Few tries for a permanent error: one the outage caused but the processor took for
            # permanent would be dead-lettered within the outage, not retried past its end by luck.
            FEEDCORE_MAX_ATTEMPTS="2",
        )
        with stack.client("bo") as bo:
            posted = [stack.first_post_in_feed("ana", "bo")]

            proxy.cut()
            cut_at = time.monotonic()
            for number in range(POSTS_DURING_OUTAGE):
                response = bo.post("/posts", json={"content": f"while PostgreSQL is away, #{number}"})
                assert response.status_code == 201, response.text
                posted.append(response.json()["id"])
                time.sleep(0.05)
            # The events reach Kafka (the API's relay does not go through the proxy), and the
            # processor, which holds them, cannot apply them.
            wait_until(lambda: not stack.scalar("SELECT count(*) FROM outbox"), timeout=20, what="the relay")
            time.sleep(max(0.0, cut_at + OUTAGE_SECONDS - time.monotonic()))
            assert processor.popen.poll() is None, f"the processor exited during the outage:\n{processor.output()}"
            assert entries_of(stack, "ana") == 1, "the processor applied events through a cut proxy"
            proxy.restore()

            def all_applied() -> bool:
                assert DEAD_LETTERING not in processor.output(), processor.output()
                return set(posted) <= set(stack.feed_ids("ana"))

            wait_until(all_applied, timeout=60, what="every post in ana's feed")

        assert sorted(stack.feed_ids("ana")) == sorted(posted), "each post exactly once"
        assert entries_of(stack, "ana") == 1 + POSTS_DURING_OUTAGE
        assert asyncio.run(dead_letters(Settings.from_env(stack.environment()))) == []
        output = processor.output()
        assert POOL_CANNOT_CONNECT in output, f"no sign the processor noticed the outage:\n{output}"
        # Structured: the first retry of a transient failure (entrypoints.consumer.log_retry).
        retries = [
            record
            for record in log_records(output)
            if record["logger"] == "feedcore.entrypoints.consumer" and record["message"].startswith("retry 1 in")
        ]
        assert retries, f"no retry was scheduled during the outage:\n{output}"
        assert {"time", "level", "service"} <= set(retries[0])
        retried = scrape(f"http://127.0.0.1:{metrics_port}/metrics")
        assert sum(value for name, value in retried.items() if name.startswith("feedcore_retries_total{")) >= 1
        assert DEAD_LETTERING not in output, output

        assert processor.popen.poll() is None, f"the processor exited:\n{output}"
        assert processor.stop(signal.SIGTERM) == 0, processor.output()
        assert server.stop(signal.SIGTERM) == 0, server.output()


async def test_one_broken_connection_has_the_pool_check_all_the_others(database_url: str) -> None:
    host, port = server_address(database_url)
    with TcpProxy(host, port) as proxy:
        pool = connection_pool(make_conninfo(database_url, host="127.0.0.1", port=proxy.port), min_size=4, max_size=4)
        await pool.open(wait=True)
        try:
            proxy.cut()  # every connection of the pool breaks at once, as in a restart of the server
            proxy.restore()
            with pytest.raises(psycopg.OperationalError):
                async with pool.connection() as connection:
                    await connection.execute("SELECT 1")
            assert isinstance(pool, RecoveringPool)
            assert pool._checking is not None
            await asyncio.wait_for(pool._checking, timeout=10)
            # Without the check, each of the three other connections would fail its next use in turn.
            for _ in range(4):
                async with pool.connection() as connection:
                    assert await (await connection.execute("SELECT 1")).fetchone() == (1,)
        finally:
            await pool.close()

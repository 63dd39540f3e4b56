"""The event path end to end: post committed -> visible in a follower's feed, and the processor's pace.

Runs `feedcore serve` (API and outbox relay) and `feedcore process` on PostgreSQL and Kafka (make
bench starts them), in a database and topics of their own, made and dropped here.

1. Latency at a steady rate: 50 authors, 20 followers each, plus a watcher who follows them all.
   Posts are sent at --rate posts/s for --seconds; each one's latency runs from its 201 to the
   moment it is in the watcher's materialised feed (polled every 5 ms on the primary key, which
   adds up to 5 ms). Several runs; p50/p99 are medians over the runs.
2. Sustained fan-out: --burst posts by authors with 10,000 followers each are published while the
   processor is stopped; then it starts, and feed entries written per second are counted from its
   first entry to its last.

Usage: python -m bench.e2e [--rate 500] [--seconds 20] [--runs 3] [--burst 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from typing import Any

import httpx
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from bench.harness import feedcore, feedcore_server
from entrypoints.auth import Tokens
from feedcore import UserId

SECRET = "bench-" + "e" * 40
AUTHORS = 50
FOLLOWERS = 20
BIG_FOLLOWERS = 10_000
WATCHER = "watcher"


def follow_everyone(url: str, authors: list[str], followers: int) -> None:
    """The graph, written directly (not measured): ``followers`` each, and the watcher follows all."""
    with psycopg.connect(url, autocommit=True) as connection:
        with connection.cursor().copy("COPY follows (follower_id, followee_id) FROM STDIN") as copy:
            for author in authors:
                copy.write_row((WATCHER, author))
                for number in range(followers):
                    copy.write_row((f"{author}-fan-{number:05d}", author))
        connection.execute(
            "INSERT INTO user_counts (user_id, followers) SELECT unnest(%s::text[]), %s "
            "ON CONFLICT (user_id) DO UPDATE SET followers = excluded.followers",
            (authors, followers + 1),
        )


async def steady_run(base: str, url: str, rate: float, seconds: float, run: int) -> list[float]:
    """Latencies (ms) of ``rate * seconds`` posts sent at a steady ``rate``."""
    tokens = Tokens(SECRET)
    headers = [{"Authorization": f"Bearer {tokens.issue(UserId(f'author-{n}'))}"} for n in range(AUTHORS)]
    answered: dict[int, float] = {}
    seen: dict[int, float] = {}
    total = int(rate * seconds)
    sending = True

    async def watch() -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
            while sending or len(seen) < len(answered):
                pending = [post for post in answered if post not in seen]
                if pending:
                    cursor = await connection.execute(
                        "SELECT post_id FROM feed_entries WHERE user_id = %s AND post_id = ANY(%s)", (WATCHER, pending)
                    )
                    now = time.perf_counter()
                    for (post,) in await cursor.fetchall():
                        seen[post] = now
                await asyncio.sleep(0.005)

    async with httpx.AsyncClient(base_url=base, limits=httpx.Limits(max_connections=64), timeout=30) as client:

        async def send(number: int) -> None:
            response = await client.post(
                "/posts", json={"content": f"run {run} post {number}"}, headers=headers[number % AUTHORS]
            )
            if response.status_code != 201:
                raise SystemExit(f"POST /posts answered {response.status_code}: {response.text}")
            answered[int(response.json()["id"])] = time.perf_counter()

        watcher = asyncio.create_task(watch())
        started = time.perf_counter()
        sends = []
        for number in range(total):
            await asyncio.sleep(max(0.0, started + number / rate - time.perf_counter()))
            sends.append(asyncio.create_task(send(number)))
        await asyncio.gather(*sends)
        achieved = total / (time.perf_counter() - started)
        sending = False
        await asyncio.wait_for(watcher, timeout=120)
    latencies = sorted((seen[post] - answered[post]) * 1000 for post in answered)
    print(
        f"  run: {achieved:6.0f} posts/s sent, p50 {percentile(latencies, 50):7.1f} ms   "
        f"p99 {percentile(latencies, 99):7.1f} ms   max {latencies[-1]:7.1f} ms"
    )
    return latencies


def percentile(ordered: list[float], rank: float) -> float:
    return ordered[min(len(ordered) - 1, round(rank / 100 * (len(ordered) - 1)))]


def sustained(base: str, url: str, settings: dict[str, str], burst: int, run: int) -> float:
    """Feed entries per second while the processor works through a backlog of big fan-outs."""
    authors = [f"big-{run}-{n}" for n in range(burst)]
    follow_everyone(url, authors, BIG_FOLLOWERS)
    tokens = Tokens(SECRET)
    with httpx.Client(base_url=base, timeout=30) as client:
        for author in authors:
            response = client.post(
                "/posts",
                json={"content": "to ten thousand feeds"},
                headers={"Authorization": f"Bearer {tokens.issue(UserId(author))}"},
            )
            response.raise_for_status()
    expected = burst * (BIG_FOLLOWERS + 2)  # the followers, the watcher and the author
    with psycopg.connect(url, autocommit=True) as connection:
        while connection.execute("SELECT count(*) FROM outbox").fetchone() != (0,):
            time.sleep(0.05)  # the relay has put the backlog on Kafka
        before = count_entries(connection)
        with feedcore("process", settings):
            first: float | None = None
            while (written := count_entries(connection) - before) < expected:
                if written and first is None:
                    first, first_count = time.perf_counter(), written
                time.sleep(0.01)
            last = time.perf_counter()
    if first is None:
        raise SystemExit("the backlog was applied before it could be timed: raise --burst")
    return (expected - first_count) / (last - first)


def count_entries(connection: psycopg.Connection[Any]) -> int:
    row = connection.execute("SELECT count(*) FROM feed_entries").fetchone()
    return int(row[0]) if row else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--burst", type=int, default=30)
    args = parser.parse_args()
    server = os.environ.get("FEEDCORE_DATABASE_URL")
    kafka = os.environ.get("FEEDCORE_KAFKA_BOOTSTRAP")
    if not server or not kafka:
        raise SystemExit("FEEDCORE_DATABASE_URL and FEEDCORE_KAFKA_BOOTSTRAP must be set: run `make bench`")
    name = f"feedcore_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(server, dbname=name)
    settings = {
        "FEEDCORE_DATABASE_URL": url,
        "FEEDCORE_KAFKA_BOOTSTRAP": kafka,
        "FEEDCORE_KAFKA_TOPIC": f"{name}.events",
        "FEEDCORE_KAFKA_GROUP": f"{name}.processor",
        "FEEDCORE_MIGRATE_ON_START": "true",
        "FEEDCORE_JWT_SECRET": SECRET,
        "FEEDCORE_RATE_LIMIT_PER_SECOND": "0",
        # Above the big authors' 10,002 followers: every post here is fanned out.
        "FEEDCORE_CELEBRITY_THRESHOLD": "100000",
    }
    try:
        with feedcore_server(settings) as base:
            follow_everyone(url, [f"author-{n}" for n in range(AUTHORS)], FOLLOWERS)
            print(
                f"post committed -> in a follower's feed: {args.rate:.0f} posts/s for {args.seconds:.0f} s, "
                f"{AUTHORS} authors x {FOLLOWERS + 1} followers, serve + process, one of each"
            )
            with feedcore("process", settings):
                runs = [asyncio.run(steady_run(base, url, args.rate, args.seconds, run)) for run in range(args.runs)]
            print(
                f"median of {len(runs)}: p50 {statistics.median(percentile(r, 50) for r in runs):.1f} ms, "
                f"p99 {statistics.median(percentile(r, 99) for r in runs):.1f} ms   "
                "(goal: p99 <= 250 ms at 500 posts/s)"
            )
            rates = [sustained(base, url, settings, args.burst, run) for run in range(args.runs)]
            listed = " ".join(f"{rate:,.0f}" for rate in rates)
            print(
                f"processor, backlog of {args.burst} posts x {BIG_FOLLOWERS:,} followers: median "
                f"{statistics.median(rates):,.0f} feed entries/s (runs: {listed}; "
                "goal >= 150,000 into PostgreSQL + Redis)"
            )
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()

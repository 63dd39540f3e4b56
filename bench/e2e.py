"""The event path end to end: post committed -> visible in a follower's feed, and the processor's pace.

Runs `feedcore serve` (API and outbox relay) and `feedcore process` on PostgreSQL, Kafka and Redis
(make bench starts them), in a database, topics and Redis prefix of their own, made and dropped here.

1. Latency at a steady rate: 50 authors, 20 followers each, plus a watcher who follows them all.
   Once the processor has applied a first post, posts are sent at --rate posts/s for --warmup
   seconds (not counted: connections and prepared statements are still being made), then for
   --seconds more; each
   counted post's latency runs from its 201 to the
   moment it is in the watcher's materialised feed (polled every 5 ms on the primary key, which
   adds up to 5 ms). Several runs; p50/p99 are medians over the runs.
2. Sustained fan-out: --burst posts by authors with 10,000 followers each, published back to back;
   feed entries per second from the first post's 201 until every entry is in place.

Usage: python -m bench.e2e [--rate 500] [--seconds 20] [--warmup 2] [--runs 3] [--burst 30] [--chunk N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import httpx
import msgspec
import psycopg
from psycopg import sql

from bench.harness import backbone_settings, feedcore, feedcore_server, scratch_cache, scratch_database
from feedcore import UserId
from feedcore.entrypoints.auth import Tokens

SECRET = "bench-" + "e" * 40
AUTHORS = 50
FOLLOWERS = 20
BIG_FOLLOWERS = 10_000
WATCHER = "watcher"
#: Keep-alive connections the steady load is sent over.
CONNECTIONS = 32


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


async def steady_run(base: str, url: str, *, rate: float, seconds: float, run: int, warmup: float) -> list[float]:
    """Latencies (ms) of the posts sent at a steady ``rate`` for ``seconds``, after ``warmup`` seconds
    at that rate whose posts are not counted."""
    tokens = Tokens(SECRET)
    headers = [f"Authorization: Bearer {tokens.issue(UserId(f'author-{n}'))}" for n in range(AUTHORS)]
    answered: dict[int, float] = {}
    seen: dict[int, float] = {}
    pending: set[int] = set()
    total = int(rate * (warmup + seconds))
    sending = True

    async def watch() -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
            while sending or pending:
                if pending:
                    # A range of the primary key from the oldest post not seen yet: a few rows a poll.
                    cursor = await connection.execute(
                        "SELECT post_id FROM feed_entries WHERE user_id = %s AND post_id >= %s",
                        (WATCHER, min(pending)),
                    )
                    now = time.perf_counter()
                    for (post,) in await cursor.fetchall():
                        if post in pending:
                            pending.discard(post)
                            seen[post] = now
                await asyncio.sleep(0.005)

    port = int(base.rsplit(":", 1)[1])
    connections = [await KeepAlive.open(port) for _ in range(CONNECTIONS)]
    idle: asyncio.Queue[KeepAlive] = asyncio.Queue()
    for connection in connections:
        idle.put_nowait(connection)

    async def send(number: int) -> None:
        connection = await idle.get()
        try:
            body = await connection.post(
                "/posts", f'{{"content":"run {run} post {number}"}}', headers[number % AUTHORS]
            )
        finally:
            idle.put_nowait(connection)
        post = int(msgspec.json.decode(body)["id"])
        answered[post] = time.perf_counter()
        pending.add(post)

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
    for connection in connections:
        connection.close()
    counted = started + warmup
    latencies = sorted((seen[post] - answered[post]) * 1000 for post in answered if answered[post] >= counted)
    print(
        f"  run: {achieved:6.0f} posts/s sent, p50 {percentile(latencies, 50):7.1f} ms   "
        f"p99 {percentile(latencies, 99):7.1f} ms   max {latencies[-1]:7.1f} ms"
    )
    return latencies


class KeepAlive:
    """One keep-alive HTTP/1.1 connection, just enough for POSTs to feedcore: a load generator that
    costs the machine far less than a general client (httpx tops out near 250 requests/s here)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, port: int) -> KeepAlive:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def post(self, path: str, body: str, header: str) -> bytes:
        payload = body.encode()
        self._writer.write(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{header}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        status_line = await self._reader.readline()
        length = 0
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        answer = await self._reader.readexactly(length)
        if b" 201 " not in status_line:
            raise SystemExit(f"POST {path} answered {status_line!r}: {answer!r}")
        return answer

    def close(self) -> None:
        self._writer.close()


def percentile(ordered: list[float], rank: float) -> float:
    return ordered[min(len(ordered) - 1, round(rank / 100 * (len(ordered) - 1)))]


def wait_for_processor(base: str, url: str) -> None:
    """Until the processor has joined its group and applied a first post: its start-up is not measured."""
    token = Tokens(SECRET).issue(UserId("author-0"))
    response = httpx.post(
        f"{base}/posts", json={"content": "ready?"}, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    response.raise_for_status()
    deadline = time.monotonic() + 60
    with psycopg.connect(url, autocommit=True) as connection:
        while (
            connection.execute(
                "SELECT 1 FROM feed_entries WHERE user_id = %s AND post_id = %s", (WATCHER, int(response.json()["id"]))
            ).fetchone()
            is None
        ):
            if time.monotonic() > deadline:
                raise SystemExit("feedcore process applied nothing within 60 s")
            time.sleep(0.05)


def sustained(base: str, url: str, settings: dict[str, str], burst: int, run: int) -> float:
    """Feed entries per second while the processor works through a burst of big fan-outs: from the
    first post's 201 to the moment every entry is in place (the relay and Kafka are inside that)."""
    authors = [f"big-{run}-{n}" for n in range(burst)]
    follow_everyone(url, authors, BIG_FOLLOWERS)
    tokens = Tokens(SECRET)
    expected = burst * (BIG_FOLLOWERS + 2)  # the followers, the watcher and the author
    with psycopg.connect(url, autocommit=True) as connection, httpx.Client(base_url=base, timeout=30) as client:
        # The ledger marks commit with the feed entries; counting them is cheap, unlike counting
        # millions of feed entries while the processor writes more.
        before = count(connection, "processed_events")
        started = time.perf_counter()
        for author in authors:
            response = client.post(
                "/posts",
                json={"content": "to ten thousand feeds"},
                headers={"Authorization": f"Bearer {tokens.issue(UserId(author))}"},
            )
            response.raise_for_status()
        while count(connection, "processed_events") - before < burst:
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        written = connection.execute(
            "SELECT count(*) FROM feed_entries WHERE user_id = %s AND author_id = ANY(%s)", (WATCHER, authors)
        ).fetchone()
        if written != (burst,):
            raise SystemExit(f"the watcher's feed holds {written} of the burst's {burst} posts")
        return expected / elapsed


def count(connection: psycopg.Connection[Any], table: str) -> int:
    row = connection.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
    return int(row[0]) if row else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--burst", type=int, default=30)
    parser.add_argument("--warmup", type=float, default=2, help="seconds at the rate before counting")
    parser.add_argument("--chunk", type=int, default=None, help="FEEDCORE_FANOUT_CHUNK for the processor")
    args = parser.parse_args()
    with scratch_database() as (name, url), scratch_cache(name) as cache:
        settings = {
            **backbone_settings(name, url, SECRET),
            # The processor writes every event through to Redis as well: the post's body, and
            # each follower's feed where it is cached (none is here: nobody reads).
            **cache,
            # Above the big authors' 10,002 followers: every post here is fanned out.
            "FEEDCORE_CELEBRITY_THRESHOLD": "100000",
            **({"FEEDCORE_FANOUT_CHUNK": str(args.chunk)} if args.chunk else {}),
        }
        with feedcore_server(settings) as base:
            follow_everyone(url, [f"author-{n}" for n in range(AUTHORS)], FOLLOWERS)
            print(
                f"post committed -> in a follower's feed: {args.rate:.0f} posts/s for {args.seconds:.0f} s "
                f"after {args.warmup:.0f} s of warm-up, "
                f"{AUTHORS} authors x {FOLLOWERS + 1} followers, serve + process, one of each"
            )
            with feedcore("process", settings):
                wait_for_processor(base, url)
                runs = [
                    asyncio.run(
                        steady_run(base, url, rate=args.rate, seconds=args.seconds, run=run, warmup=args.warmup)
                    )
                    for run in range(args.runs)
                ]
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


if __name__ == "__main__":
    main()

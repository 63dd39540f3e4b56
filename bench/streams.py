"""Live feed streams: 1,000 open at once, how fast a post reaches them, and what they cost idle.

Runs `feedcore serve --workers 2` (API and outbox relay) and `feedcore process` on PostgreSQL,
Kafka and Redis (make bench-streams starts them), in a database, topics and Redis prefix of their
own, made and dropped here. --authors authors have --streams / --authors followers each, and every
follower holds one stream of its home feed open (GET /feeds/{user}/stream), all from this process.

1. Idle CPU: the CPU time (user + system) of each feedcore process over --idle seconds, as a share
   of one core, first with no stream open, then with all of them open and nothing posted.
2. Delivery latency: after a warm-up post, posts are sent at --rate posts/s for --seconds (each
   author in turn); each post's latency, on each follower's stream, runs from its 201 to the moment
   its event arrived. Several runs; p50/p99 are medians over the runs.

This process reads the streams and posts: it shares the box's cores with the server and the
processor, so the latency includes its own waits for a core.

Usage: python -m bench.streams [--streams 1000] [--authors 50] [--rate 20] [--seconds 15] [--runs 3]
    [--idle 30] [--settle 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import defaultdict
from urllib.parse import urlsplit

import httpx
import psycopg

from bench.harness import backbone_settings, feedcore, feedcore_server, scratch_cache, scratch_database
from bench.idle import deployment, idle_cpu
from feedcore import UserId
from feedcore.entrypoints.auth import Tokens

SECRET = "bench-" + "s" * 40


def author_name(number: int) -> str:
    return f"author-{number:03d}"


def reader_name(number: int) -> str:
    return f"reader-{number:05d}"


def follow(url: str, *, streams: int, authors: int) -> dict[str, list[str]]:
    """The graph, written directly (not measured): reader N follows author N % authors."""
    audiences: dict[str, list[str]] = defaultdict(list)
    for number in range(streams):
        audiences[author_name(number % authors)].append(reader_name(number))
    with psycopg.connect(url, autocommit=True) as connection:
        with connection.cursor().copy("COPY follows (follower_id, followee_id) FROM STDIN") as copy:
            for author, readers in audiences.items():
                for reader in readers:
                    copy.write_row((reader, author))
        connection.execute(
            "INSERT INTO user_counts (user_id, followers) SELECT unnest(%s::text[]), unnest(%s::int[]) "
            "ON CONFLICT (user_id) DO UPDATE SET followers = excluded.followers",
            (list(audiences), [len(readers) for readers in audiences.values()]),
        )
    return audiences


class Streams:
    """Open streams, each read by a task of its own that notes when each post id arrived."""

    def __init__(self, base: str) -> None:
        address = urlsplit(base)
        self._host, self._port = address.hostname or "127.0.0.1", address.port or 80
        self._tokens = Tokens(SECRET)
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self._tasks: list[asyncio.Task[None]] = []
        self._writers: list[asyncio.StreamWriter] = []

    async def open(self, readers: list[str]) -> None:
        opened = await asyncio.gather(*(self._open(reader) for reader in readers))
        for reader, writer in opened:
            self._writers.append(writer)
            self._tasks.append(asyncio.create_task(self._read(reader)))

    async def _open(self, user: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(self._host, self._port)
        token = self._tokens.issue(UserId(user))
        request = f"GET /feeds/{user}/stream HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n"
        writer.write(request.encode())
        await writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            raise SystemExit(f"the stream of {user} answered {status!r}")
        while (await reader.readline()).strip():  # the headers
            pass
        return reader, writer

    async def _read(self, reader: asyncio.StreamReader) -> None:
        # The body is chunked: the chunk sizes are lines of their own, which no event line starts like.
        arrivals = self.arrivals
        while line := await reader.readline():
            if line.startswith(b"id: "):
                arrivals[line[4:].strip().decode()].append(time.perf_counter())

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for writer in self._writers:
            writer.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def post_steadily(
    client: httpx.AsyncClient, authors: list[str], *, rate: float, seconds: float
) -> dict[str, tuple[str, float]]:
    """Posts at ``rate`` per second for ``seconds``, authors in turn; each post id, with its author
    and the moment its 201 came."""
    tokens = Tokens(SECRET)
    headers = {author: {"Authorization": f"Bearer {tokens.issue(UserId(author))}"} for author in authors}
    created: dict[str, tuple[str, float]] = {}

    async def one(author: str) -> None:
        response = await client.post("/posts", json={"content": "live"}, headers=headers[author])
        if response.status_code != 201:
            raise SystemExit(f"POST /posts answered {response.status_code}: {response.text}")
        created[response.json()["id"]] = (author, time.perf_counter())

    started = time.perf_counter()
    sending: list[asyncio.Task[None]] = []
    for number in range(round(rate * seconds)):
        await asyncio.sleep(max(0.0, started + number / rate - time.perf_counter()))
        sending.append(asyncio.create_task(one(authors[number % len(authors)])))
    await asyncio.gather(*sending)
    return created


def percentile(ordered: list[float], rank: float) -> float:
    return ordered[min(len(ordered) - 1, round(rank / 100 * (len(ordered) - 1)))]


async def latencies(
    base: str, streams: Streams, audiences: dict[str, list[str]], *, rate: float, seconds: float
) -> list[float]:
    """One run's latencies, in ms: each post on each of its author's followers' streams."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        created = await post_steadily(client, list(audiences), rate=rate, seconds=seconds)
    expected = sum(len(audiences[author]) for author, _ in created.values())
    deadline = time.monotonic() + 30
    while sum(len(streams.arrivals.get(post_id, ())) for post_id in created) < expected:
        if time.monotonic() > deadline:
            raise SystemExit("not every post reached every follower's stream within 30 s")
        await asyncio.sleep(0.05)
    return sorted(
        1000 * (arrived - answered)
        for post_id, (_, answered) in created.items()
        for arrived in streams.arrivals[post_id]
    )


async def measure(
    base: str, processes: dict[str, int], audiences: dict[str, list[str]], args: argparse.Namespace
) -> None:
    readers = [reader for followers in audiences.values() for reader in followers]
    none_open = await asyncio.to_thread(idle_cpu, processes, args.idle)
    streams = Streams(base)
    started = time.perf_counter()
    await streams.open(readers)
    print(f"{len(readers)} streams open in {time.perf_counter() - started:.1f} s")
    # A first post through the whole path: the processor's start-up is not measured.
    await latencies(base, streams, {author_name(0): audiences[author_name(0)]}, rate=1, seconds=1)
    await asyncio.sleep(args.settle)
    all_open = await asyncio.to_thread(idle_cpu, processes, args.idle)
    print(f"idle CPU over {args.idle:.0f} s (share of one core): with no stream / with {len(readers)} streams open")
    for label in processes:
        print(f"  {label:24} {none_open[label]:5.2f} % / {all_open[label]:5.2f} %")
    runs = []
    for run in range(1, args.runs + 1):
        found = await latencies(base, streams, audiences, rate=args.rate, seconds=args.seconds)
        runs.append(found)
        print(
            f"run {run}: {len(found)} deliveries, p50 {percentile(found, 50):.1f} ms, "
            f"p99 {percentile(found, 99):.1f} ms, max {found[-1]:.1f} ms"
        )
    await streams.close()
    p50 = statistics.median(percentile(found, 50) for found in runs)
    p99 = statistics.median(percentile(found, 99) for found in runs)
    per_post = len(readers) // len(audiences)
    print(
        f"post 201 -> event on a follower's stream, {args.rate:g} posts/s to {per_post} streams each, "
        f"median of {len(runs)} runs: p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=1_000)
    parser.add_argument("--authors", type=int, default=50)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--idle", type=float, default=30)
    parser.add_argument("--settle", type=float, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with scratch_database() as (name, url), scratch_cache(name) as cache:
        settings = {**backbone_settings(name, url, SECRET), **cache}
        with feedcore("process", settings) as processor, feedcore_server(settings, workers=args.workers) as base:
            audiences = follow(url, streams=args.streams, authors=args.authors)
            processes = deployment(processor.pid, base)
            time.sleep(args.settle)
            asyncio.run(measure(base, processes, audiences, args))


if __name__ == "__main__":
    main()

"""Durable post writes on the real stack, beside a one-INSERT ceiling, with the fan-out keeping pace.

`feedcore serve --workers N` (relaying its outbox to Kafka) and `feedcore process` run on
PostgreSQL (fsync on), Kafka and Redis, in a database, topics and Redis prefix of their own. 200
users follow 20 others each (written directly); wrk then posts as each of them in turn, fresh
content and a fresh Idempotency-Key each time: every 201 is the post, its outbox row, its key and
its author's count, committed together. Beside it, a bare Litestar endpoint committing one
single-row INSERT per request on a pool of the same settings is the ceiling (bench/write_ceiling.py),
with as many workers; each feedcore run comes right after a ceiling run, and the report gives the
medians of --runs such pairs of --seconds each, and of their ratios.

After each feedcore run, how long the processor took to catch up: until the outbox is empty and
every post is in its author's own feed (written with the first chunk of its fan-out). And where the
CPU went, per request, by kind of process (bench/cpu.py): feedcore's figures cover its run and the
catch-up after it, the ceiling's its run.

With --processors N, N `feedcore process` members share the topic's partitions (one by default).

Usage: python -m bench.write [--runs 3] [--seconds 10] [--workers 1,2] [--connections 32,128] [--processors 1]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import psycopg

from bench import cpu
from bench.harness import (
    Run,
    backbone_settings,
    compare,
    feedcore,
    feedcore_server,
    granian_app,
    scratch_cache,
    scratch_database,
    wrk,
)
from bench.write_ceiling import CEILING_TABLE
from feedcore import UserId
from feedcore.entrypoints.auth import Tokens

SECRET = "bench-" + "w" * 40
USERS = 200
FOLLOWING = 20

LUA = """
tokens = {%(tokens)s}
counter = 0
thread_id = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end
function request()
  counter = counter + 1
  local headers = {}
  headers["Authorization"] = "Bearer " .. tokens[(counter %% #tokens) + 1]
  headers["Content-Type"] = "application/json"
  headers["Idempotency-Key"] = "%(run)s-" .. thread_id .. "-" .. counter
  local body = '{"content":"durable post %(run)s-' .. thread_id .. '-' .. counter .. '"}'
  return wrk.format("POST", "/posts", headers, body)
end
"""

CEILING_LUA = """
counter = 0
function request()
  counter = counter + 1
  return wrk.format("POST", "/ceiling", {["Content-Type"] = "application/json"},
                    '{"content":"durable post ' .. counter .. '"}')
end
"""


def follow_in_a_ring(url: str, *, users: int = USERS) -> None:
    """User n follows users n+1 ... n+20 (modulo ``users``): 20 followers and 20 followees each."""
    with psycopg.connect(url, autocommit=True) as connection:
        with connection.cursor().copy("COPY follows (follower_id, followee_id) FROM STDIN") as copy:
            for user in range(users):
                for step in range(1, FOLLOWING + 1):
                    copy.write_row((f"user-{user}", f"user-{(user + step) % users}"))
        connection.execute(
            "INSERT INTO user_counts (user_id, followers, following) "
            "SELECT 'user-' || n, %s, %s FROM generate_series(0, %s) AS n",
            (FOLLOWING, FOLLOWING, users - 1),
        )


def newest_post(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute("SELECT coalesce(max(id), 0) FROM posts").fetchone()
    return int(row[0]) if row else 0


def caught_up(url: str, *, after: int = 0, timeout: float = 120) -> float:
    """Seconds until the processor has applied every post above id ``after``: none waits in the
    outbox, and each is in its author's own feed. (Only the run's own posts are looked at: asking
    of every post every 50 ms would take a core from the processor it waits for.)"""
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as connection:
        while True:
            waiting = connection.execute(
                "SELECT (SELECT count(*) FROM outbox) + (SELECT count(*) FROM posts p WHERE p.id > %s AND NOT EXISTS "
                "(SELECT FROM feed_entries f WHERE f.user_id = p.author_id AND f.post_id = p.id))",
                (after,),
            ).fetchone()
            if waiting == (0,):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise SystemExit(f"the processor did not catch up within {timeout:.0f} s ({waiting} waiting)")
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=lambda text: [int(n) for n in text.split(",")], default=[1, 2])
    parser.add_argument("--connections", type=lambda text: [int(n) for n in text.split(",")], default=[32, 128])
    parser.add_argument("--processors", type=int, default=1)
    args = parser.parse_args()
    tokens = Tokens(SECRET)
    quoted = ", ".join(f'"{tokens.issue(UserId(f"user-{n}"))}"' for n in range(USERS))
    with (
        scratch_database() as (name, url),
        scratch_cache(name) as cache,
        tempfile.TemporaryDirectory() as scratch,
    ):
        with psycopg.connect(url) as connection:
            fsync = connection.execute("SHOW fsync").fetchone()
        settings = {**backbone_settings(name, url, SECRET), **cache}
        ceiling_script = Path(scratch) / "ceiling.lua"
        ceiling_script.write_text(CEILING_LUA)
        with contextlib.ExitStack() as processors:
            for _ in range(args.processors):
                processors.enter_context(feedcore("process", settings))
            for workers in args.workers:
                with feedcore_server(settings, workers=workers) as base, ceiling_server(url, workers) as ceiling:
                    if workers == args.workers[0]:
                        follow_in_a_ring(url)
                    posting = Posting(base, url, Path(scratch), quoted)
                    wrk(f"{ceiling}/ceiling", connections=32, seconds=3, extra=["-s", str(ceiling_script)])
                    posting.run(f"w{workers}-warm", 32, 3)
                    for connections in args.connections:
                        posting.catch_ups.clear()
                        pairs, splits = [], []
                        for run in range(args.runs):
                            with cpu.measured() as ceiling_cpu:
                                ceiling_run = wrk(
                                    f"{ceiling}/ceiling",
                                    connections=connections,
                                    seconds=args.seconds,
                                    extra=["-s", str(ceiling_script)],
                                )
                            with cpu.measured() as posting_cpu:  # the catch-up included
                                posting_run = posting.run(f"w{workers}c{connections}r{run}", connections, args.seconds)
                            pairs.append((ceiling_run, posting_run))
                            splits.append(
                                (
                                    ceiling_cpu.per(ceiling_run.rate * args.seconds),
                                    posting_cpu.per(posting_run.rate * args.seconds),
                                )
                            )
                        compare(
                            f"POST /posts with Idempotency-Key, PostgreSQL (fsync={fsync[0] if fsync else '?'}) "
                            f"+ Kafka + {args.processors} processor(s), granian {workers} worker(s), "
                            f"wrk -t2 -c{connections}",
                            f"ceiling: bare Litestar endpoint, one INSERT commit, granian {workers} worker(s), "
                            f"wrk -t2 -c{connections}",
                            pairs,
                        )
                        print(
                            "processor caught up after each run in "
                            + ", ".join(f"{seconds:.2f}" for seconds in posting.catch_ups)
                            + f" s (median {statistics.median(posting.catch_ups):.2f} s)"
                        )
                        cpu.report("ceiling", [ceiling for ceiling, _ in splits])
                        cpu.report("feedcore", [posting for _, posting in splits])


class Posting:
    """wrk posting to feedcore at ``base``, then waiting for the processor to catch up."""

    def __init__(self, base: str, url: str, scratch: Path, tokens: str) -> None:
        self._base = base
        self._url = url
        self._scratch = scratch
        self._tokens = tokens
        self.catch_ups: list[float] = []

    def run(self, name: str, connections: int, seconds: int) -> Run:
        script = self._scratch / f"post-{name}.lua"
        script.write_text(LUA % {"tokens": self._tokens, "run": name})
        before = newest_post(self._url)
        measured = wrk(f"{self._base}/posts", connections=connections, seconds=seconds, extra=["-s", str(script)])
        self.catch_ups.append(caught_up(self._url, after=before))
        return measured


def ceiling_server(url: str, workers: int) -> AbstractContextManager[str]:
    """The write ceiling, on the benchmark's own database. Its table is made here, before the
    workers start: two workers creating it at once can collide in PostgreSQL's catalogue."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(CEILING_TABLE)
    return granian_app(
        "bench.write_ceiling:app",
        workers=workers,
        environment={"BENCH_DATABASE_URL": url},
        probe=lambda base: httpx.post(f"{base}/ceiling", json={"content": "ready?"}).raise_for_status(),
    )


if __name__ == "__main__":
    main()

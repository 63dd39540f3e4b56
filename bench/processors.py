"""Aggregate fan-out over a backlog with 1, 2 and 3 processors in one group, on the real stack.

Each round writes a backlog through the API (wrk, 32 connections) while no processor runs, waits
until the relays have put it all on Kafka, then starts N `feedcore process` members together and
times them through it: from the first post applied to the last, so that starting and joining the
group are not counted. Every post reaches its author's feed and 20 followers' (200 users in a ring),
so feed entries are 21 a post. Rounds of one N on one database; medians over --runs.

Needs the services (make bench-processors starts them). The topic has 6 partitions, the default.

Usage: python -m bench.processors [--runs 3] [--members 1,2,3] [--seconds 10]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from bench.harness import backbone_settings, feedcore, feedcore_server, scratch_cache, scratch_database, wrk
from bench.write import FOLLOWING, LUA, SECRET, USERS, caught_up, follow_in_a_ring, newest_post
from feedcore import UserId
from feedcore.entrypoints.auth import Tokens


def scalar(url: str, statement: str, *parameters: object) -> int:
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute(statement, parameters).fetchone()
    return int(row[0]) if row else 0


def wait_for(check: Callable[[], bool], *, timeout: float, what: str) -> float:
    """Seconds until ``check()`` holds, polled every 20 ms."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise SystemExit(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.02)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--members", type=lambda text: [int(n) for n in text.split(",")], default=[1, 2, 3])
    parser.add_argument("--seconds", type=int, default=10, help="how long wrk writes each backlog")
    args = parser.parse_args()
    tokens = Tokens(SECRET)
    quoted = ", ".join(f'"{tokens.issue(UserId(f"user-{n}"))}"' for n in range(USERS))
    with scratch_database() as (name, url), scratch_cache(name) as cache, tempfile.TemporaryDirectory() as scratch:
        settings = {**backbone_settings(name, url, SECRET), **cache}
        with feedcore_server(settings, workers=2) as base:
            follow_in_a_ring(url)
            for members in args.members:
                rates = []
                for run in range(args.runs):
                    script = Path(scratch) / f"backlog-{members}-{run}.lua"
                    script.write_text(LUA % {"tokens": quoted, "run": f"m{members}r{run}"})
                    after = newest_post(url)
                    wrk(f"{base}/posts", connections=32, seconds=args.seconds, extra=["-s", str(script)])
                    wait_for(lambda: scalar(url, "SELECT count(*) FROM outbox") == 0, timeout=120, what="the relay")
                    backlog = scalar(url, "SELECT count(*) FROM posts WHERE id > %s", after)
                    applied = scalar(url, "SELECT count(*) FROM processed_events")
                    with contextlib.ExitStack() as running:
                        for _ in range(members):
                            running.enter_context(feedcore("process", settings))
                        wait_for(
                            lambda: scalar(url, "SELECT count(*) FROM processed_events") > applied,  # noqa: B023
                            timeout=120,
                            what="the first post applied",
                        )
                        seconds = caught_up(url, after=after, timeout=300)
                    rates.append(backlog / seconds)
                    print(
                        f"  {members} processor(s), run {run}: {backlog} posts in {seconds:.2f} s: "
                        f"{backlog / seconds:,.0f} posts/s, {backlog * (FOLLOWING + 1) / seconds:,.0f} feed entries/s"
                    )
                rate = statistics.median(rates)
                print(
                    f"{members} processor(s), median of {args.runs}: {rate:,.0f} posts/s, "
                    f"{rate * (FOLLOWING + 1):,.0f} feed entries/s"
                )


if __name__ == "__main__":
    main()

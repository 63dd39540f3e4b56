"""Home-feed reads on the real stack: PostgreSQL, Kafka and the Redis feed cache.

`feedcore serve` and `feedcore process` run in a database, topics and Redis prefix of their own.
--readers users follow 10 of 50 authors each and their feeds fill through the processor; wrk then
reads `GET /feeds/{me}?limit=20` (20 hydrated posts) as every reader in turn, at 32 and 128
connections, with one server process and then two. Beside it a bare Litestar endpoint doing one
Redis read is the ceiling, with as many processes: each feedcore run comes right after a run of the
ceiling, and the report gives the medians of --runs such pairs of --seconds each, and of their
ratios. Last, the cache lookups per page read, from feedcore's /metrics.

Usage: python -m bench.read_redis [--readers 500] [--runs 3] [--seconds 10] [--workers 1,2] [--connections 32,128]
"""

from __future__ import annotations

import argparse
import time
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import psycopg

from bench.harness import (
    backbone_settings,
    compare,
    feedcore,
    feedcore_server,
    granian_app,
    scratch_cache,
    scratch_database,
    wrk,
)
from feedcore import UserId
from feedcore.entrypoints.auth import Tokens

SECRET = "bench-" + "r" * 40
AUTHORS = 50
FOLLOWING = 10
POSTS_PER_AUTHOR = 12

LUA = """
tokens = {%(tokens)s}
counter = 0
function request()
  counter = counter + 1
  local reader = counter %% #tokens
  local headers = {}
  headers["Authorization"] = "Bearer " .. tokens[reader + 1]
  return wrk.format("GET", "/feeds/reader-" .. reader .. "?limit=20", headers)
end
"""


def seed(base: str, url: str, readers: int) -> None:
    """The graph directly in PostgreSQL, the posts through the API; waits for every feed to fill."""
    with psycopg.connect(url, autocommit=True) as connection:
        with connection.cursor().copy("COPY follows (follower_id, followee_id) FROM STDIN") as copy:
            for reader in range(readers):
                for step in range(FOLLOWING):
                    copy.write_row((f"reader-{reader}", f"author-{(reader + step * 7) % AUTHORS}"))
        connection.execute(
            "INSERT INTO user_counts (user_id, followers) SELECT followee_id, count(*) FROM follows GROUP BY 1"
        )
    tokens = Tokens(SECRET)
    with httpx.Client(base_url=base, timeout=30) as client:
        for round_ in range(POSTS_PER_AUTHOR):
            for author in range(AUTHORS):
                client.post(
                    "/posts",
                    json={"content": f"post {round_} by author {author}: " + "lorem ipsum " * 10},
                    headers={"Authorization": f"Bearer {tokens.issue(UserId(f'author-{author}'))}"},
                ).raise_for_status()
    expected = readers * FOLLOWING * POSTS_PER_AUTHOR
    deadline = time.monotonic() + 120
    with psycopg.connect(url, autocommit=True) as connection:
        while connection.execute("SELECT count(*) FROM feed_entries WHERE user_id LIKE 'reader-%'").fetchone() != (
            expected,
        ):
            if time.monotonic() > deadline:
                raise SystemExit("the readers' feeds did not fill")
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readers", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument(
        "--workers", type=lambda text: [int(n) for n in text.split(",")], default=[1, 2], help="e.g. 1,2"
    )
    parser.add_argument(
        "--connections", type=lambda text: [int(n) for n in text.split(",")], default=[32, 128], help="e.g. 32,128"
    )
    args = parser.parse_args()
    with scratch_database() as (name, url), scratch_cache(name) as cache:
        measure(name, url, {**backbone_settings(name, url, SECRET), **cache}, cache["FEEDCORE_REDIS_URL"], args)


def measure(name: str, url: str, settings: dict[str, str], redis_url: str, args: argparse.Namespace) -> None:
    tokens = Tokens(SECRET)
    script = Path(f"/tmp/{name}.lua")  # noqa: S108  # a scratch file for wrk, removed below
    script.write_text(
        LUA % {"tokens": ", ".join(f'"{tokens.issue(UserId(f"reader-{n}"))}"' for n in range(args.readers))}
    )
    try:
        with feedcore("process", settings):
            for workers in args.workers:
                with feedcore_server(settings, workers=workers) as base, ceiling_server(redis_url, workers) as ceiling:
                    if workers == args.workers[0]:
                        seed(base, url, args.readers)
                    # Warm both up: connections, and each reader's feed (the first read of a feed fills its
                    # window, the second keeps its page rendered).
                    read_every_feed(base, tokens, args.readers, times=2)
                    wrk(f"{ceiling}/ceiling", connections=32, seconds=3)
                    wrk(f"{base}/feeds", connections=32, seconds=3, extra=["-s", str(script)])
                    before = lookups(base)
                    for connections in args.connections:
                        # Each feedcore run right after a ceiling run: the machine's pace drifts, the pair's ratio less.
                        pairs = [
                            (
                                wrk(f"{ceiling}/ceiling", connections=connections, seconds=args.seconds),
                                wrk(
                                    f"{base}/feeds",
                                    connections=connections,
                                    seconds=args.seconds,
                                    extra=["-s", str(script)],
                                ),
                            )
                            for _ in range(args.runs)
                        ]
                        compare(
                            f"GET /feeds/{{me}}?limit=20 over {args.readers} readers, PostgreSQL + Redis, "
                            f"granian {workers} worker(s), wrk -t2 -c{connections}",
                            f"ceiling: bare Litestar endpoint, one Redis GET, granian {workers} worker(s), "
                            f"wrk -t2 -c{connections}",
                            pairs,
                        )
                    after = lookups(base)
                    reads = after["page"] - before["page"]
                    print(
                        f"cache lookups per page read ({reads:.0f} reads, {workers} worker(s)): "
                        + ", ".join(f"{kind} {(after[kind] - before[kind]) / max(reads, 1):.2f}" for kind in after)
                    )
    finally:
        script.unlink(missing_ok=True)


def read_every_feed(base: str, tokens: Tokens, readers: int, *, times: int) -> None:
    with httpx.Client(base_url=base, timeout=30) as client:
        for reader in range(readers):
            headers = {"Authorization": f"Bearer {tokens.issue(UserId(f'reader-{reader}'))}"}
            for _ in range(times):
                client.get(f"/feeds/reader-{reader}?limit=20", headers=headers).raise_for_status()


def lookups(base: str) -> dict[str, float]:
    """``feedcore_cache_lookups_total`` by kind, hits and misses together, from the server's /metrics."""
    found = {"page": 0.0, "feed": 0.0, "celebrity": 0.0, "post": 0.0}
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        if line.startswith("feedcore_cache_lookups_total{"):
            kind = line.split('kind="', 1)[1].split('"', 1)[0]
            found[kind] = found.get(kind, 0.0) + float(line.rsplit(" ", 1)[1])
    return found


def ceiling_server(redis_url: str, workers: int) -> AbstractContextManager[str]:
    """The read ceiling, on the benchmark's Redis."""
    return granian_app(
        "bench.ceiling:app",
        workers=workers,
        environment={"BENCH_REDIS_URL": redis_url},
        probe=lambda base: httpx.get(f"{base}/ceiling").raise_for_status(),
    )


if __name__ == "__main__":
    main()

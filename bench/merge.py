"""What the read-time merge of celebrities' posts adds to a home-feed read, on the real stack.

`feedcore serve` and `feedcore process` run on PostgreSQL, Kafka and the Redis feed cache, in a
database, topics and Redis prefix of their own. Two groups of --readers readers each follow 10
authors who post 12 times: in the first group all 10 authors are fanned out; in the second, 2 of
the 10 are celebrities (above FEEDCORE_CELEBRITY_THRESHOLD), whose posts are not written into
feeds and are merged in at read time from their own windows. Both groups read
`GET /feeds/{me}?limit=20` (20 hydrated posts) in turn, through wrk at --connections connections;
the merge's cost is the difference of the two groups' median latencies, measured in the same run.

Usage: python -m bench.merge [--readers 200] [--runs 3] [--seconds 10] [--connections 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import httpx
import psycopg

from bench.harness import (
    Run,
    backbone_settings,
    feedcore,
    feedcore_server,
    report,
    scratch_cache,
    scratch_database,
    wrk,
)
from feedcore import UserId
from feedcore.entrypoints.auth import Tokens

SECRET = "bench-" + "m" * 40
REGULAR = 40
CELEBRITIES = 4
FOLLOWING = 10
MERGED = 2  # celebrities among the 10 a merging reader follows
POSTS_PER_AUTHOR = 12
THRESHOLD = 1_000  # a celebrity has more followers than this
GROUPS = ("fanned", "merging")

LUA = """
tokens = {%(tokens)s}
names = {%(names)s}
counter = 0
function request()
  counter = counter + 1
  local reader = counter %% #tokens + 1
  local headers = {}
  headers["Authorization"] = "Bearer " .. tokens[reader]
  return wrk.format("GET", "/feeds/" .. names[reader] .. "?limit=20", headers)
end
"""


def followees(group: str, reader: int) -> list[str]:
    regular = [f"author-{(reader + step * 7) % REGULAR}" for step in range(FOLLOWING)]
    if group == "fanned":
        return regular
    return regular[: FOLLOWING - MERGED] + [f"celebrity-{(reader + n) % CELEBRITIES}" for n in range(MERGED)]


def seed(base: str, url: str, readers: int) -> None:
    """The graph directly in PostgreSQL (celebrities get extra followers past the threshold), the
    posts through the API; waits until every fanned-out post is in its readers' feeds."""
    with psycopg.connect(url, autocommit=True) as connection:
        with connection.cursor().copy("COPY follows (follower_id, followee_id) FROM STDIN") as copy:
            for group in GROUPS:
                for reader in range(readers):
                    for followee in followees(group, reader):
                        copy.write_row((f"{group}-{reader}", followee))
            for celebrity in range(CELEBRITIES):
                for fan in range(THRESHOLD + 1):
                    copy.write_row((f"fan-{fan:05d}", f"celebrity-{celebrity}"))
        connection.execute(
            "INSERT INTO user_counts (user_id, followers) SELECT followee_id, count(*) FROM follows GROUP BY 1"
        )
    tokens = Tokens(SECRET)
    authors = [f"author-{n}" for n in range(REGULAR)] + [f"celebrity-{n}" for n in range(CELEBRITIES)]
    with httpx.Client(base_url=base, timeout=30) as client:
        for round_ in range(POSTS_PER_AUTHOR):
            for author in authors:
                client.post(
                    "/posts",
                    json={"content": f"post {round_} by {author}: " + "lorem ipsum " * 10},
                    headers={"Authorization": f"Bearer {tokens.issue(UserId(author))}"},
                ).raise_for_status()
    fanned_out = sum(
        1 for group in GROUPS for reader in range(readers) for f in followees(group, reader) if f.startswith("author-")
    )
    expected = fanned_out * POSTS_PER_AUTHOR
    deadline = time.monotonic() + 120
    with psycopg.connect(url, autocommit=True) as connection:
        while True:
            row = connection.execute(
                "SELECT count(*) FROM feed_entries WHERE user_id LIKE 'fanned-%' OR user_id LIKE 'merging-%'"
            ).fetchone()
            if row == (expected,):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"the readers' feeds hold {row} of {expected} entries")
            time.sleep(0.2)
        unfanned = connection.execute("SELECT count(*) FROM posts WHERE NOT fan_out").fetchone()
        celebrities_posts = CELEBRITIES * POSTS_PER_AUTHOR
        if unfanned != (celebrities_posts,):
            raise SystemExit(f"{unfanned} posts were left to the merge, not the celebrities' {celebrities_posts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readers", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=1)
    args = parser.parse_args()
    with scratch_database() as (name, url), scratch_cache(name) as cache:
        settings = {
            **backbone_settings(name, url, SECRET),
            **cache,
            "FEEDCORE_CELEBRITY_THRESHOLD": str(THRESHOLD),
        }
        tokens = Tokens(SECRET)
        scripts = {group: Path(f"/tmp/{name}-{group}.lua") for group in GROUPS}  # noqa: S108  # removed below
        for group, script in scripts.items():
            names = [f"{group}-{reader}" for reader in range(args.readers)]
            script.write_text(
                LUA
                % {
                    "tokens": ", ".join(f'"{tokens.issue(UserId(reader))}"' for reader in names),
                    "names": ", ".join(f'"{reader}"' for reader in names),
                }
            )
        try:
            with feedcore("process", settings), feedcore_server(settings) as base:
                seed(base, url, args.readers)
                medians: dict[str, float] = {}
                for group in GROUPS:
                    extra = ["-s", str(scripts[group])]
                    wrk(f"{base}/feeds", connections=args.connections, seconds=2, extra=extra)  # fills the caches
                    runs: list[Run] = [
                        wrk(f"{base}/feeds", connections=args.connections, seconds=args.seconds, extra=extra)
                        for _ in range(args.runs)
                    ]
                    following = "10 fanned-out authors" if group == "fanned" else f"8 authors + {MERGED} celebrities"
                    report(f"GET /feeds/{{me}}?limit=20, {group} readers ({following}), wrk -c{args.connections}", runs)
                    medians[group] = statistics.median(run.p50 for run in runs)
        finally:
            for script in scripts.values():
                script.unlink(missing_ok=True)
    print(
        f"the merge adds {medians['merging'] - medians['fanned']:.2f} ms to the median read "
        f"({medians['merging']:.2f} against {medians['fanned']:.2f} ms; goal: <= 1 ms)"
    )


if __name__ == "__main__":
    main()

"""Home-feed read benchmark on the embedded server: wrk, 20-post pages, several runs, medians.

Usage: python -m bench.read_embedded [--connections 32] [--runs 5] [--seconds 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import httpx

from bench.harness import feedcore_server, report, wrk
from feedcore import UserId
from feedcore.entrypoints.auth import Tokens

READER = "bench-reader"
AUTHORS = ("bench-author-1", "bench-author-2")
SECRET = "bench-" + "s" * 40


def seed(base: str, tokens: Tokens, posts: int) -> str:
    """Follow two authors, publish ``posts`` posts, wait for the reader's first page to fill."""

    def auth(user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens.issue(UserId(user))}"}

    with httpx.Client(base_url=base, timeout=10) as client:
        for author in AUTHORS:
            client.post("/follow", json={"followee_id": author}, headers=auth(READER)).raise_for_status()
        for n in range(posts):
            body = {"content": f"post {n}: " + "lorem ipsum " * 10}
            client.post("/posts", json=body, headers=auth(AUTHORS[n % 2])).raise_for_status()
        for _ in range(200):
            page = client.get(f"/feeds/{READER}?limit=20", headers=auth(READER)).json()
            if len(page["items"]) == 20:
                return auth(READER)["Authorization"]
            time.sleep(0.05)
    raise SystemExit("the feed never filled")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        settings = {
            "FEEDCORE_RATE_LIMIT_PER_SECOND": "0",
            "FEEDCORE_JWT_SECRET": SECRET,
            "FEEDCORE_DEV_SECRET_FILE": f"{scratch}/unused",
        }
        with feedcore_server(settings) as base:
            authorization = seed(base, Tokens(SECRET), posts=60)
            url = f"{base}/feeds/{READER}?limit=20"
            runs = [
                wrk(
                    url,
                    connections=args.connections,
                    seconds=args.seconds,
                    extra=["-H", f"Authorization: {authorization}"],
                )
                for _ in range(args.runs)
            ]
    report(
        f"GET /feeds/{{me}}, 20 hydrated posts, embedded server (granian, 1 worker), wrk -t2 -c{args.connections}",
        runs,
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()

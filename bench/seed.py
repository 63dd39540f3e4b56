"""Seed a running feedcore with followed authors and posts, and print a reader's token.

Usage: python bench/seed.py BASE_URL [POSTS]
"""

from __future__ import annotations

import sys
import time

import httpx

from entrypoints.auth import Tokens, token_secret
from entrypoints.settings import Settings
from feedcore import UserId


def main(base: str, posts: int) -> None:
    tokens = Tokens(token_secret(Settings.from_env(), create=False))

    def auth(user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens.issue(UserId(user))}"}

    with httpx.Client(base_url=base, timeout=10) as client:
        for author in ("bench-author-1", "bench-author-2"):
            client.post("/follow", json={"followee_id": author}, headers=auth("bench-reader")).raise_for_status()
        for n in range(posts):
            author = f"bench-author-{n % 2 + 1}"
            client.post("/posts", json={"content": f"post {n} " + "x" * 100}, headers=auth(author)).raise_for_status()
        for _ in range(100):
            if len(client.get("/feeds/bench-reader", headers=auth("bench-reader")).json()["items"]) == min(posts, 20):
                break
            time.sleep(0.05)
    print(auth("bench-reader")["Authorization"])


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 40)

"""The final check: every user's whole feed, read through the API at random page sizes, against the
oracle. The authors' own timelines say which of the posts left in doubt exist; everything the API
acknowledged must be there, once, and nothing deleted or unfollowed may show."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from bench.soak.load import Client, Oracle, token_of


async def read_all(client: Client, path: str, limit: Callable[[], int]) -> list[Any] | None:
    """Every item of a paged resource, following its cursors; None if it could not be read."""
    items: list[Any] = []
    cursor: str | None = None
    while True:
        query = f"?limit={limit()}" + ("" if cursor is None else f"&cursor={cursor}")
        response = await client.until_answered("check", "GET", path + query, (200,))
        if response is None or response.status_code != 200:
            return None
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


class Expected:
    """Each user's feed as the oracle has it, once the timelines said which doubtful posts exist."""

    def __init__(self, oracle: Oracle, timelines: dict[str, list[dict[str, Any]]], users: list[str]) -> None:
        self.anomalies: list[str] = []
        by_author: dict[str, list[int]] = {}
        for author, items in timelines.items():
            by_author[author] = [int(item["id"]) for item in items]
            self._check_timeline(oracle, author, items)
        self.feeds = {
            user: sorted(
                (post for author in {user} | oracle.follows[user] for post in by_author.get(author, [])), reverse=True
            )
            for user in users
        }

    def _check_timeline(self, oracle: Oracle, author: str, items: list[dict[str, Any]]) -> None:
        tokens = Counter(token_of(item["content"]) for item in items)
        for token, times in tokens.items():
            posted = oracle.posts.get(token)
            if posted is None or posted.author != author:
                self.anomalies.append(f"{author}'s timeline has a post nobody sent: {token}")
            elif times > 1:
                self.anomalies.append(f"{token} was posted {times} times (Idempotency-Key: {posted.outcome})")
            elif posted.deleted is True:
                self.anomalies.append(f"{token} ({posted.id}) was deleted and is still in {author}'s timeline")
        for posted in oracle.posts.values():
            kept = posted.outcome == "acknowledged" and posted.deleted is False
            if posted.author == author and kept and posted.token not in tokens:
                self.anomalies.append(f"acknowledged post {posted.id} ({posted.token}) is lost")


def compare(user: str, expected: list[int], found: list[int]) -> list[str]:
    """What is wrong with ``found`` as ``user``'s feed, in words (nothing if it is exact)."""
    if found == expected:
        return []
    problems = []
    repeated = [post for post, times in Counter(found).items() if times > 1]
    missing = set(expected) - set(found)
    extra = set(found) - set(expected)
    if repeated:
        problems.append(f"{user}'s feed repeats {len(repeated)} posts, e.g. {repeated[:3]}")
    if missing:
        problems.append(f"{user}'s feed misses {len(missing)} posts, e.g. {sorted(missing)[:3]}")
    if extra:
        problems.append(f"{user}'s feed shows {len(extra)} posts it should not, e.g. {sorted(extra)[:3]}")
    if not problems:
        problems.append(f"{user}'s feed is out of order")
    return problems


async def converge(
    clients: dict[str, Client], expected: Expected, *, since: float, patience: float
) -> tuple[float | None, list[str]]:
    """Poll every user's first page until each is the head of its expected feed: the seconds from
    ``since`` (a monotonic time) until then, or None and what was still wrong after ``patience`` seconds."""
    deadline = time.monotonic() + patience
    while True:
        heads = await asyncio.gather(
            *(
                client.until_answered("check", "GET", f"/feeds/{user}?limit=100", (200,))
                for user, client in clients.items()
            )
        )
        wrong = []
        for (user, _), response in zip(clients.items(), heads, strict=True):
            if response is None or response.status_code != 200:
                wrong.append(f"{user}'s feed could not be read")
                continue
            found = [int(item["id"]) for item in response.json()["items"]]
            wrong += compare(user, expected.feeds[user][:100], found)
        if not wrong:
            return time.monotonic() - since, []
        if time.monotonic() > deadline:
            return None, wrong
        await asyncio.sleep(0.5)


async def whole_feeds(clients: dict[str, Client], expected: Expected, draw: random.Random) -> list[str]:
    """Each feed paged to its end at random page sizes (1-100), against the oracle."""
    problems: list[str] = []
    for user, client in clients.items():
        items = await read_all(client, f"/feeds/{user}", lambda: draw.randint(1, 100))
        if items is None:
            problems.append(f"{user}'s whole feed could not be read")
            continue
        problems += compare(user, expected.feeds[user], [int(item["id"]) for item in items])
    return problems


async def first_pages(clients: dict[str, Client], expected: Expected, sizes: range) -> list[str]:
    """Each feed's first page at every size of ``sizes``: a first page is kept rendered, one copy
    for each size, and a copy that missed a change would show only at its own size."""
    problems: list[str] = []
    for user, client in clients.items():
        for size in sizes:
            response = await client.until_answered("check", "GET", f"/feeds/{user}?limit={size}", (200,))
            if response is None or response.status_code != 200:
                problems.append(f"{user}'s first page of {size} could not be read")
                continue
            found = [int(item["id"]) for item in response.json()["items"]]
            wrong = compare(user, expected.feeds[user][:size], found)
            problems += [f"{problem} (first page of {size})" for problem in wrong]
    return problems


async def following(clients: dict[str, Client], oracle: Oracle) -> list[str]:
    problems = []
    for user, client in clients.items():
        items = await read_all(client, f"/users/{user}/following", lambda: 100)
        if items is None or set(items) != oracle.follows[user]:
            problems.append(f"{user} follows {sorted(items or [])}, acknowledged: {sorted(oracle.follows[user])}")
    return problems

"""Steady mixed load from many users, and the oracle it builds: only what the API acknowledged.

Each user is one client doing one thing at a time, as a person's app would: posts (half of them with
an Idempotency-Key), deletes of its own posts, follows, unfollows and feed reads. On a timeout, a lost
connection or a 503 it retries as a real client would: a keyed post with the same key and body,
follows, unfollows and deletes (all idempotent) as they were. A post without a key is not retried: it
may or may not exist, and the final check accepts either, once.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

#: How long a client waits for an answer before it counts a timeout (and retries, where it may).
CLIENT_TIMEOUT = 10.0
#: How long a client keeps retrying an operation before it gives up on it.
GIVE_UP_AFTER = 120.0
WEIGHTS = {"read": 46, "post": 30, "delete": 8, "follow": 9, "unfollow": 7}
#: The page sizes users read their feeds at.
READ_SIZES = range(1, 51)


@dataclass
class Posted:
    token: str
    author: str
    #: "acknowledged" (201), or "unknown" (no answer, and no key to ask again with).
    outcome: str
    id: str | None = None
    #: True once a delete was acknowledged (204, or 404 after a retry); None if it was given up on.
    deleted: bool | None = False


@dataclass
class Oracle:
    """What the API acknowledged, and what it may have done without saying."""

    posts: dict[str, Posted] = field(default_factory=dict)
    follows: dict[str, set[str]] = field(default_factory=dict)
    anomalies: list[str] = field(default_factory=list)
    operations: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: Operations given up on after GIVE_UP_AFTER of retries.
    abandoned: Counter[str] = field(default_factory=Counter)

    def anomaly(self, text: str) -> None:
        self.anomalies.append(text)


def token_of(content: str) -> str:
    return content.split(" ", 1)[0]


class Client:
    """One user's client: its requests, answers counted in the oracle, and its retries."""

    def __init__(self, http: httpx.AsyncClient, user: str, token: str, oracle: Oracle) -> None:
        self.http = http
        self.user = user
        self.headers = {"Authorization": f"Bearer {token}"}
        self.oracle = oracle

    async def call(
        self, operation: str, method: str, url: str, *, body: Any = None, key: str | None = None
    ) -> httpx.Response | None:
        """One request; None when no answer came (timeout, connection refused or dropped)."""
        headers = self.headers if key is None else {**self.headers, "Idempotency-Key": key}
        try:
            response = await self.http.request(method, url, json=body, headers=headers, timeout=CLIENT_TIMEOUT)
        except httpx.TimeoutException:
            self.oracle.operations[operation, "timeout"] += 1
            return None
        except httpx.TransportError:
            self.oracle.operations[operation, "no connection"] += 1
            return None
        self.oracle.operations[operation, str(response.status_code)] += 1
        if response.status_code >= 500 and not (response.status_code == 503 and "retry-after" in response.headers):
            self.oracle.anomaly(f"{method} {url} by {self.user}: {response.status_code} {response.text[:300]}")
        elif response.status_code in (429, 503) and "retry-after" not in response.headers:
            self.oracle.anomaly(f"{method} {url} by {self.user}: {response.status_code} without Retry-After")
        return response

    async def until_answered(
        self, operation: str, method: str, url: str, final: tuple[int, ...], *, body: Any = None, key: str | None = None
    ) -> httpx.Response | None:
        """Retry until one of the ``final`` statuses (or something unexpected) comes back."""
        deadline = time.monotonic() + GIVE_UP_AFTER
        while time.monotonic() < deadline:
            response = await self.call(operation, method, url, body=body, key=key)
            if response is not None and response.status_code not in (409, 429, 503):
                if response.status_code not in final:
                    self.oracle.anomaly(f"{method} {url} by {self.user}: {response.status_code} {response.text[:300]}")
                return response
            await asyncio.sleep(0.2 if response is None else min(1.0, float(response.headers.get("retry-after", 1))))
        self.oracle.abandoned[operation] += 1
        self.oracle.anomaly(f"{method} {url} by {self.user}: no answer but 503s and timeouts in {GIVE_UP_AFTER:.0f} s")
        return None

    async def publish(self, token: str, *, keyed: bool) -> Posted:
        content = f"{token} posted by {self.user}"
        posted = Posted(token, self.user, "unknown")
        self.oracle.posts[token] = posted
        if keyed:
            response = await self.until_answered("post", "POST", "/posts", (201,), body={"content": content}, key=token)
        else:
            response = await self.call("post", "POST", "/posts", body={"content": content})
            if response is not None and response.status_code not in (201, 429, 503):
                self.oracle.anomaly(f"POST /posts by {self.user}: {response.status_code} {response.text[:300]}")
        if response is not None and response.status_code == 201:
            created = response.json()
            if token_of(created["content"]) != token:
                self.oracle.anomaly(f"POST /posts by {self.user} answered with another post: {created}")
            posted.outcome, posted.id = "acknowledged", str(created["id"])
        elif response is not None and response.status_code == 429:  # refused before anything was written
            del self.oracle.posts[token]
        return posted


class User:
    def __init__(self, client: Client, everyone: list[str], draw: random.Random) -> None:
        self.client = client
        self.name = client.user
        self.everyone = [other for other in everyone if other != self.name]
        self.draw = draw
        self.count = 0
        self.mine: list[Posted] = []

    @property
    def oracle(self) -> Oracle:
        return self.client.oracle

    async def run(self, stop: asyncio.Event, pace: float) -> None:
        while not stop.is_set():
            operation = self.draw.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
            await getattr(self, operation)()
            await asyncio.sleep(self.draw.expovariate(1 / pace))

    async def read(self) -> None:
        limit = self.draw.choice(READ_SIZES)
        response = await self.client.call("read", "GET", f"/feeds/{self.name}?limit={limit}")
        if response is None or response.status_code != 200:
            if response is not None and response.status_code not in (429, 503):
                self.oracle.anomaly(f"GET /feeds/{self.name}?limit={limit}: {response.status_code}")
            return
        ids = [int(item["id"]) for item in response.json()["items"]]
        if ids != sorted(set(ids), reverse=True):
            self.oracle.anomaly(f"a page of {self.name}'s feed is out of order or repeats a post: {ids}")

    async def post(self) -> None:
        self.count += 1
        posted = await self.client.publish(
            f"{self.name}.{self.count}.{uuid.uuid4().hex[:6]}", keyed=self.draw.random() < 0.5
        )
        if posted.outcome == "acknowledged":
            self.mine.append(posted)

    async def delete(self) -> None:
        if not self.mine:
            return
        posted = self.mine.pop(self.draw.randrange(len(self.mine)))
        first = await self.client.call("delete", "DELETE", f"/posts/{posted.id}")
        if first is not None and first.status_code == 404:
            self.oracle.anomaly(f"{self.name}'s acknowledged post {posted.id} ({posted.token}) was not found to delete")
        response = first
        if first is None or first.status_code in (429, 503):
            response = await self.client.until_answered("delete", "DELETE", f"/posts/{posted.id}", (204, 404))
        posted.deleted = None if response is None else response.status_code in (204, 404)

    async def follow(self) -> None:
        followee = self.draw.choice(self.everyone)
        response = await self.client.until_answered("follow", "POST", "/follow", (204,), body={"followee_id": followee})
        if response is not None and response.status_code == 204:
            self.oracle.follows[self.name].add(followee)

    async def unfollow(self) -> None:
        following = sorted(self.oracle.follows[self.name])
        if not following:
            return
        followee = self.draw.choice(following)
        response = await self.client.until_answered("unfollow", "DELETE", f"/follow/{followee}", (204,))
        if response is not None and response.status_code == 204:
            self.oracle.follows[self.name].discard(followee)

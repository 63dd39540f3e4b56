"""The client the HTTP tests drive the API with, and what they check its answers with."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from feedcore import UserId
from feedcore.entrypoints.auth import Tokens
from feedcore.entrypoints.settings import Settings

SECRET: Final = "x" * 40
OTHER_SECRET: Final = "y" * 40
PROBLEM_MEDIA_TYPE: Final = "application/problem+json"
POST_FIELDS: Final = {"id", "author_id", "content", "created_at"}
#: How long the embedded worker may take to fan a post out, polled every POLL_SECONDS.
FAN_OUT_SECONDS: Final = 5.0
POLL_SECONDS: Final = 0.02
#: The users of the shared, seeded world.
SEEDED_USERS: Final = ("ana", "bo", "cy")

JsonObject = dict[str, Any]
Serve = Callable[..., "Api"]


def make_settings(state_dir: Path, **changes: Any) -> Settings:
    """Settings given in full: the secret is explicit, so neither the environment nor a secret file is read."""
    return Settings(jwt_secret=SECRET, dev_secret_file=str(state_dir / "dev-jwt-secret"), **changes)


def token(user: str, *, secret: str = SECRET, ttl: timedelta = timedelta(hours=1)) -> str:
    return Tokens(secret).issue(UserId(user), ttl=ttl)


def authorization(bearer_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {bearer_token}"}


def assert_problem(response: httpx.Response, status: HTTPStatus, *, code: str | None = None) -> JsonObject:
    """``response`` is an RFC 9457 problem document for ``status`` (and ``code``, when given)."""
    assert response.status_code == status, f"expected {status.value}, got {response.status_code}: {response.text}"
    assert response.headers["content-type"].split(";")[0].strip() == PROBLEM_MEDIA_TYPE
    problem: JsonObject = response.json()
    assert problem["status"] == status.value
    assert problem["title"] == status.phrase
    assert isinstance(problem["detail"], str)
    assert problem["detail"]
    assert isinstance(problem["type"], str)
    if code is None:
        assert problem["type"] == "about:blank" or problem["type"].startswith("urn:feedcore:problem:")
    else:
        assert problem["code"] == code
        assert problem["type"] == f"urn:feedcore:problem:{code}"
    return problem


def assert_post(post: JsonObject, *, author: str, content: str) -> None:
    assert set(post) == POST_FIELDS
    assert isinstance(post["id"], str)
    assert post["id"].isdecimal()
    assert post["id"][0] != "0"
    assert 0 < int(post["id"]) < 2**63
    assert post["author_id"] == author
    assert post["content"] == content
    assert datetime.fromisoformat(post["created_at"]).tzinfo is not None


def newest_first(posts: Iterable[JsonObject]) -> list[JsonObject]:
    return sorted(posts, key=lambda post: int(post["id"]), reverse=True)


class Api:
    """The API as a client sees it; a 5xx on any request fails the test at once."""

    def __init__(self, client: TestClient[Litestar]) -> None:
        self._client = client

    def request(
        self,
        method: str,
        path: str,
        *,
        user: str | None = None,
        body: object = None,
        raw: bytes | Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
    ) -> httpx.Response:
        """Send a request: as ``user`` when given, with ``body`` as JSON or ``raw`` bytes as they are."""
        sent = authorization(token(user)) if user is not None else {}
        content = json.dumps(body).encode() if body is not None else raw
        if content is not None:
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        response = self._client.request(method, path, content=content, headers=sent, params=dict(params or {}))
        assert response.status_code < HTTPStatus.INTERNAL_SERVER_ERROR, (
            f"{method} {path} gave a server error: {response.status_code} {response.text}"
        )
        return response

    def get(self, path: str, *, user: str | None = None, params: Mapping[str, str | int] | None = None) -> Any:
        response = self.request("GET", path, user=user, params=params)
        assert response.status_code == HTTPStatus.OK, response.text
        media_type = response.headers["content-type"].split(";")[0].strip()
        assert media_type == "application/json" or media_type.endswith("+json"), media_type
        return response.json()

    def publish(self, user: str, content: str) -> JsonObject:
        response = self.request("POST", "/posts", user=user, body={"content": content})
        assert response.status_code == HTTPStatus.CREATED, response.text
        created: JsonObject = response.json()
        return created

    def follow(self, follower: str, followee: str) -> None:
        response = self.request("POST", "/follow", user=follower, body={"followee_id": followee})
        assert response.status_code == HTTPStatus.NO_CONTENT, response.text
        assert response.content == b""

    def unfollow(self, follower: str, followee: str) -> None:
        response = self.request("DELETE", f"/follow/{followee}", user=follower)
        assert response.status_code == HTTPStatus.NO_CONTENT, response.text
        assert response.content == b""

    def mute(self, user: str, author: str) -> None:
        self.no_content("POST", f"/mutes/{author}", user=user)

    def unmute(self, user: str, author: str) -> None:
        self.no_content("DELETE", f"/mutes/{author}", user=user)

    def block(self, blocker: str, blocked: str) -> None:
        self.no_content("POST", f"/blocks/{blocked}", user=blocker)

    def unblock(self, blocker: str, blocked: str) -> None:
        self.no_content("DELETE", f"/blocks/{blocked}", user=blocker)

    def no_content(self, method: str, path: str, *, user: str) -> None:
        response = self.request(method, path, user=user)
        assert response.status_code == HTTPStatus.NO_CONTENT, response.text
        assert response.content == b""

    def delete(self, user: str, post_id: str) -> None:
        response = self.request("DELETE", f"/posts/{post_id}", user=user)
        assert response.status_code == HTTPStatus.NO_CONTENT, response.text
        assert response.content == b""

    def profile(self, user: str) -> JsonObject:
        found: JsonObject = self.get(f"/users/{user}")
        return found

    def collect(self, path: str, *, limit: int, user: str | None = None) -> list[Any]:
        """Every item of a paged list, following ``next_cursor`` page by page."""
        items: list[Any] = []
        params: dict[str, str | int] = {"limit": limit}
        for _ in range(1_000):
            page = self.get(path, user=user, params=params)
            assert set(page) == {"items", "next_cursor"}
            assert len(page["items"]) <= limit
            items.extend(page["items"])
            if page["next_cursor"] is None:
                return items
            assert isinstance(page["next_cursor"], str)
            params = {"limit": limit, "cursor": page["next_cursor"]}
        pytest.fail(f"{path} never reached its last page")

    def feed(self, user: str) -> list[JsonObject]:
        items: list[JsonObject] = self.get(f"/feeds/{user}", user=user, params={"limit": 100})["items"]
        return items

    def wait_for_feed(self, user: str, expected: list[JsonObject]) -> list[JsonObject]:
        """``user``'s feed once it equals ``expected``, or as it is when fan-out runs out of time."""
        items = self.feed(user)
        for _ in range(int(FAN_OUT_SECONDS / POLL_SECONDS)):
            if items == expected:
                break
            time.sleep(POLL_SECONDS)
            items = self.feed(user)
        return items

    def world(self, *users: str) -> JsonObject:
        """What the public reads say about ``users``: counts, posts and both follow lists."""
        return {
            user: {
                "profile": self.profile(user),
                "posts": self.collect(f"/users/{user}/posts", limit=100),
                "followers": self.collect(f"/users/{user}/followers", limit=100),
                "following": self.collect(f"/users/{user}/following", limit=100),
            }
            for user in users
        }


@dataclass(frozen=True, slots=True)
class Seeded:
    """One app shared by the rejection tests, with a known world that no rejection may change."""

    api: Api
    ana_posts: list[JsonObject]
    bo_post: JsonObject
    before: JsonObject

    def assert_unchanged(self) -> None:
        assert self.api.world(*SEEDED_USERS) == self.before

"""The HTTP API through Litestar's test client on the embedded app: every route, every error class.

Every request goes through :meth:`Api.request`, which fails the test on any 5xx. Tests that change
state get an app of their own; the rejection tests share one seeded app and check, after every
rejected request, that the seeded world is exactly as it was.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final

import httpx
import jwt
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from entrypoints.auth import Tokens
from entrypoints.container import embedded_container
from entrypoints.http.app import create_app, create_service_app
from entrypoints.settings import Settings
from feedcore import IdempotencyRecord, UserId

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


# --- helpers -------------------------------------------------------------------------------------


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


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """Start embedded apps, each with its lifespan (and so its fan-out worker) running; settings as keywords."""
    with ExitStack() as stack:

        def start(**changes: Any) -> Api:
            app = create_service_app(make_settings(tmp_path, **changes))
            return Api(stack.enter_context(TestClient(app)))

        yield start


@pytest.fixture
def api(serve: Serve) -> Api:
    return serve()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    # Rate limiting is off here: the rejected writes of many tests would otherwise add up to a 429.
    settings = make_settings(tmp_path_factory.mktemp("seeded"), rate_limit_per_second=0)
    with TestClient(create_service_app(settings)) as client:
        api = Api(client)
        api.follow("ana", "bo")
        api.follow("ana", "cy")
        api.follow("bo", "ana")
        api.follow("cy", "ana")
        ana_posts = [api.publish("ana", "first by ana"), api.publish("ana", "second by ana")]
        bo_post = api.publish("bo", "by bo")
        yield Seeded(api=api, ana_posts=ana_posts, bo_post=bo_post, before=api.world(*SEEDED_USERS))


# --- every route ---------------------------------------------------------------------------------


def test_publishing_returns_the_post_with_its_id_as_a_decimal_string(api: Api) -> None:
    response = api.request("POST", "/posts", user="ana", body={"content": "hello, feed"})

    assert response.status_code == HTTPStatus.CREATED
    assert response.headers["content-type"].startswith("application/json")
    assert_post(response.json(), author="ana", content="hello, feed")


def test_a_post_reads_back_as_it_was_published(api: Api) -> None:
    created = api.publish("ana", "hello, feed")

    assert api.get(f"/posts/{created['id']}") == created
    assert api.profile("ana")["posts"] == 1


@pytest.mark.parametrize("content", ["a", "a" * 5_000, "é" * 5_000, "🙂" * 5_000], ids=["1", "5000", "é", "emoji"])
def test_content_of_1_to_5000_characters_is_accepted(api: Api, content: str) -> None:
    created = api.publish("ana", content)

    assert_post(created, author="ana", content=content)
    assert api.get(f"/posts/{created['id']}")["content"] == content


def test_the_author_deletes_a_post_and_it_is_gone(api: Api) -> None:
    kept, deleted = api.publish("ana", "kept"), api.publish("ana", "deleted")

    api.delete("ana", deleted["id"])

    assert_problem(api.request("GET", f"/posts/{deleted['id']}"), HTTPStatus.NOT_FOUND, code="post_not_found")
    assert_problem(
        api.request("DELETE", f"/posts/{deleted['id']}", user="ana"), HTTPStatus.NOT_FOUND, code="post_not_found"
    )
    assert api.get(f"/posts/{kept['id']}") == kept
    assert api.profile("ana")["posts"] == 1
    assert api.collect("/users/ana/posts", limit=100) == [kept]


def test_following_is_idempotent(api: Api) -> None:
    api.follow("ana", "bo")
    api.follow("ana", "bo")

    assert api.profile("ana") == {"user_id": "ana", "followers": 0, "following": 1, "posts": 0}
    assert api.profile("bo") == {"user_id": "bo", "followers": 1, "following": 0, "posts": 0}
    assert api.get("/users/bo/followers") == {"items": ["ana"], "next_cursor": None}
    assert api.get("/users/ana/following") == {"items": ["bo"], "next_cursor": None}


def test_unfollowing_is_idempotent(api: Api) -> None:
    api.follow("ana", "bo")

    api.unfollow("ana", "bo")
    api.unfollow("ana", "bo")
    api.unfollow("ana", "never-followed")

    assert api.profile("ana") == {"user_id": "ana", "followers": 0, "following": 0, "posts": 0}
    assert api.profile("bo") == {"user_id": "bo", "followers": 0, "following": 0, "posts": 0}
    assert api.get("/users/bo/followers") == {"items": [], "next_cursor": None}
    assert api.get("/users/ana/following") == {"items": [], "next_cursor": None}


def test_the_feed_shows_a_followed_authors_post_after_fan_out(api: Api) -> None:
    api.follow("ana", "bo")
    post = api.publish("bo", "hello, feed")

    assert api.wait_for_feed("ana", [post]) == [post]
    assert api.get("/feeds/ana", user="ana") == {"items": [post], "next_cursor": None}


def test_a_delete_and_an_unfollow_show_in_the_feed_at_once(api: Api) -> None:
    api.follow("ana", "bo")
    kept, deleted = api.publish("bo", "kept"), api.publish("bo", "deleted")
    assert api.wait_for_feed("ana", [deleted, kept]) == [deleted, kept]

    api.delete("bo", deleted["id"])
    assert api.feed("ana") == [kept]

    api.unfollow("ana", "bo")
    assert api.feed("ana") == []


def test_paging_the_feed_at_any_size_reproduces_the_whole_feed(api: Api) -> None:
    api.follow("ana", "bo")
    posts = [api.publish("bo", f"bo {n}") for n in range(4)]
    posts += [api.publish("cy", f"cy {n}") for n in range(3)]
    api.follow("ana", "cy")  # after cy's posts: they reach the feed by backfill
    posts += [api.publish("ana", f"ana {n}") for n in range(2)]
    api.publish("dee", "not followed")
    whole = newest_first(posts)

    assert api.wait_for_feed("ana", whole) == whole
    for limit in (1, 2, 3, 4, 9, 100):
        assert api.collect("/feeds/ana", user="ana", limit=limit) == whole, f"limit={limit}"
    first = api.get("/feeds/ana", user="ana", params={"limit": 4})
    assert first["items"] == whole[:4]
    assert isinstance(first["next_cursor"], str)


def test_the_feed_is_twenty_posts_a_page_by_default(api: Api) -> None:
    posts = newest_first(api.publish("ana", f"post {n}") for n in range(21))
    assert api.wait_for_feed("ana", posts) == posts  # fan-out reaches even the author's own feed later

    page = api.get("/feeds/ana", user="ana")

    assert page["items"] == posts[:20]
    assert api.get("/feeds/ana", user="ana", params={"cursor": page["next_cursor"]}) == {
        "items": posts[20:],
        "next_cursor": None,
    }


def test_a_profile_counts_followers_following_and_posts(api: Api) -> None:
    api.follow("ana", "bo")
    api.follow("ana", "cy")
    api.follow("bo", "ana")
    api.publish("ana", "one")
    api.publish("ana", "two")
    api.publish("bo", "three")

    assert api.profile("ana") == {"user_id": "ana", "followers": 1, "following": 2, "posts": 2}
    assert api.profile("bo") == {"user_id": "bo", "followers": 1, "following": 1, "posts": 1}
    assert api.profile("cy") == {"user_id": "cy", "followers": 1, "following": 0, "posts": 0}
    assert api.profile("nobody") == {"user_id": "nobody", "followers": 0, "following": 0, "posts": 0}


def test_an_authors_posts_page_newest_first(api: Api) -> None:
    posts = newest_first(api.publish("ana", f"post {n}") for n in range(5))
    api.publish("bo", "someone else's")

    first = api.get("/users/ana/posts", params={"limit": 2})

    assert first["items"] == posts[:2]
    assert isinstance(first["next_cursor"], str)
    assert api.get("/users/ana/posts", params={"limit": 2, "cursor": first["next_cursor"]})["items"] == posts[2:4]
    assert api.get("/users/ana/posts") == {"items": posts, "next_cursor": None}
    for limit in (1, 2, 3, 5, 100):
        assert api.collect("/users/ana/posts", limit=limit) == posts, f"limit={limit}"
    assert api.get("/users/cy/posts") == {"items": [], "next_cursor": None}


def test_followers_and_following_page_in_id_order(api: Api) -> None:
    for follower in ("dee", "bo", "cy", "ana"):
        api.follow(follower, "eve")
    api.follow("ana", "bo")

    first = api.get("/users/eve/followers", params={"limit": 3})
    assert first["items"] == ["ana", "bo", "cy"]
    assert api.get("/users/eve/followers", params={"limit": 3, "cursor": first["next_cursor"]}) == {
        "items": ["dee"],
        "next_cursor": None,
    }
    for limit in (1, 2, 4, 100):
        assert api.collect("/users/eve/followers", limit=limit) == ["ana", "bo", "cy", "dee"]
        assert api.collect("/users/ana/following", limit=limit) == ["bo", "eve"]
    assert api.get("/users/eve/following") == {"items": [], "next_cursor": None}


def test_health_and_readiness(api: Api) -> None:
    assert api.get("/healthz") == {"status": "ok"}
    assert api.get("/readyz") == {"status": "ready"}


def test_metrics_are_prometheus_text(api: Api) -> None:
    response = api.request("GET", "/metrics")

    assert response.status_code == HTTPStatus.OK
    media_type, *parameters = (part.strip() for part in response.headers["content-type"].split(";"))
    assert media_type == "text/plain"
    assert "version=0.0.4" in parameters
    # The text exposition format: comment lines, and samples of a name and a value.
    assert all(line.startswith("#") or len(line.split()) >= 2 for line in response.text.splitlines())


def test_the_metrics_content_type_names_its_charset_once(api: Api) -> None:
    content_type = api.request("GET", "/metrics").headers["content-type"]

    parameters = [part.strip().split("=")[0].lower() for part in content_type.split(";")[1:]]
    assert parameters.count("charset") == 1, content_type


def test_the_openapi_document_is_3_1_and_lists_every_route(api: Api) -> None:
    document = api.get("/schema/openapi.json")

    assert document["openapi"].startswith("3.1")
    assert {
        "/posts",
        "/posts/{post_id}",
        "/follow",
        "/follow/{followee_id}",
        "/feeds/{user_id}",
        "/users/{user_id}",
        "/users/{user_id}/posts",
        "/users/{user_id}/followers",
        "/users/{user_id}/following",
        "/healthz",
        "/readyz",
        "/metrics",
    } <= set(document["paths"])


# --- 400: bad input, which changes nothing -------------------------------------------------------

BAD_BODIES: Final = [
    pytest.param("/posts", b'{"content": "hi"', id="posts-malformed-json"),
    pytest.param("/posts", b"hello", id="posts-not-json"),
    pytest.param("/posts", b"", id="posts-empty-body"),
    pytest.param("/posts", b"null", id="posts-null"),
    pytest.param("/posts", b'["hi"]', id="posts-array"),
    pytest.param("/posts", b"{}", id="posts-missing-content"),
    pytest.param("/posts", b'{"content": "hi", "author_id": "bo"}', id="posts-unknown-field"),
    pytest.param("/posts", b'{"content": 5}', id="posts-content-not-a-string"),
    pytest.param("/posts", b'{"content": ""}', id="posts-empty-content"),
    pytest.param("/posts", json.dumps({"content": "a" * 5_001}).encode(), id="posts-5001-characters"),
    pytest.param("/posts", b'{"content": "\xff"}', id="posts-invalid-utf8"),
    pytest.param("/posts", b'{"content": ' + b"[" * 5_000 + b"]" * 5_000 + b"}", id="posts-deeply-nested"),
    pytest.param("/follow", b'{"followee_id": ', id="follow-malformed-json"),
    pytest.param("/follow", b"{}", id="follow-missing-followee"),
    pytest.param("/follow", b'{"followee_id": "bo", "follower_id": "cy"}', id="follow-unknown-field"),
    pytest.param("/follow", b'{"followee_id": 7}', id="follow-followee-not-a-string"),
    pytest.param("/follow", b'{"followee_id": "a b"}', id="follow-bad-user-id"),
    pytest.param("/follow", b'{"followee_id": ""}', id="follow-empty-user-id"),
    pytest.param("/follow", json.dumps({"followee_id": "a" * 65}).encode(), id="follow-65-character-user-id"),
    pytest.param("/follow", b'{"followee_id": "\xed\xa0\x80"}', id="follow-invalid-utf8"),
]


@pytest.mark.parametrize(("path", "raw"), BAD_BODIES)
def test_a_bad_write_body_is_a_400_and_changes_nothing(seeded: Seeded, path: str, raw: bytes) -> None:
    assert_problem(seeded.api.request("POST", path, user="ana", raw=raw), HTTPStatus.BAD_REQUEST)
    seeded.assert_unchanged()


@pytest.mark.parametrize(
    ("method", "path", "user"),
    [
        ("GET", "/posts/abc", None),
        ("GET", "/posts/0", None),
        ("GET", "/posts/-5", None),
        ("GET", "/posts/01", None),
        ("GET", "/posts/1e3", None),
        ("GET", "/posts/12345678901234567890", None),
        ("DELETE", "/posts/abc", "ana"),
        ("DELETE", "/posts/0", "ana"),
        ("GET", "/users/a%20b", None),
        ("GET", "/users/" + "a" * 65, None),
        ("GET", "/users/a%20b/posts", None),
        ("GET", "/users/a%20b/followers", None),
        ("GET", "/users/a%20b/following", None),
        ("GET", "/feeds/a%20b", "ana"),
        ("DELETE", "/follow/a%20b", "ana"),
    ],
)
def test_a_bad_id_in_the_path_is_a_400(seeded: Seeded, method: str, path: str, user: str | None) -> None:
    assert_problem(seeded.api.request(method, path, user=user), HTTPStatus.BAD_REQUEST)
    seeded.assert_unchanged()


@pytest.mark.parametrize("path", ["/users/ana/posts", "/users/ana/followers", "/users/ana/following", "/feeds/ana"])
@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "-1"},
        {"limit": "ten"},
        {"cursor": "garbage!"},
        {"cursor": "Zm9v"},
        {"cursor": "A" * 257},
    ],
    ids=["limit-0", "limit-101", "limit-negative", "limit-not-a-number", "cursor-garbage", "cursor-foo", "cursor-long"],
)
def test_bad_paging_parameters_are_a_400(seeded: Seeded, path: str, params: dict[str, str]) -> None:
    assert_problem(seeded.api.request("GET", path, user="ana", params=params), HTTPStatus.BAD_REQUEST)


def test_a_cursor_of_another_kind_of_list_is_a_400(seeded: Seeded) -> None:
    api = seeded.api
    post_cursor = api.get("/users/ana/posts", params={"limit": 1})["next_cursor"]
    user_cursor = api.get("/users/ana/followers", params={"limit": 1})["next_cursor"]

    for path, cursor in [
        ("/users/ana/followers", post_cursor),
        ("/users/ana/following", post_cursor),
        ("/users/ana/posts", user_cursor),
        ("/feeds/ana", user_cursor),
    ]:
        response = api.request("GET", path, user="ana", params={"cursor": cursor})
        assert_problem(response, HTTPStatus.BAD_REQUEST, code="invalid_cursor")


@pytest.mark.parametrize("key", ["", "has space", "k" * 256], ids=["empty", "space", "256-characters"])
def test_a_malformed_idempotency_key_is_a_400(seeded: Seeded, key: str) -> None:
    response = seeded.api.request(
        "POST", "/posts", user="ana", body={"content": "keyed"}, headers={"Idempotency-Key": key}
    )

    assert_problem(response, HTTPStatus.BAD_REQUEST)
    seeded.assert_unchanged()


# --- 401: who is asking --------------------------------------------------------------------------

MISSING = "missing"
INVALID = "invalid"
AUTH_FAILURES: Final = [
    pytest.param({}, MISSING, id="no-header"),
    pytest.param({"Authorization": "Basic YW5hOnB3"}, MISSING, id="basic-scheme"),
    pytest.param({"Authorization": "Bearer"}, MISSING, id="bearer-without-token"),
    pytest.param(authorization("not.a.jwt"), INVALID, id="garbage-token"),
    pytest.param(authorization(token("ana", ttl=timedelta(seconds=-1))), INVALID, id="expired"),
    pytest.param(authorization(token("ana", secret=OTHER_SECRET)), INVALID, id="another-secret"),
    pytest.param(authorization(token("a b")), INVALID, id="sub-not-a-user-id"),
    pytest.param(authorization(jwt.encode({"sub": "ana"}, SECRET, algorithm="HS256")), INVALID, id="no-expiry"),
    pytest.param(
        authorization(jwt.encode({"sub": "ana", "exp": 4_102_444_800}, "", algorithm="none")), INVALID, id="unsigned"
    ),
]


@pytest.mark.parametrize(("headers", "failure"), AUTH_FAILURES)
def test_a_request_without_a_valid_bearer_token_is_a_401(seeded: Seeded, headers: dict[str, str], failure: str) -> None:
    own_post = seeded.ana_posts[0]["id"]
    for method, path, body in [
        ("POST", "/posts", {"content": "unauthenticated"}),
        ("DELETE", f"/posts/{own_post}", None),
        ("POST", "/follow", {"followee_id": "eve"}),
        ("DELETE", "/follow/bo", None),
        ("GET", "/feeds/ana", None),
    ]:
        response = seeded.api.request(method, path, body=body, headers=headers)
        assert_problem(response, HTTPStatus.UNAUTHORIZED)
        challenge = response.headers["www-authenticate"]
        assert challenge.split()[0] == "Bearer", f"{method} {path}: {challenge}"
        # RFC 6750: no error code when no credentials were given, invalid_token for bad ones.
        assert ('error="invalid_token"' in challenge) == (failure == INVALID), f"{method} {path}: {challenge}"
    seeded.assert_unchanged()


# --- 403, 404, 422 -------------------------------------------------------------------------------


def test_deleting_another_users_post_is_a_403(seeded: Seeded) -> None:
    post = seeded.bo_post

    assert_problem(
        seeded.api.request("DELETE", f"/posts/{post['id']}", user="ana"), HTTPStatus.FORBIDDEN, code="forbidden"
    )
    assert seeded.api.get(f"/posts/{post['id']}") == post
    seeded.assert_unchanged()


def test_reading_another_users_feed_is_a_403(seeded: Seeded) -> None:
    assert_problem(seeded.api.request("GET", "/feeds/bo", user="ana"), HTTPStatus.FORBIDDEN, code="forbidden")


@pytest.mark.parametrize("post_id", ["1", "9223372036854775807"])
@pytest.mark.parametrize(("method", "user"), [("GET", None), ("DELETE", "ana")])
def test_a_missing_post_is_a_404(seeded: Seeded, method: str, user: str | None, post_id: str) -> None:
    assert_problem(
        seeded.api.request(method, f"/posts/{post_id}", user=user), HTTPStatus.NOT_FOUND, code="post_not_found"
    )
    seeded.assert_unchanged()


@pytest.mark.parametrize("path", ["/nope", "/users/ana/likes", "/posts/1/comments"])
def test_an_unknown_route_is_a_404(seeded: Seeded, path: str) -> None:
    assert_problem(seeded.api.request("GET", path, user="ana"), HTTPStatus.NOT_FOUND)


def test_following_yourself_is_a_422(seeded: Seeded) -> None:
    response = seeded.api.request("POST", "/follow", user="ana", body={"followee_id": "ana"})

    assert_problem(response, HTTPStatus.UNPROCESSABLE_ENTITY, code="self_follow")
    seeded.assert_unchanged()


# --- Idempotency-Key: replays, 422 and 409 -------------------------------------------------------


def publish_keyed(api: Api, user: str, content: str, key: str) -> httpx.Response:
    return api.request("POST", "/posts", user=user, body={"content": content}, headers={"Idempotency-Key": key})


def test_a_repeat_with_the_same_idempotency_key_replays_the_first_response(api: Api) -> None:
    first = publish_keyed(api, "ana", "hello once", "key-1")
    second = publish_keyed(api, "ana", "hello once", "key-1")

    assert first.status_code == second.status_code == HTTPStatus.CREATED
    assert second.json() == first.json()
    assert_post(first.json(), author="ana", content="hello once")
    assert api.profile("ana")["posts"] == 1
    assert api.collect("/users/ana/posts", limit=100) == [first.json()]


def test_an_idempotency_key_belongs_to_its_user(api: Api) -> None:
    by_ana = publish_keyed(api, "ana", "same words", "shared-key")
    by_bo = publish_keyed(api, "bo", "same words", "shared-key")

    assert by_ana.status_code == by_bo.status_code == HTTPStatus.CREATED
    assert by_bo.json()["id"] != by_ana.json()["id"]
    assert by_bo.json()["author_id"] == "bo"
    assert api.profile("ana")["posts"] == api.profile("bo")["posts"] == 1


def test_an_idempotency_key_with_other_content_is_a_422(api: Api) -> None:
    first = publish_keyed(api, "ana", "original", "key-1")
    before = api.world("ana")

    reused = publish_keyed(api, "ana", "something else", "key-1")

    assert_problem(reused, HTTPStatus.UNPROCESSABLE_ENTITY, code="idempotency_key_reused")
    assert api.world("ana") == before
    assert publish_keyed(api, "ana", "original", "key-1").json() == first.json()


def test_a_repeat_while_the_first_is_in_flight_is_a_409(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(tmp_path)
    services = embedded_container(settings, SECRET).services()

    # What a shared database answers while another request holds the key (see the port contract).
    async def held_by_another_request(*_: object, **__: object) -> IdempotencyRecord:
        return IdempotencyRecord(fingerprint=hashlib.sha256(b"slow").hexdigest(), post=None)

    monkeypatch.setattr(services.posts, "publish", held_by_another_request)
    with TestClient(create_app(services, max_body_bytes=settings.max_body_bytes, metrics=services.metrics)) as client:
        api = Api(client)

        repeat = publish_keyed(api, "ana", "slow", "key-1")
        other = publish_keyed(api, "ana", "other", "key-1")

        assert_problem(repeat, HTTPStatus.CONFLICT, code="idempotency_key_in_flight")
        assert_problem(other, HTTPStatus.UNPROCESSABLE_ENTITY, code="idempotency_key_reused")
        assert api.profile("ana")["posts"] == 0


# --- 413: bodies over max_body_bytes -------------------------------------------------------------


def too_big_chunks() -> Iterator[bytes]:
    """A 122-byte post sent chunked, with no Content-Length to check up front."""
    yield b'{"content": "'
    yield from [b"a" * 10] * 10
    yield b'"}'


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        pytest.param("/posts", json.dumps({"content": "a" * 100}).encode(), id="post"),
        pytest.param("/follow", json.dumps({"followee_id": "b" * 64}).encode(), id="follow"),
        pytest.param("/posts", b"not even json " * 10, id="malformed"),
        pytest.param("/posts", too_big_chunks, id="post-chunked"),
    ],
)
def test_a_body_over_max_body_bytes_is_a_413(
    serve: Serve, path: str, raw: bytes | Callable[[], Iterator[bytes]]
) -> None:
    api = serve(max_body_bytes=64)
    before = api.world("ana", "b" * 64)

    response = api.request("POST", path, user="ana", raw=raw if isinstance(raw, bytes) else raw())

    assert_problem(response, HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    assert api.world("ana", "b" * 64) == before


def test_a_body_of_exactly_max_body_bytes_is_accepted(serve: Serve) -> None:
    api = serve(max_body_bytes=64)
    raw = json.dumps({"content": "a" * 49}).encode()
    assert len(raw) == 64

    response = api.request("POST", "/posts", user="ana", raw=raw)

    assert response.status_code == HTTPStatus.CREATED
    assert_post(response.json(), author="ana", content="a" * 49)


# --- 429: the per-user write rate limit ----------------------------------------------------------


def rate_limited(serve: Serve) -> tuple[Api, JsonObject]:
    """An app allowing one write a second with a burst of two, and ana's burst spent on two posts."""
    api = serve(rate_limit_per_second=1, rate_limit_burst=2)
    first = api.publish("ana", "one")
    api.publish("ana", "two")
    return api, first


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/posts", {"content": "three"}),
        ("DELETE", "/posts/{post_id}", None),
        ("POST", "/follow", {"followee_id": "bo"}),
        ("DELETE", "/follow/bo", None),
    ],
    ids=["publish", "delete", "follow", "unfollow"],
)
def test_a_third_write_in_a_row_is_a_429_with_retry_after(
    serve: Serve, method: str, path: str, body: JsonObject | None
) -> None:
    api, first = rate_limited(serve)
    before = api.world("ana", "bo")

    response = api.request(method, path.format(post_id=first["id"]), user="ana", body=body)

    assert_problem(response, HTTPStatus.TOO_MANY_REQUESTS)
    retry_after = response.headers["retry-after"]
    assert retry_after.isdecimal(), retry_after
    assert int(retry_after) >= 1
    assert api.world("ana", "bo") == before


def test_reads_are_not_rate_limited(serve: Serve) -> None:
    api, first = rate_limited(serve)
    assert_problem(api.request("POST", "/posts", user="ana", body={"content": "three"}), HTTPStatus.TOO_MANY_REQUESTS)
    mine = api.get("/users/ana/posts")["items"]
    assert api.wait_for_feed("ana", mine) == mine  # once fan-out has put both in ana's own feed

    for _ in range(10):
        assert api.get(f"/posts/{first['id']}") == first
        assert api.profile("ana")["posts"] == 2
        assert len(api.get("/feeds/ana", user="ana")["items"]) == 2
        assert len(api.get("/users/ana/posts")["items"]) == 2


def test_the_rate_limit_is_per_user(serve: Serve) -> None:
    api, _ = rate_limited(serve)
    assert_problem(api.request("POST", "/posts", user="ana", body={"content": "three"}), HTTPStatus.TOO_MANY_REQUESTS)

    assert_post(api.publish("bo", "mine"), author="bo", content="mine")

"""Requests refused with a 4xx (400, 401, 403, 404, 422), each changing nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from http import HTTPStatus
from typing import Final

import jwt
import pytest

from tests.unit.http.api import (
    OTHER_SECRET,
    SECRET,
    Seeded,
    assert_problem,
    authorization,
    token,
)

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
    pytest.param("/posts", b'{"content": "a\\u0000b"}', id="posts-nul-character"),
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
        ("POST", "/mutes/a%20b", "ana"),
        ("DELETE", "/mutes/a%20b", "ana"),
        ("POST", "/blocks/a%20b", "ana"),
        ("DELETE", "/blocks/a%20b", "ana"),
        ("POST", "/mutes/" + "a" * 65, "ana"),
        ("POST", "/blocks/" + "a" * 65, "ana"),
        ("POST", "/blocks/%C3%A9", "ana"),
        ("POST", "/mutes/%FF", "ana"),
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
        ("POST", "/mutes/bo", None),
        ("DELETE", "/mutes/bo", None),
        ("POST", "/blocks/bo", None),
        ("DELETE", "/blocks/bo", None),
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


@pytest.mark.parametrize(("path", "code"), [("/mutes/ana", "self_mute"), ("/blocks/ana", "self_block")])
def test_muting_or_blocking_yourself_is_a_422(seeded: Seeded, path: str, code: str) -> None:
    feed = seeded.api.feed("ana")

    assert_problem(seeded.api.request("POST", path, user="ana"), HTTPStatus.UNPROCESSABLE_ENTITY, code=code)
    assert seeded.api.feed("ana") == feed
    seeded.assert_unchanged()


@pytest.mark.parametrize("path", ["/mutes", "/blocks", "/mutes/", "/blocks/"])
def test_a_mute_or_block_without_a_user_is_a_4xx(seeded: Seeded, path: str) -> None:
    response = seeded.api.request("POST", path, user="ana")

    assert response.status_code in {HTTPStatus.NOT_FOUND, HTTPStatus.METHOD_NOT_ALLOWED}, response.text
    seeded.assert_unchanged()


def test_following_yourself_is_a_422(seeded: Seeded) -> None:
    response = seeded.api.request("POST", "/follow", user="ana", body={"followee_id": "ana"})

    assert_problem(response, HTTPStatus.UNPROCESSABLE_ENTITY, code="self_follow")
    seeded.assert_unchanged()

"""Bodies over the size limit (413) and the per-user write rate limit (429)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from http import HTTPStatus

import pytest

from tests.unit.http.api import (
    Api,
    JsonObject,
    Serve,
    assert_post,
    assert_problem,
)

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
        ("POST", "/mutes/bo", None),
        ("DELETE", "/mutes/bo", None),
        ("POST", "/blocks/bo", None),
        ("DELETE", "/blocks/bo", None),
    ],
    ids=["publish", "delete", "follow", "unfollow", "mute", "unmute", "block", "unblock"],
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

"""The HTTP API with FEEDCORE_DATABASE_URL: state in PostgreSQL, fan-out in process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
import redis
from litestar.testing import TestClient

from feedcore import UserId
from feedcore.entrypoints.auth import Tokens
from feedcore.entrypoints.http.app import create_service_app
from feedcore.entrypoints.settings import Settings
from tests.integration.conftest import service_url

SECRET = "p" * 40
TOKENS = Tokens(SECRET)


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS.issue(UserId(user))}"}


def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, jwt_secret=SECRET, migrate_on_start=True, rate_limit_per_second=0)


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient[Any]]:
    with TestClient(create_service_app(settings(database_url))) as client:
        yield client


def feed_of(client: TestClient[Any], user: str, expected: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        items: list[dict[str, Any]] = client.get(f"/feeds/{user}", headers=auth(user)).json()["items"]
        if len(items) >= expected or time.monotonic() > deadline:
            return items
        time.sleep(0.05)


def test_follow_post_and_read_the_feed(client: TestClient[Any]) -> None:
    assert client.get("/readyz").status_code == 200
    assert client.post("/follow", json={"followee_id": "pg-bo"}, headers=auth("pg-ana")).status_code == 204
    created = client.post("/posts", json={"content": "stored"}, headers=auth("pg-bo"))
    assert created.status_code == 201
    [item] = feed_of(client, "pg-ana", 1)
    assert (item["id"], item["content"]) == (created.json()["id"], "stored")
    profile = client.get("/users/pg-bo").json()
    assert (profile["followers"], profile["posts"]) == (1, 1)


def test_content_postgresql_cannot_store_is_a_400(client: TestClient[Any]) -> None:
    refused = client.post("/posts", content=b'{"content": "a\\u0000b"}', headers=auth("pg-nul"))
    assert (refused.status_code, refused.json()["errors"][0]["key"]) == (400, "content")
    assert client.get("/users/pg-nul").json()["posts"] == 0


def test_state_outlives_the_process(database_url: str) -> None:
    with TestClient(create_service_app(settings(database_url))) as first:
        post = first.post("/posts", json={"content": "durable"}, headers=auth("pg-cy"))
        assert post.status_code == 201
        replay_headers = {**auth("pg-cy"), "Idempotency-Key": "k-1"}
        keyed = first.post("/posts", json={"content": "once"}, headers=replay_headers)
        assert keyed.status_code == 201
    with TestClient(create_service_app(settings(database_url))) as second:
        assert second.get(f"/posts/{post.json()['id']}").json()["content"] == "durable"
        again = second.post("/posts", json={"content": "once"}, headers=replay_headers)
        assert (again.status_code, again.json()) == (201, keyed.json())
        assert second.get("/users/pg-cy").json()["posts"] == 2


def test_postgres_down_is_a_503_with_retry_after() -> None:
    unreachable = Settings(
        database_url="postgresql://postgres@127.0.0.1:1/nowhere",
        jwt_secret=SECRET,
        database_timeout_seconds=0.5,
    )
    with TestClient(create_service_app(unreachable)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        posted = client.post("/posts", json={"content": "lost?"}, headers=auth("pg-di"))
        assert posted.status_code == 503
        assert posted.headers["retry-after"] == "1"
        assert posted.headers["content-type"].startswith("application/problem+json")
        assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("cached", [False, True], ids=["postgres", "postgres-and-redis"])
def test_mutes_and_blocks_show_in_feeds_at_once(database_url: str, redis_prefix: str, cached: bool) -> None:
    tag = "pg-cached" if cached else "pg-plain"
    ana, bo, cy = f"{tag}-ana", f"{tag}-bo", f"{tag}-cy"
    chosen = settings(database_url)
    prefix = f"{redis_prefix}api-mutes:"
    if cached:
        chosen = msgspec.structs.replace(chosen, redis_url=service_url("FEEDCORE_REDIS_URL"), redis_prefix=prefix)
    try:
        with TestClient(create_service_app(chosen)) as client:

            def write(method: str, path: str, user: str, expected: int = 204) -> None:
                assert client.request(method, path, headers=auth(user)).status_code == expected

            def follow(follower: str, followee: str) -> int:
                return client.post("/follow", json={"followee_id": followee}, headers=auth(follower)).status_code

            def contents(user: str) -> list[str]:
                return [item["content"] for item in client.get(f"/feeds/{user}", headers=auth(user)).json()["items"]]

            assert (follow(ana, bo), follow(ana, cy), follow(bo, ana)) == (204, 204, 204)
            for author in (ana, bo, cy):
                assert client.post("/posts", json={"content": author}, headers=auth(author)).status_code == 201
            feed_of(client, ana, 3)
            assert contents(ana) == contents(ana) == [cy, bo, ana]  # the second read may be a kept page

            write("POST", f"/mutes/{bo}", ana)
            write("POST", f"/mutes/{bo}", ana)
            assert contents(ana) == [cy, ana]
            write("DELETE", f"/mutes/{bo}", ana)
            assert [item["content"] for item in feed_of(client, ana, 3)] == [cy, bo, ana]

            feed_of(client, bo, 2)
            assert contents(bo) == contents(bo) == [bo, ana]
            write("POST", f"/blocks/{ana}", bo)
            assert contents(ana) == [cy, ana]
            assert contents(bo) == [bo]
            assert (follow(ana, bo), follow(bo, ana)) == (403, 403)
            write("POST", f"/blocks/{bo}", bo, expected=422)
            write("DELETE", f"/blocks/{ana}", bo)
            assert client.get(f"/users/{bo}").json()["followers"] == 0  # nothing came back
            assert follow(ana, bo) == 204
            assert [item["content"] for item in feed_of(client, ana, 3)] == [cy, bo, ana]
    finally:
        if cached:
            with redis.Redis.from_url(service_url("FEEDCORE_REDIS_URL")) as keys:
                for key in keys.scan_iter(match=f"{prefix}*"):
                    keys.unlink(key)

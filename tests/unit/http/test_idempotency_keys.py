"""Idempotency-Key: replays, 422 and 409."""

from __future__ import annotations

import hashlib
from http import HTTPStatus
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient

from feedcore import IdempotencyRecord
from feedcore.entrypoints.container import embedded_container
from feedcore.entrypoints.http.app import create_app
from tests.unit.http.api import (
    SECRET,
    Api,
    assert_post,
    assert_problem,
    make_settings,
)


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
    container = embedded_container(settings, SECRET)
    services = container.services()

    # What a shared database answers while another request holds the key (see the port contract).
    async def held_by_another_request(*_: object, **__: object) -> IdempotencyRecord:
        return IdempotencyRecord(fingerprint=hashlib.sha256(b"slow").hexdigest(), post=None)

    monkeypatch.setattr(container.storage.posts(), "publish", held_by_another_request)
    with TestClient(create_app(services, max_body_bytes=settings.max_body_bytes, metrics=services.metrics)) as client:
        api = Api(client)

        repeat = publish_keyed(api, "ana", "slow", "key-1")
        other = publish_keyed(api, "ana", "other", "key-1")

        assert_problem(repeat, HTTPStatus.CONFLICT, code="idempotency_key_in_flight")
        assert_problem(other, HTTPStatus.UNPROCESSABLE_ENTITY, code="idempotency_key_reused")
        assert api.profile("ana")["posts"] == 0

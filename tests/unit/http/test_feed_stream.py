"""GET /feeds/{user}/stream on the embedded app: live entries, resumption, removals, heartbeats."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from feedcore.entrypoints.http.app import create_service_app
from tests.unit.http.api import Api, assert_post, make_settings
from tests.unit.http.streams import Stream, open_stream

Start = Callable[..., tuple[TestClient[Litestar], Api]]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Embedded apps with their lifespans running; settings as keywords."""
    with ExitStack() as stack:

        def started(**changes: Any) -> tuple[TestClient[Litestar], Api]:
            changes.setdefault("rate_limit_per_second", 0)
            client = stack.enter_context(TestClient(create_service_app(make_settings(tmp_path, **changes))))
            return client, Api(client)

        try:
            yield started
        finally:
            Stream.close_all()


@pytest.fixture
def app(start: Start) -> tuple[TestClient[Litestar], Api]:
    return start()


def _post_events(stream: Stream, count: int) -> list[dict[str, Any]]:
    posts = []
    for _ in range(count):
        message = stream.next_event()
        assert message.event == "post", message
        post: dict[str, Any] = message.json()
        assert message.id == post["id"]
        posts.append(post)
    return posts


def test_a_followee_post_arrives_hydrated_with_its_id(app: tuple[TestClient[Litestar], Api]) -> None:
    client, api = app
    api.follow("ana", "bo")
    stream = open_stream(client, "ana")
    assert stream.status == HTTPStatus.OK
    assert stream.headers["content-type"].startswith("text/event-stream")
    created = api.publish("bo", "live from bo")
    (post,) = _post_events(stream, 1)
    assert post == created
    assert_post(post, author="bo", content="live from bo")
    own = api.publish("ana", "and ana's own")
    assert _post_events(stream, 1) == [own]
    stream.close()


def test_a_stream_starts_from_now_without_last_event_id(app: tuple[TestClient[Litestar], Api]) -> None:
    client, api = app
    api.follow("ana", "bo")
    api.publish("bo", "before the stream")
    api.get("/feeds/ana", user="ana")  # the worker has run
    stream = open_stream(client, "ana")
    after = api.publish("bo", "after it opened")
    assert _post_events(stream, 1) == [after]
    stream.close()


@pytest.mark.parametrize("by", ["header", "query"])
def test_last_event_id_resumes_without_gaps_or_repeats(app: tuple[TestClient[Litestar], Api], by: str) -> None:
    client, api = app
    api.follow("ana", "bo")
    stream = open_stream(client, "ana")
    published = [api.publish("bo", f"post {n}") for n in range(3)]
    seen = _post_events(stream, 2)
    stream.close()
    published += [api.publish("bo", f"post {n}") for n in range(3, 6)]
    last = seen[-1]["id"]
    resumed = (
        open_stream(client, "ana", last_event_id=last)
        if by == "header"
        else open_stream(client, "ana", query={"last_event_id": last})
    )
    seen += _post_events(resumed, 4)
    assert seen == published
    assert resumed.nothing_within(0.2)
    resumed.close()


def test_a_resume_far_behind_gets_every_entry_in_order(start: Start) -> None:
    client, api = start(rate_limit_per_second=0)
    api.follow("ana", "bo")
    first = api.publish("bo", "the first")
    published = [api.publish("bo", f"post {n}") for n in range(120)]  # more than one read's batch
    stream = open_stream(client, "ana", last_event_id=first["id"])
    assert _post_events(stream, 120) == published
    assert stream.nothing_within(0.2)
    stream.close()


def test_deletes_and_unfollows_arrive_as_removals(app: tuple[TestClient[Litestar], Api]) -> None:
    client, api = app
    api.follow("ana", "bo")
    api.follow("ana", "cy")
    stream = open_stream(client, "ana")
    by_bo = api.publish("bo", "soon gone")
    assert _post_events(stream, 1) == [by_bo]
    api.delete("bo", by_bo["id"])
    removed = stream.next_event()
    assert removed.event == "removed"
    assert removed.json() == {"post_ids": [by_bo["id"]], "author_ids": []}
    api.unfollow("ana", "cy")
    removed = stream.next_event()
    assert removed.event == "removed"
    assert removed.json() == {"post_ids": [], "author_ids": ["cy"]}
    stream.close()


def test_a_mute_arrives_as_a_removal_and_an_unmute_sends_the_posts_again(
    app: tuple[TestClient[Litestar], Api],
) -> None:
    client, api = app
    api.follow("ana", "bo")
    stream = open_stream(client, "ana")
    by_bo = api.publish("bo", "muted soon")
    assert _post_events(stream, 1) == [by_bo]
    api.mute("ana", "bo")
    removed = stream.next_event()
    assert removed.event == "removed"
    assert removed.json() == {"post_ids": [], "author_ids": ["bo"]}
    later = api.publish("bo", "while muted")
    assert stream.nothing_within(0.2)
    api.unmute("ana", "bo")
    assert _post_events(stream, 1) == [later]  # newer than the last sent: the unmute's backfill wakes it
    stream.close()


def test_a_celebrity_post_merged_at_read_time_arrives(start: Start) -> None:
    client, api = start(celebrity_threshold=1)
    api.follow("ana", "star")
    api.follow("bo", "star")  # two followers: above the threshold, never fanned out
    stream = open_stream(client, "ana")
    created = api.publish("star", "to the many")
    assert _post_events(stream, 1) == [created]
    api.delete("star", created["id"])
    removed = stream.next_event()
    assert removed.json() == {"post_ids": [created["id"]], "author_ids": []}
    stream.close()


def test_a_new_followee_is_streamed_from_then_on(start: Start) -> None:
    client, api = start(celebrity_threshold=1)
    api.follow("bo", "star")
    api.follow("cy", "star")
    stream = open_stream(client, "ana")
    api.follow("ana", "star")
    api.get("/feeds/ana", user="ana")
    created = api.publish("star", "a celebrity's, to a new follower")
    assert _post_events(stream, 1) == [created]
    stream.close()


def test_heartbeats_keep_an_idle_stream_open(start: Start) -> None:
    client, _ = start(stream_heartbeat_seconds=0.05)
    stream = open_stream(client, "ana")
    beats = [stream.next(timeout=1.0) for _ in range(3)]
    assert all(beat.comment == "heartbeat" for beat in beats)
    stream.close()


def test_only_the_owner_may_stream_a_feed(app: tuple[TestClient[Litestar], Api]) -> None:
    client, api = app
    anonymous = Stream(client, "/feeds/ana/stream", {})
    assert anonymous.status == HTTPStatus.UNAUTHORIZED
    assert json.loads(anonymous.body())["status"] == HTTPStatus.UNAUTHORIZED
    other = open_stream(client, "ana", user="bo")
    assert other.status == HTTPStatus.FORBIDDEN
    assert json.loads(other.body())["code"] == "forbidden"
    api.publish("bo", "nothing for the refused")


@pytest.mark.parametrize(
    "changes",
    [{"last_event_id": "abc"}, {"last_event_id": "-1"}, {"last_event_id": "9" * 30}, {"cursor": "x"}],
)
def test_bad_resumption_points_are_refused(app: tuple[TestClient[Litestar], Api], changes: dict[str, str]) -> None:
    client, _ = app
    stream = open_stream(client, "ana", query=changes)
    assert stream.status == HTTPStatus.BAD_REQUEST
    assert json.loads(stream.body())["status"] == HTTPStatus.BAD_REQUEST


def test_a_bad_last_event_id_header_is_refused(app: tuple[TestClient[Litestar], Api]) -> None:
    client, _ = app
    stream = open_stream(client, "ana", last_event_id="not-an-id")
    assert stream.status == HTTPStatus.BAD_REQUEST


def test_streams_past_the_limit_are_answered_503_with_retry_after(start: Start) -> None:
    client, _ = start(max_streams=1)
    first = open_stream(client, "ana")
    refused = open_stream(client, "bo")
    assert refused.status == HTTPStatus.SERVICE_UNAVAILABLE
    assert refused.headers["retry-after"] == "1"
    assert json.loads(refused.body())["code"] == "too_many_streams"
    first.close()
    again = open_stream(client, "bo")  # a closed stream gives its place back
    assert again.status == HTTPStatus.OK
    again.close()

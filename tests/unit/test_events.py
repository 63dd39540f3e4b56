from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from feedcore import (
    PostDeleted,
    PostId,
    PostPublished,
    UserFollowed,
    UserId,
    UserMuted,
    UserUnfollowed,
    UserUnmuted,
    decode_event,
    encode_event,
)
from feedcore.events import Event

AT = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
EVENTS: list[Event] = [
    PostPublished(event_id="1", occurred_at=AT, post_id=PostId(42), author_id=UserId("ana")),
    PostDeleted(event_id="2", occurred_at=AT, post_id=PostId(42), author_id=UserId("ana")),
    UserFollowed(event_id="3", occurred_at=AT, follower_id=UserId("bo"), followee_id=UserId("ana")),
    UserUnfollowed(event_id="4", occurred_at=AT, follower_id=UserId("bo"), followee_id=UserId("ana")),
    UserMuted(event_id="5", occurred_at=AT, user_id=UserId("bo"), muted_id=UserId("ana")),
    UserUnmuted(event_id="6", occurred_at=AT, user_id=UserId("bo"), muted_id=UserId("ana")),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda event: type(event).__name__)
def test_events_round_trip(event: Event) -> None:
    assert decode_event(encode_event(event)) == event


def test_the_wire_format_is_tagged_and_versioned() -> None:
    assert msgspec.json.decode(encode_event(EVENTS[0])) == {
        "type": "post_published",
        "v": 1,
        "event_id": "1",
        "occurred_at": "2026-05-06T07:08:09Z",
        "post_id": 42,
        "author_id": "ana",
    }


def test_events_of_an_author_share_a_key_and_follows_and_mutes_use_the_follower() -> None:
    assert [event.key for event in EVENTS] == ["ana", "ana", "bo", "bo", "bo", "bo"]


def test_a_newer_producer_s_extra_fields_are_ignored() -> None:
    wire = b'{"type":"post_deleted","v":2,"event_id":"9","occurred_at":"2026-05-06T07:08:09Z",'
    wire += b'"post_id":7,"author_id":"ana","reason":"spam"}'
    assert decode_event(wire) == PostDeleted(
        v=2, event_id="9", occurred_at=AT, post_id=PostId(7), author_id=UserId("ana")
    )


@pytest.mark.parametrize(
    "wire",
    [
        b"not json",
        b'{"type":"post_exploded","event_id":"1","occurred_at":"2026-05-06T07:08:09Z"}',
        b'{"type":"post_deleted","event_id":"1","occurred_at":"2026-05-06T07:08:09Z","post_id":7}',
        b'{"type":"post_deleted","event_id":"1","occurred_at":"2026-05-06T07:08:09Z","post_id":0,"author_id":"a"}',
        b'{"type":"user_followed","event_id":"1","occurred_at":"2026-05-06T07:08:09Z",'
        b'"follower_id":"a b","followee_id":"c"}',
    ],
)
def test_malformed_or_invalid_events_do_not_decode(wire: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_event(wire)

"""The events the core publishes and the processor applies.

Wire rules: JSON, tagged by ``type``; ``v`` is the schema version. New fields get defaults, released
fields are never retyped, renamed or reordered, so old and new processors read each other's events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import msgspec

from feedcore.model import PostIdField, UserIdField

SCHEMA_VERSION: Final = 1


class _Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    v: int = SCHEMA_VERSION
    #: Unique per occurrence: following, unfollowing and following again are three events.
    event_id: str
    occurred_at: datetime


class PostPublished(_Event, frozen=True, kw_only=True, tag="post_published"):
    post_id: PostIdField
    author_id: UserIdField

    @property
    def key(self) -> str:
        return self.author_id


class PostDeleted(_Event, frozen=True, kw_only=True, tag="post_deleted"):
    post_id: PostIdField
    author_id: UserIdField

    @property
    def key(self) -> str:
        return self.author_id


class UserFollowed(_Event, frozen=True, kw_only=True, tag="user_followed"):
    follower_id: UserIdField
    followee_id: UserIdField

    @property
    def key(self) -> str:
        # The follower's key keeps follow and unfollow of one edge in order.
        return self.follower_id


class UserUnfollowed(_Event, frozen=True, kw_only=True, tag="user_unfollowed"):
    follower_id: UserIdField
    followee_id: UserIdField

    @property
    def key(self) -> str:
        return self.follower_id


class UserMuted(_Event, frozen=True, kw_only=True, tag="user_muted"):
    """``user_id`` stopped seeing ``muted_id``'s posts; ``muted_id`` is told nothing."""

    user_id: UserIdField
    muted_id: UserIdField

    @property
    def key(self) -> str:
        # The muting user's key, as for follows: a user's follows and mutes of one author stay in order.
        return self.user_id


class UserUnmuted(_Event, frozen=True, kw_only=True, tag="user_unmuted"):
    user_id: UserIdField
    muted_id: UserIdField

    @property
    def key(self) -> str:
        return self.user_id


Event = PostPublished | PostDeleted | UserFollowed | UserUnfollowed | UserMuted | UserUnmuted

_encoder: Final = msgspec.json.Encoder()
_decoder: Final[msgspec.json.Decoder[Event]] = msgspec.json.Decoder(Event)


def encode_event(event: Event) -> bytes:
    return _encoder.encode(event)


def decode_event(data: bytes) -> Event:
    """Decode and validate one event; raises ``msgspec.DecodeError`` (or ``ValidationError``)."""
    return _decoder.decode(data)


def event_type(event: Event) -> str:
    """The event's ``type`` on the wire, e.g. ``"post_published"``."""
    return str(event.__struct_config__.tag)

"""Domain values: user ids, post ids, posts, pages and their opaque cursors."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Annotated, Final, Generic, NewType, TypeVar

import msgspec

from feedcore.errors import InvalidContent, InvalidCursor, InvalidPostId, InvalidUserId, PostNotFound

UserId = NewType("UserId", str)
"""A user id: 1 to 64 characters of ``[A-Za-z0-9_.-]``; build one with :func:`parse_user_id`."""

PostId = NewType("PostId", int)
"""A time-sortable, unique, positive 63-bit post id (see :mod:`feedcore.ids`)."""

USER_ID_PATTERN: Final = r"^[A-Za-z0-9_.-]{1,64}$"
POST_ID_PATTERN: Final = r"^[1-9][0-9]{0,18}$"
MAX_POST_ID: Final = (1 << 63) - 1
MAX_CONTENT_LENGTH: Final = 5_000

# Constrained types for msgspec decoding, so events and requests validate as they decode.
UserIdField = Annotated[str, msgspec.Meta(pattern=USER_ID_PATTERN)]
PostIdField = Annotated[int, msgspec.Meta(ge=1, le=MAX_POST_ID)]

_USER_ID_RE: Final = re.compile(USER_ID_PATTERN)
_POST_ID_RE: Final = re.compile(POST_ID_PATTERN)
# A post id is at most 19 decimal digits; zero-padded to that width, string order is number order.
SORTABLE_KEY_WIDTH: Final = 19


def parse_user_id(raw: str) -> UserId:
    """Validate ``raw`` as a user id."""
    if not _USER_ID_RE.fullmatch(raw):
        raise InvalidUserId(f"user ids are 1-64 characters of A-Z, a-z, 0-9, '_', '.', '-': {raw[:80]!r}")
    return UserId(raw)


def parse_post_id(raw: str) -> PostId:
    """Validate ``raw``, a decimal string as post ids travel in JSON, as a post id."""
    if not _POST_ID_RE.fullmatch(raw):
        raise InvalidPostId(f"post ids are positive decimal integers: {raw[:40]!r}")
    if int(raw) > MAX_POST_ID:
        # Well-formed, but beyond any id ever made: there is no such post.
        raise PostNotFound(f"post {raw} does not exist")
    return PostId(int(raw))


def validate_content(content: str) -> str:
    """Check a post's content against the contract's length limits (in characters). NUL is refused
    too: JSON can carry it, but no text column of PostgreSQL can hold it."""
    if not 1 <= len(content) <= MAX_CONTENT_LENGTH:
        raise InvalidContent(f"content must be 1 to {MAX_CONTENT_LENGTH} characters, got {len(content)}")
    if "\x00" in content:
        raise InvalidContent("content must not contain the NUL character (U+0000)")
    return content


def sortable_key(post_id: PostId) -> str:
    """A post id as a fixed-width string whose lexicographic order is the ids' numeric order.

    Post ids use 63 bits, more than a double's 53-bit mantissa, so stores whose sort keys are
    doubles (Redis sorted-set scores) must not hold them as numbers: they keep this string as the
    member, with equal scores, and order by it instead.
    """
    return f"{post_id:0{SORTABLE_KEY_WIDTH}d}"


def from_sortable_key(key: str) -> PostId:
    """The inverse of :func:`sortable_key`."""
    return PostId(int(key))


class Post(msgspec.Struct, frozen=True, kw_only=True):
    """A published post."""

    id: PostId
    author_id: UserId
    content: str
    created_at: datetime
    #: False when the author was above the celebrity threshold at publication: the post is then
    #: never written into followers' feeds and is merged into them when they are read.
    fan_out: bool = True


class Profile(msgspec.Struct, frozen=True, kw_only=True):
    """A user's public counts."""

    user_id: UserId
    followers: int
    following: int
    posts: int


T = TypeVar("T")


class Page(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    """One page of a keyset-paged list; ``next_cursor`` is None on the last page."""

    items: list[T]
    next_cursor: str | None = None


# Cursors are opaque to clients: a tagged struct, JSON-encoded, then base64url without padding.
# The tag keeps a cursor of one list from being read as a cursor of another kind of list.
class _PostCursor(msgspec.Struct, frozen=True, tag="p"):
    before: PostIdField


class _UserCursor(msgspec.Struct, frozen=True, tag="u"):
    after: UserIdField


_post_cursor_decoder: Final = msgspec.json.Decoder(_PostCursor)
_user_cursor_decoder: Final = msgspec.json.Decoder(_UserCursor)
_cursor_encoder: Final = msgspec.json.Encoder()
MAX_CURSOR_LENGTH: Final = 256


def _encode(cursor: _PostCursor | _UserCursor) -> str:
    return base64.urlsafe_b64encode(_cursor_encoder.encode(cursor)).rstrip(b"=").decode("ascii")


def _decode_bytes(cursor: str) -> bytes:
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursor("cursor is too long")
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError) as error:
        raise InvalidCursor("cursor is not one this service issued") from error


def encode_post_cursor(before: PostId) -> str:
    """A cursor for the page of posts strictly older than ``before``."""
    return _encode(_PostCursor(before=before))


def decode_post_cursor(cursor: str) -> PostId:
    try:
        return PostId(_post_cursor_decoder.decode(_decode_bytes(cursor)).before)
    except msgspec.DecodeError as error:
        raise InvalidCursor("cursor is not one this service issued") from error


def encode_user_cursor(after: UserId) -> str:
    """A cursor for the page of user ids strictly after ``after``."""
    return _encode(_UserCursor(after=after))


def decode_user_cursor(cursor: str) -> UserId:
    try:
        return UserId(_user_cursor_decoder.decode(_decode_bytes(cursor)).after)
    except msgspec.DecodeError as error:
        raise InvalidCursor("cursor is not one this service issued") from error

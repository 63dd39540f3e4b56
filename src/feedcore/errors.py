"""The errors the core raises, grouped so a transport can map each group to one status."""

from __future__ import annotations


class FeedcoreError(Exception):
    """Base of every error the core raises on purpose."""

    #: A short, stable, machine-readable name; transports put it in their responses.
    code: str = "feedcore_error"


class InvalidInput(FeedcoreError):
    """The request itself is malformed: a bad id, cursor, limit or content (HTTP 400)."""

    code = "invalid_input"


class InvalidUserId(InvalidInput):
    code = "invalid_user_id"


class InvalidPostId(InvalidInput):
    code = "invalid_post_id"


class InvalidCursor(InvalidInput):
    code = "invalid_cursor"


class InvalidLimit(InvalidInput):
    code = "invalid_limit"


class InvalidContent(InvalidInput):
    code = "invalid_content"


class InvalidIdempotencyKey(InvalidInput):
    code = "invalid_idempotency_key"


class Forbidden(FeedcoreError):
    """The caller is known but may not do this (HTTP 403)."""

    code = "forbidden"


class FollowBlocked(Forbidden):
    """A follow between two users with a block between them, whichever of them blocked."""

    code = "follow_blocked"


class NotFound(FeedcoreError):
    """The thing asked for does not exist, or no longer does (HTTP 404)."""

    code = "not_found"


class PostNotFound(NotFound):
    code = "post_not_found"


class Conflict(FeedcoreError):
    """The request clashes with one still in progress (HTTP 409)."""

    code = "conflict"


class IdempotencyKeyInFlight(Conflict):
    code = "idempotency_key_in_flight"


class Unprocessable(FeedcoreError):
    """Well-formed, but the rules forbid it (HTTP 422)."""

    code = "unprocessable"


class SelfFollow(Unprocessable):
    code = "self_follow"


class SelfMute(Unprocessable):
    code = "self_mute"


class SelfBlock(Unprocessable):
    code = "self_block"


class IdempotencyKeyReused(Unprocessable):
    code = "idempotency_key_reused"


class Unavailable(FeedcoreError):
    """A dependency the core needs is down; retrying later may succeed (HTTP 503)."""

    code = "unavailable"


class TooManyStreams(Unavailable):
    """This process holds as many live streams as it may; another process, or later, may take one."""

    code = "too_many_streams"

"""The tunable rules of the feed, with the defaults of the design."""

from __future__ import annotations

import msgspec

from feedcore.errors import InvalidLimit


class Policies(msgspec.Struct, frozen=True, kw_only=True):
    #: Authors with more followers than this are not fanned out; their posts merge in at read time.
    celebrity_threshold: int = 10_000
    #: How many of a followee's newest posts a follow copies into the follower's feed.
    backfill_limit: int = 200
    #: How many of the newest feed entries the feed cache keeps per user.
    cache_window: int = 800
    #: Followers written per fan-out step.
    fanout_chunk: int = 1_000
    default_page_size: int = 20
    max_page_size: int = 100

    def __post_init__(self) -> None:
        for name in ("backfill_limit", "cache_window", "fanout_chunk", "default_page_size", "max_page_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.celebrity_threshold < 0:
            raise ValueError("celebrity_threshold must not be negative")
        if self.default_page_size > self.max_page_size:
            raise ValueError("default_page_size must not exceed max_page_size")

    def page_size(self, limit: int | None) -> int:
        """The page size to use for a requested ``limit`` (None means the default)."""
        if limit is None:
            return self.default_page_size
        if not 1 <= limit <= self.max_page_size:
            raise InvalidLimit(f"limit must be between 1 and {self.max_page_size}, got {limit}")
        return limit

    def fans_out(self, follower_count: int) -> bool:
        """Whether a post by an author with ``follower_count`` followers is written into their feeds."""
        return follower_count <= self.celebrity_threshold

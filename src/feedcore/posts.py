"""Use cases around posts: publish, delete, read one, read an author's timeline, profiles."""

from __future__ import annotations

import hashlib
import re
from typing import Final

from feedcore.errors import (
    Forbidden,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
    PostNotFound,
)
from feedcore.events import PostDeleted, PostPublished
from feedcore.model import Page, Post, PostId, Profile, UserId, decode_post_cursor, encode_post_cursor, validate_content
from feedcore.policies import Policies
from feedcore.ports import (
    NO_TELEMETRY,
    Clock,
    FeedCache,
    IdempotencyClaim,
    IdGenerator,
    PostBodies,
    PostStore,
    SocialGraph,
    Telemetry,
)

IDEMPOTENCY_KEY_PATTERN: Final = r"^[\x21-\x7e]{1,255}$"
_IDEMPOTENCY_KEY_RE: Final = re.compile(IDEMPOTENCY_KEY_PATTERN)


class Posts:
    """Publishing, deleting and reading posts, and users' profiles.

    ``cache`` and ``bodies``, when the service keeps them, are told of deletions at once.
    """

    def __init__(
        self,
        *,
        posts: PostStore,
        graph: SocialGraph,
        ids: IdGenerator,
        clock: Clock,
        policies: Policies,
        cache: FeedCache | None = None,
        bodies: PostBodies | None = None,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self._posts = posts
        self._graph = graph
        self._ids = ids
        self._clock = clock
        self._policies = policies
        self._cache = cache
        self._bodies = bodies
        self._telemetry = telemetry

    async def publish(self, author: UserId, content: str, *, idempotency_key: str | None = None) -> Post:
        """Store a new post and its ``PostPublished`` event; followers' feeds get it asynchronously.

        Whether the post is fanned out is decided once, from the author's follower count as the
        post is stored, and recorded on it: readers merge in exactly the posts that were not fanned
        out, so the feed stays complete when the author later crosses the celebrity threshold in
        either direction.

        With an ``idempotency_key``, a repeat of the same request returns the first one's post and
        stores nothing; the key with other content is refused, and so is a repeat while the first
        request is still in flight.
        """
        validate_content(content)
        claim = None
        if idempotency_key is not None:
            validate_idempotency_key(idempotency_key)
            claim = IdempotencyClaim(key=idempotency_key, fingerprint=hashlib.sha256(content.encode()).hexdigest())
        now = self._clock.now()
        post = Post(id=self._ids.next_id(), author_id=author, content=content, created_at=now)
        event = PostPublished(event_id=str(self._ids.next_id()), occurred_at=now, post_id=post.id, author_id=author)
        stored = await self._posts.publish(post, event, claim=claim, fan_out_up_to=self._policies.celebrity_threshold)
        if isinstance(stored, Post):
            self._telemetry.post_published(replayed=False)
            return stored
        if claim is None or stored.fingerprint != claim.fingerprint:
            raise IdempotencyKeyReused("this Idempotency-Key was used with another request")
        if stored.post is None:
            raise IdempotencyKeyInFlight("a request with this Idempotency-Key is still in progress")
        self._telemetry.post_published(replayed=True)
        return stored.post

    async def get(self, post_id: PostId) -> Post:
        """A live post; a missing or deleted one is not found."""
        found = (await self._posts.get_many((post_id,))).get(post_id)
        if found is None:
            raise PostNotFound(f"post {post_id} does not exist or was deleted")
        return found

    async def delete(self, requester: UserId, post_id: PostId) -> None:
        """Delete a post of ``requester``'s; it leaves every feed asynchronously, and reads hide it
        at once: the store says it is gone, and so does its cached body from now on.

        The rendered pages of the feeds that hold it are dropped after the body is buried, so that
        a page built after the drop sees the burial, and one begun before it is never kept.
        """
        post = await self.get(post_id)
        if post.author_id != requester:
            raise Forbidden("only the author may delete a post")
        event = PostDeleted(
            event_id=str(self._ids.next_id()), occurred_at=self._clock.now(), post_id=post_id, author_id=requester
        )
        holders = await self._posts.delete(post_id, event)
        if holders is None:
            raise PostNotFound(f"post {post_id} does not exist or was deleted")
        if self._bodies is not None:
            await self._bodies.bury(post_id)
        if self._cache is not None:
            await self._cache.drop_pages(holders)

    async def timeline(self, author: UserId, *, limit: int | None = None, cursor: str | None = None) -> Page[Post]:
        """An author's own posts, newest first."""
        size = self._policies.page_size(limit)
        before = decode_post_cursor(cursor) if cursor is not None else None
        found = await self._posts.latest((author,), before=before, floor=PostId(0), limit=size + 1)
        return page_of_posts(found, size)

    async def profile(self, user: UserId) -> Profile:
        """A user's follower, following and post counts."""
        counts = await self._graph.counts(user)
        return Profile(
            user_id=user, followers=counts.followers, following=counts.following, posts=await self._posts.count_by(user)
        )


def validate_idempotency_key(key: str) -> str:
    if not _IDEMPOTENCY_KEY_RE.fullmatch(key):
        raise InvalidIdempotencyKey("an Idempotency-Key is 1 to 255 visible ASCII characters")
    return key


def page_of_posts(found: list[Post], size: int) -> Page[Post]:
    """A page from ``size + 1`` candidates: the extra one only says whether another page exists."""
    if len(found) <= size:
        return Page(items=found)
    return Page(items=found[:size], next_cursor=encode_post_cursor(found[size - 1].id))

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


async def publish_post(
    author: UserId,
    content: str,
    *,
    idempotency_key: str | None = None,
    posts: PostStore,
    ids: IdGenerator,
    clock: Clock,
    policies: Policies,
    telemetry: Telemetry = NO_TELEMETRY,
) -> Post:
    """Store a new post and its ``PostPublished`` event; followers' feeds get it asynchronously.

    Whether the post is fanned out is decided once, from the author's follower count as the post is
    stored, and recorded on it: readers merge in exactly the posts that were not fanned out, so the
    feed stays complete when the author later crosses the celebrity threshold in either direction.

    With an ``idempotency_key``, a repeat of the same request returns the first one's post and
    stores nothing; the key with other content is refused, and so is a repeat while the first
    request is still in flight.
    """
    validate_content(content)
    claim = None
    if idempotency_key is not None:
        validate_idempotency_key(idempotency_key)
        claim = IdempotencyClaim(key=idempotency_key, fingerprint=hashlib.sha256(content.encode()).hexdigest())
    now = clock.now()
    post = Post(id=ids.next_id(), author_id=author, content=content, created_at=now)
    event = PostPublished(event_id=str(ids.next_id()), occurred_at=now, post_id=post.id, author_id=author)
    stored = await posts.publish(post, event, claim=claim, fan_out_up_to=policies.celebrity_threshold)
    if isinstance(stored, Post):
        telemetry.post_published(replayed=False)
        return stored
    existing = stored
    if claim is None or existing.fingerprint != claim.fingerprint:
        raise IdempotencyKeyReused("this Idempotency-Key was used with another request")
    if existing.post is None:
        raise IdempotencyKeyInFlight("a request with this Idempotency-Key is still in progress")
    telemetry.post_published(replayed=True)
    return existing.post


def validate_idempotency_key(key: str) -> str:
    if not _IDEMPOTENCY_KEY_RE.fullmatch(key):
        raise InvalidIdempotencyKey("an Idempotency-Key is 1 to 255 visible ASCII characters")
    return key


async def read_post(post_id: PostId, *, posts: PostStore) -> Post:
    found = (await posts.get_many((post_id,))).get(post_id)
    if found is None:
        raise PostNotFound(f"post {post_id} does not exist or was deleted")
    return found


async def delete_post(
    requester: UserId,
    post_id: PostId,
    *,
    posts: PostStore,
    ids: IdGenerator,
    clock: Clock,
    cache: FeedCache | None = None,
    bodies: PostBodies | None = None,
) -> None:
    """Delete a post of ``requester``'s; it leaves every feed asynchronously, and reads hide it at
    once: the store says it is gone, and so does its cached body from now on.

    The rendered pages of the feeds that hold it are dropped after the body is buried, so that a
    page built after the drop sees the burial, and one begun before it is never kept.
    """
    post = await read_post(post_id, posts=posts)
    if post.author_id != requester:
        raise Forbidden("only the author may delete a post")
    event = PostDeleted(event_id=str(ids.next_id()), occurred_at=clock.now(), post_id=post_id, author_id=requester)
    holders = await posts.delete(post_id, event)
    if holders is None:
        raise PostNotFound(f"post {post_id} does not exist or was deleted")
    if bodies is not None:
        await bodies.bury(post_id)
    if cache is not None:
        await cache.drop_pages(holders)


async def read_author_timeline(
    author: UserId,
    *,
    limit: int | None,
    cursor: str | None,
    posts: PostStore,
    policies: Policies,
) -> Page[Post]:
    """An author's own posts, newest first."""
    size = policies.page_size(limit)
    before = decode_post_cursor(cursor) if cursor is not None else None
    found = await posts.latest((author,), before=before, floor=PostId(0), limit=size + 1)
    return page_of_posts(found, size)


def page_of_posts(found: list[Post], size: int) -> Page[Post]:
    """A page from ``size + 1`` candidates: the extra one only says whether another page exists."""
    if len(found) <= size:
        return Page(items=found)
    return Page(items=found[:size], next_cursor=encode_post_cursor(found[size - 1].id))


async def read_profile(user: UserId, *, posts: PostStore, graph: SocialGraph) -> Profile:
    counts = await graph.counts(user)
    return Profile(
        user_id=user,
        followers=counts.followers,
        following=counts.following,
        posts=await posts.count_by(user),
    )

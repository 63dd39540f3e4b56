"""The JSON bodies of the HTTP contract. Post ids are decimal strings, safe for JavaScript."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final

import msgspec

from feedcore import LiveEvent, Page, Post, PostAdded, PostsRemoved, Profile, RemovalsLost, UserId
from feedcore.model import MAX_CONTENT_LENGTH, POST_ID_PATTERN, USER_ID_PATTERN

UserIdText = Annotated[str, msgspec.Meta(pattern=USER_ID_PATTERN, examples=["ana"])]


class NewPost(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    #: No NUL (U+0000): JSON carries it, no PostgreSQL text column holds it.
    content: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_CONTENT_LENGTH, pattern=r"^[^\x00]*$")]


class NewFollow(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    followee_id: UserIdText


REQUEST_BODIES: Final = (NewPost, NewFollow)


class PostBody(msgspec.Struct, frozen=True):
    id: Annotated[str, msgspec.Meta(pattern=POST_ID_PATTERN)]
    author_id: UserIdText
    content: str
    created_at: datetime

    @classmethod
    def of(cls, post: Post) -> PostBody:
        return cls(id=str(post.id), author_id=post.author_id, content=post.content, created_at=post.created_at)


class PostPage(msgspec.Struct, frozen=True):
    items: list[PostBody]
    next_cursor: str | None

    @classmethod
    def of(cls, page: Page[Post]) -> PostPage:
        return cls(items=[PostBody.of(post) for post in page.items], next_cursor=page.next_cursor)


_encode: Final = msgspec.json.Encoder().encode


def render_post_page(page: Page[Post]) -> bytes:
    """A page of posts as the API sends it (JSON)."""
    return _encode(PostPage.of(page))


class UserPage(msgspec.Struct, frozen=True):
    items: list[UserIdText]
    next_cursor: str | None

    @classmethod
    def of(cls, page: Page[UserId]) -> UserPage:
        return cls(items=list(page.items), next_cursor=page.next_cursor)


class ProfileBody(msgspec.Struct, frozen=True):
    user_id: UserIdText
    followers: int
    following: int
    posts: int

    @classmethod
    def of(cls, profile: Profile) -> ProfileBody:
        return cls(
            user_id=profile.user_id, followers=profile.followers, following=profile.following, posts=profile.posts
        )


class Health(msgspec.Struct, frozen=True):
    status: str


class Problem(msgspec.Struct, frozen=True, omit_defaults=True):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    detail: str | None = None
    code: str | None = None
    errors: list[dict[str, str]] | None = None


class RemovedBody(msgspec.Struct, frozen=True):
    """Posts that left the feed: these, and every post of these authors (unfollowed)."""

    post_ids: list[Annotated[str, msgspec.Meta(pattern=POST_ID_PATTERN)]]
    author_ids: list[UserIdText]


#: An SSE comment line: clients ignore it, proxies see the connection in use.
HEARTBEAT: Final = b": heartbeat\n\n"


def render_live_event(event: LiveEvent) -> bytes:
    """One event of a live feed in the text/event-stream format. A post's id is the SSE id, so that
    a client's Last-Event-ID resumes after it; JSON data holds no line break."""
    match event:
        case PostAdded(post=post):
            return b"id: %d\nevent: post\ndata: %s\n\n" % (post.id, _encode(PostBody.of(post)))
        case PostsRemoved(post_ids=post_ids, author_ids=author_ids):
            body = RemovedBody(post_ids=[str(post_id) for post_id in post_ids], author_ids=list(author_ids))
            return b"event: removed\ndata: %s\n\n" % _encode(body)
        case RemovalsLost():
            return b"event: removals-lost\ndata: {}\n\n"

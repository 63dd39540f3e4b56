"""A Litestar app of your own with feedcore inside it: your routes, your users, feedcore's feeds.

The feeds open with the app (its lifespan) and close with it; handlers get them through Litestar's
dependency injection, and feedcore's errors become HTTP answers in one exception handler. Run it
from this folder with

    granian --interface asgi litestar_app:app

In memory by default; the ``FEEDCORE_*`` variables choose the rest, as for `feedcore serve`
(``FEEDCORE_DATABASE_URL=postgresql://... granian ...`` keeps everything in PostgreSQL).

Who is asking is the path's ``user`` here, for brevity: an app of your own knows it from its own
sign-in, as feedcore's own API knows it from a bearer token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
from litestar import Litestar, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.di import Provide

from feedcore import FeedcoreError, Forbidden, InvalidInput, NotFound, Post, Unavailable, Unprocessable
from feedcore.entrypoints.embedding import Feeds, Settings, open_feeds


class NewPost(msgspec.Struct, forbid_unknown_fields=True):
    content: str


class Story(msgspec.Struct):
    """A post as this app shows it: ids as strings, for JavaScript."""

    id: str
    author: str
    text: str


class Stories(msgspec.Struct):
    stories: list[Story]
    more: str | None


@asynccontextmanager
async def feeds_open(app: Litestar) -> AsyncIterator[None]:
    async with open_feeds(Settings.from_env()) as feeds:
        app.state.feeds = feeds
        yield


def provide_feeds(state: State) -> Feeds:
    feeds: Feeds = state.feeds
    return feeds


def story(found: Post) -> Story:
    return Story(id=str(found.id), author=found.author_id, text=found.content)


@post("/users/{user:str}/posts", status_code=201)
async def write(user: str, data: NewPost, feeds: Feeds) -> Story:
    return story(await feeds.publish(user, data.content))


@delete("/users/{user:str}/posts/{post_id:str}")
async def remove(user: str, post_id: str, feeds: Feeds) -> None:
    await feeds.delete(user, post_id)


@post("/users/{user:str}/following/{other:str}", status_code=204)
async def follow(user: str, other: str, feeds: Feeds) -> None:
    await feeds.follow(user, other)


@delete("/users/{user:str}/following/{other:str}")
async def unfollow(user: str, other: str, feeds: Feeds) -> None:
    await feeds.unfollow(user, other)


@get("/users/{user:str}/home")
async def home(user: str, feeds: Feeds, more: str | None = None) -> Stories:
    page = await feeds.home(user, limit=10, cursor=more)
    return Stories(stories=[story(found) for found in page.items], more=page.next_cursor)


#: feedcore's error classes, most specific first, and the status each one means here.
STATUSES: list[tuple[type[FeedcoreError], int]] = [
    (InvalidInput, 400),
    (Forbidden, 403),
    (NotFound, 404),
    (Unprocessable, 422),
    (Unavailable, 503),
]


def feed_error(_: Request[object, object, State], error: FeedcoreError) -> Response[dict[str, str]]:
    status = next((code for kind, code in STATUSES if isinstance(error, kind)), 500)
    return Response({"error": error.code, "detail": str(error)}, status_code=status)


app = Litestar(
    route_handlers=[write, remove, follow, unfollow, home],
    dependencies={"feeds": Provide(provide_feeds, sync_to_thread=False)},
    exception_handlers={FeedcoreError: feed_error},
    lifespan=[feeds_open],
)

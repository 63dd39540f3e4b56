"""The routes of the HTTP contract: decode, call a use case, encode."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Annotated, Any, Final

from litestar import HttpMethod, MediaType, Request, Response, delete, get, post, route
from litestar.di import NamedDependency, Provide
from litestar.exceptions import (
    NotAuthorizedException,
    ServiceUnavailableException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, JSONBody, Parameter, QueryParameter
from litestar.response import Stream
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from feedcore import LiveFeed, UserId, parse_post_id, parse_user_id
from feedcore.entrypoints.auth import InvalidToken
from feedcore.entrypoints.container import Services
from feedcore.entrypoints.http.schemas import (
    HEARTBEAT,
    Health,
    NewFollow,
    NewPost,
    PostBody,
    PostPage,
    Problem,
    ProfileBody,
    RemovedBody,
    UserPage,
    render_live_event,
    render_post_page,
)
from feedcore.model import MAX_CURSOR_LENGTH, POST_ID_PATTERN, USER_ID_PATTERN
from feedcore.posts import IDEMPOTENCY_KEY_PATTERN

ServicesDep = NamedDependency[Services]
ViewerDep = NamedDependency[UserId]
WriterDep = NamedDependency[UserId]
BEARER: Final[list[dict[str, list[str]]]] = [{"bearer": []}]


def _problems(*statuses: int) -> dict[int, ResponseSpec]:
    return {
        status: ResponseSpec(
            Problem, description="A problem document (RFC 9457)", media_type="application/problem+json"
        )
        for status in (400, *statuses)
    }


_AUTHENTICATED = (401,)
_WRITES = (401, 413, 429)

MAX_PAGE_SIZE: Final = 100
Limit = Annotated[
    int | None, Parameter(ge=1, le=MAX_PAGE_SIZE, description=f"Page size, 1 to {MAX_PAGE_SIZE}; 20 when absent")
]
Cursor = Annotated[str | None, Parameter(max_length=MAX_CURSOR_LENGTH, description="next_cursor of the previous page")]
PostIdPath = Annotated[str, Parameter(description="A post id: a decimal string", pattern=POST_ID_PATTERN)]
UserIdPath = Annotated[str, Parameter(description="A user id", pattern=USER_ID_PATTERN)]
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Repeats with the same key and body are replayed",
    ),
]


async def provide_viewer(request: Request[Any, Any, Any], services: ServicesDep) -> UserId:
    """The user the bearer token names."""
    return bearer_user(request.headers.get("authorization", ""), services)


def bearer_user(authorization: str, services: Services) -> UserId:
    """The user the ``Authorization`` header's bearer token names."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise NotAuthorizedException("a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    try:
        return services.tokens.verify(token.strip())
    except InvalidToken:
        raise NotAuthorizedException(
            "the bearer token is invalid or expired", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        ) from None


async def provide_writer(viewer: ViewerDep, services: ServicesDep) -> UserId:
    """The viewer, once the per-user write rate limit lets them through."""
    await admit_writer(viewer, services)
    return viewer


async def admit_writer(writer: UserId, services: Services) -> None:
    """Raise a 429 unless the per-user write rate limit lets ``writer`` through."""
    wait = await services.rate_limiter.acquire(writer)
    if wait > 0:
        raise TooManyRequestsException(
            "too many writes: slow down", headers={"Retry-After": str(max(1, math.ceil(wait)))}
        )


PAGED: Final = {"query": frozenset({"limit", "cursor"})}


async def reject_unknown_query(request: Request[Any, Any, Any]) -> None:
    """Refuse query parameters a route does not take, as bodies refuse unknown fields."""
    if not request.scope["query_string"]:  # most reads: nothing to parse
        return
    unknown = set(request.query_params) - request.route_handler.opt.get("query", frozenset())
    if unknown:
        raise ValidationException(f"unknown query parameter: {', '.join(sorted(unknown))[:200]}")


_reader = {"viewer": Provide(provide_viewer)}
_writer = {"viewer": Provide(provide_viewer), "writer": Provide(provide_writer)}


@post(
    "/posts",
    status_code=HTTP_201_CREATED,
    dependencies=_writer,
    security=BEARER,
    responses=_problems(*_WRITES, 409, 422),
)
async def create_post(
    data: JSONBody[NewPost], writer: WriterDep, services: ServicesDep, idempotency_key: IdempotencyKey = None
) -> PostBody:
    """Publish a post as the token's user."""
    # Well-formed posts are answered by http.shortcut and do not come here.
    return await publish(writer, data, idempotency_key, services)


async def publish(writer: UserId, data: NewPost, idempotency_key: str | None, services: Services) -> PostBody:
    """The post ``data`` asks for, published as ``writer``."""
    return PostBody.of(await services.posts.publish(writer, data.content, idempotency_key=idempotency_key))


@get("/posts/{post_id:str}", responses=_problems(404))
async def get_post(post_id: PostIdPath, services: ServicesDep) -> PostBody:
    """One post; deleted posts are not found."""
    return PostBody.of(await services.posts.get(parse_post_id(post_id)))


@delete(
    "/posts/{post_id:str}",
    status_code=HTTP_204_NO_CONTENT,
    dependencies=_writer,
    security=BEARER,
    responses=_problems(*_WRITES, 403, 404),
)
async def remove_post(post_id: PostIdPath, writer: WriterDep, services: ServicesDep) -> None:
    """Delete a post; only its author may."""
    await services.posts.delete(writer, parse_post_id(post_id))


def _options(path: str, *methods: str) -> HTTPRouteHandler:
    """An OPTIONS answer listing every method of ``path``: Litestar 2 lists only the first handler's
    method in a path's automatic one."""
    allow = ", ".join(sorted((*methods, "OPTIONS")))

    async def options() -> Response[None]:
        return Response(None, status_code=HTTP_204_NO_CONTENT, headers={"Allow": allow})

    return route(path, http_method=HttpMethod.OPTIONS, include_in_schema=False, status_code=204)(options)


post_options = _options("/posts/{post_id:str}", "DELETE", "GET")
mute_options = _options("/mutes/{user_id:str}", "DELETE", "POST")
block_options = _options("/blocks/{user_id:str}", "DELETE", "POST")


@post(
    "/follow",
    status_code=HTTP_204_NO_CONTENT,
    dependencies=_writer,
    security=BEARER,
    responses=_problems(*_WRITES, 403, 422),
)
async def create_follow(data: JSONBody[NewFollow], writer: WriterDep, services: ServicesDep) -> None:
    """Follow a user as the token's user; following again changes nothing. A block between the two
    users, whichever of them blocked, refuses it (403)."""
    await services.social.follow(writer, parse_user_id(data.followee_id))


@delete(
    "/follow/{followee_id:str}",
    status_code=HTTP_204_NO_CONTENT,
    dependencies=_writer,
    security=BEARER,
    responses=_problems(*_WRITES),
)
async def remove_follow(followee_id: UserIdPath, writer: WriterDep, services: ServicesDep) -> None:
    """Stop following a user; unfollowing again changes nothing."""
    await services.social.unfollow(writer, parse_user_id(followee_id))


@post(
    "/mutes/{user_id:str}",
    status_code=HTTP_204_NO_CONTENT,
    dependencies=_writer,
    security=BEARER,
    responses=_problems(*_WRITES, 422),
)
async def create_mute(user_id: UserIdPath, writer: WriterDep, services: ServicesDep) -> None:
    """Hide a user's posts from the token's user's home feed, telling them nothing; muting again
    changes nothing."""
    await services.social.mute(writer, parse_user_id(user_id))


@delete(
    "/mutes/{user_id:str}",
    status_code=HTTP_204_NO_CONTENT,
    dependencies=_writer,
    security=BEARER,
    responses=_problems(*_WRITES),
)
async def remove_mute(user_id: UserIdPath, writer: WriterDep, services: ServicesDep) -> None:
    """Show a muted user's posts again, if followed; unmuting again changes nothing."""
    await services.social.unmute(writer, parse_user_id(user_id))


@post(
    "/blocks/{user_id:str}",
    status_code=HTTP_204_NO_CONTENT,
    dependencies=_writer,
    security=BEARER,
    responses=_problems(*_WRITES, 422),
)
async def create_block(user_id: UserIdPath, writer: WriterDep, services: ServicesDep) -> None:
    """Block a user: the follows between the two go, both ways, and neither may follow the other
    while the block stands; blocking again changes nothing."""
    await services.social.block(writer, parse_user_id(user_id))


@delete(
    "/blocks/{user_id:str}",
    status_code=HTTP_204_NO_CONTENT,
    dependencies=_writer,
    security=BEARER,
    responses=_problems(*_WRITES),
)
async def remove_block(user_id: UserIdPath, writer: WriterDep, services: ServicesDep) -> None:
    """Lift a block; the follows it removed do not come back. Unblocking again changes nothing."""
    await services.social.unblock(writer, parse_user_id(user_id))


@get(
    "/feeds/{user_id:str}",
    opt=PAGED,
    dependencies=_reader,
    security=BEARER,
    media_type=MediaType.JSON,
    responses={200: ResponseSpec(PostPage, description="A page of the home feed"), **_problems(*_AUTHENTICATED, 403)},
)
async def get_feed(
    user_id: UserIdPath, viewer: ViewerDep, services: ServicesDep, limit: Limit = None, cursor: Cursor = None
) -> bytes:
    """A page of the home feed, newest first; readable by its owner only."""
    # Well-formed reads are answered by http.shortcut and do not come here.
    return await read_feed(viewer, user_id, limit, cursor, services)


async def read_feed(viewer: UserId, owner: str, limit: int | None, cursor: str | None, services: Services) -> bytes:
    """A page of ``owner``'s home feed as ``viewer`` asks for it, rendered."""
    return await services.home_feeds.rendered(
        viewer, parse_user_id(owner), limit=limit, cursor=cursor, render=render_post_page
    )


LastEventIdHeader = Annotated[
    str | None,
    HeaderParameter(name="Last-Event-ID", pattern=POST_ID_PATTERN, description="The id of the last post received"),
]
LastEventIdQuery = Annotated[
    str | None,
    QueryParameter(
        name="last_event_id",
        pattern=POST_ID_PATTERN,
        description="As Last-Event-ID, for clients that cannot set headers; the header wins",
    ),
]
_STREAM_DESCRIPTION: Final = (
    "Server-Sent Events: `post` (id: the post id; data: a post), `removed` (data: post_ids and author_ids "
    "whose posts left the feed), `removals-lost` (removals were dropped: reload the feed), and a comment "
    "line as a heartbeat."
)


@get(
    "/feeds/{user_id:str}/stream",
    opt={"query": frozenset({"last_event_id"})},
    dependencies=_reader,
    security=BEARER,
    media_type="text/event-stream",
    responses={
        200: ResponseSpec(RemovedBody, description=_STREAM_DESCRIPTION, media_type="text/event-stream"),
        **_problems(*_AUTHENTICATED, 403, 503),
    },
)
async def stream_feed(
    user_id: UserIdPath,
    viewer: ViewerDep,
    services: ServicesDep,
    resume_header: LastEventIdHeader = None,
    resume_query: LastEventIdQuery = None,
) -> Stream:
    """New entries of the home feed as they arrive, oldest first; readable by its owner only.
    Resumes after Last-Event-ID (or last_event_id) when given, else starts from now."""
    resume = resume_header or resume_query
    stream = await services.live_feeds.open(
        viewer, parse_user_id(user_id), last_event_id=parse_post_id(resume) if resume else None
    )
    return Stream(
        _sent(stream, heartbeat=services.stream_heartbeat_seconds),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _sent(stream: LiveFeed, *, heartbeat: float) -> AsyncIterator[bytes]:
    """The stream's events as they come; a heartbeat when none came for ``heartbeat`` seconds.
    Each is handed over only once the previous one was sent: a client that stops reading stops
    the stream reading its feed."""
    try:
        while (events := await stream.next(idle=heartbeat)) is not None:
            yield b"".join(map(render_live_event, events)) if events else HEARTBEAT
    finally:
        stream.close()


@get("/users/{user_id:str}", responses=_problems())
async def get_user(user_id: UserIdPath, services: ServicesDep) -> ProfileBody:
    """A user's follower, following and post counts."""
    return ProfileBody.of(await services.posts.profile(parse_user_id(user_id)))


@get("/users/{user_id:str}/posts", opt=PAGED, responses=_problems())
async def get_user_posts(
    user_id: UserIdPath, services: ServicesDep, limit: Limit = None, cursor: Cursor = None
) -> PostPage:
    """A page of a user's own posts, newest first."""
    return PostPage.of(await services.posts.timeline(parse_user_id(user_id), limit=limit, cursor=cursor))


@get("/users/{user_id:str}/followers", opt=PAGED, responses=_problems())
async def get_followers(
    user_id: UserIdPath, services: ServicesDep, limit: Limit = None, cursor: Cursor = None
) -> UserPage:
    """A page of who follows a user, in id order."""
    return UserPage.of(await services.social.followers(parse_user_id(user_id), limit=limit, cursor=cursor))


@get("/users/{user_id:str}/following", opt=PAGED, responses=_problems())
async def get_following(
    user_id: UserIdPath, services: ServicesDep, limit: Limit = None, cursor: Cursor = None
) -> UserPage:
    """A page of whom a user follows, in id order."""
    return UserPage.of(await services.social.following(parse_user_id(user_id), limit=limit, cursor=cursor))


@get("/healthz")
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@get("/readyz", responses={503: ResponseSpec(Problem, description="A dependency is unavailable")})
async def readyz(services: ServicesDep) -> Health:
    """The process can serve: every dependency answers."""
    if not await services.health.ready():
        raise ServiceUnavailableException("a dependency is unavailable", headers={"Retry-After": "1"})
    return Health(status="ready")


@get("/metrics", media_type="text/plain; version=0.0.4")
async def metrics(services: ServicesDep) -> Response[bytes]:
    """Prometheus metrics in the text exposition format."""
    return Response(services.metrics.exposition(), media_type="text/plain; version=0.0.4")


ROUTES: Final = [
    # Before the other handlers of the same path, so that Litestar does not add its own OPTIONS.
    post_options,
    mute_options,
    block_options,
    create_post,
    get_post,
    remove_post,
    create_follow,
    remove_follow,
    create_mute,
    remove_mute,
    create_block,
    remove_block,
    get_feed,
    stream_feed,
    get_user,
    get_user_posts,
    get_followers,
    get_following,
    healthz,
    readyz,
    metrics,
]

"""The hottest routes, `POST /posts` and `GET /feeds/{user_id}`, answered without Litestar's
per-request work.

Litestar's part of a request (routing aside: the handler's signature model, its dependencies, the
request and response objects) costs about 110 µs of CPU: a bare JSON `POST` under granian took
170 µs through a Litestar handler and 60 µs answered by plain ASGI. Under `bench.write`, a post
cost `feedcore serve` about 500 µs through the handler and 340 µs here.

The routes stay Litestar's: their schema, their OPTIONS, and every request that is not plainly
well formed. This middleware answers a request itself only when its headers, token, parameters
and body are all valid, through the same functions the handler calls; any other request goes on
to the handler untouched, its body replayed, so every 4xx a malformed request gets is Litestar's
own. An error raised once the request is taken (429, 403, the use case's own errors, a dependency
away) is rendered by Litestar's exception handling, as the handler's would be.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Final, cast

import msgspec
from litestar._asgi.utils import wrap_in_exception_handler  # the handlers' own error rendering
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException
from litestar.types import ASGIApp, HTTPResponseStartEvent, Receive, ReceiveMessage, Scope, Send

from feedcore.entrypoints.container import Services
from feedcore.entrypoints.http.routes import MAX_PAGE_SIZE, admit_writer, bearer_user, publish, read_feed
from feedcore.entrypoints.http.schemas import NewPost
from feedcore.model import MAX_CURSOR_LENGTH, USER_ID_PATTERN
from feedcore.posts import IDEMPOTENCY_KEY_PATTERN

_decode: Final = msgspec.json.Decoder(NewPost).decode
_encode: Final = msgspec.json.Encoder().encode
_KEY: Final = re.compile(IDEMPOTENCY_KEY_PATTERN)
_JSON: Final = b"application/json"
_USER: Final = re.compile(USER_ID_PATTERN)
#: A page size written plainly (its range is checked apart); anything else is the handler's to refuse.
_LIMIT: Final = re.compile(rb"^[1-9][0-9]{0,2}\Z")
#: A cursor as the service writes them: base64url, unpadded.
_CURSOR: Final = re.compile(rb"^[A-Za-z0-9_-]{1,%d}\Z" % MAX_CURSOR_LENGTH)


class _Declined(Exception):  # not an error: the handler takes the request instead
    """The request is not one the shortcut answers."""


class _Recording:
    """A request's ``receive``, keeping what it returned for the handler in case of a decline."""

    __slots__ = ("declined", "receive", "received", "taker")

    def __init__(self, receive: Receive, taker: Taker) -> None:
        self.receive = receive
        self.taker = taker
        self.received: list[ReceiveMessage] = []
        self.declined = False

    async def __call__(self) -> ReceiveMessage:
        message = await self.receive()
        self.received.append(message)
        return message

    def replaying(self) -> Receive:
        """``receive`` again, from the first message."""
        pending = iter(self.received)

        async def replay() -> ReceiveMessage:
            message = next(pending, None)
            return message if message is not None else await self.receive()

        return replay


#: What a taker answers: a status and a JSON body.
Answer = tuple[int, bytes]
Taker = Callable[[Scope, Receive, Services], Awaitable[Answer]]


def shortcuts(services: Callable[[], Services], *, max_body_bytes: int) -> Callable[[ASGIApp], ASGIApp]:
    """Middleware (the innermost): answer well-formed requests of the hottest routes itself."""

    async def post(scope: Scope, receive: Receive, serving: Services) -> Answer:
        headers = _headers(scope, (b"authorization", b"content-type", b"idempotency-key"))
        raw_key = headers.get(b"idempotency-key")
        key = None if raw_key is None else raw_key.decode("latin-1")
        if headers.get(b"content-type", b"").partition(b";")[0].strip().lower() != _JSON or scope["query_string"]:
            raise _Declined
        if key is not None and not _KEY.search(key):
            raise _Declined
        try:
            writer = bearer_user(headers.get(b"authorization", b"").decode("latin-1"), serving)
            data = _decode(await _body(receive, max_body_bytes))
        except (NotAuthorizedException, msgspec.MsgspecError, UnicodeDecodeError, RecursionError):
            raise _Declined from None
        await admit_writer(writer, serving)
        return 201, _encode(await publish(writer, data, key, serving))

    async def feed(scope: Scope, _: Receive, serving: Services) -> Answer:
        owner = scope["path_params"].get("user_id")
        if not isinstance(owner, str) or not _USER.search(owner):
            raise _Declined
        limit, cursor = _page_query(scope["query_string"])
        authorization = _headers(scope, (b"authorization",)).get(b"authorization", b"")
        try:
            viewer = bearer_user(authorization.decode("latin-1"), serving)
        except NotAuthorizedException:
            raise _Declined from None
        return 200, await read_feed(viewer, owner, limit, cursor, serving)

    takers: dict[tuple[str, object], Taker] = {("POST", "/posts"): post, ("GET", "/feeds/{user_id}"): feed}

    async def take(scope: Scope, receive: Receive, send: Send) -> None:
        recording = cast("_Recording", receive)  # the middleware's own, passed on by the error handling
        try:
            status, body = await recording.taker(scope, recording, _services(services))
        except _Declined:
            recording.declined = True
            return
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", _JSON), (b"content-length", str(len(body)).encode())],
        }
        await send(start)
        await send({"type": "http.response.body", "body": body, "more_body": False})

    answer = wrap_in_exception_handler(take)

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            taker = takers.get((scope["method"], _route(scope))) if scope["type"] == ScopeType.HTTP else None
            if taker is None:
                await app(scope, receive, send)
                return
            recording = _Recording(receive, taker)
            await answer(scope, recording, send)
            if recording.declined:
                await app(scope, recording.replaying(), send)

        return middleware

    return wrap


def _services(services: Callable[[], Services]) -> Services:
    try:
        return services()
    except IndexError:  # not built yet: the lifespan has not run
        raise _Declined from None


def _page_query(query: bytes) -> tuple[int | None, str | None]:
    """``limit`` and ``cursor`` from a query string written plainly, or a decline: anything else,
    percent-escapes included, is the handler's to parse or refuse."""
    limit: int | None = None
    cursor: str | None = None
    for part in query.split(b"&") if query else ():
        name, _, value = part.partition(b"=")
        if name == b"limit" and limit is None and _LIMIT.match(value) and int(value) <= MAX_PAGE_SIZE:
            limit = int(value)
        elif name == b"cursor" and cursor is None and _CURSOR.match(value):
            cursor = value.decode("ascii")
        else:
            raise _Declined
    return limit, cursor


def _route(scope: Scope) -> object:
    return scope.get("path_template")


def _headers(scope: Scope, names: tuple[bytes, ...]) -> dict[bytes, bytes]:
    """The headers of these ``names``; a second copy of any of them declines the request."""
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in names:
            if name in found:
                raise _Declined
            found[name] = value
    return found


async def _body(receive: Receive, limit: int) -> bytes:
    """The whole body, or a decline when it is longer than ``limit`` or the client left."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _Declined
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _Declined
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)

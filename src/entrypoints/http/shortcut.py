"""`POST /posts`, the write the service exists for, answered without Litestar's per-request work.

Litestar's part of a request (routing aside: the handler's signature model, its dependencies, the
request and response objects) costs about 110 µs of CPU: a bare JSON `POST` under granian took
170 µs through a Litestar handler and 60 µs answered by plain ASGI. Under `bench.write`, a post
cost `feedcore serve` about 500 µs through the handler and 375 µs here.

The route stays Litestar's: its schema, its OPTIONS, and every request that is not plainly well
formed. This middleware answers a request itself only when its headers, token and body are all
valid, through the same functions the handler calls; any other request goes on to the handler
untouched, its body replayed, so every 4xx is Litestar's own. An error raised once the request
is taken (429, the post's own errors, a dependency away) is rendered by Litestar's exception
handling, as the handler's would be.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final, cast

import msgspec
from litestar._asgi.utils import wrap_in_exception_handler  # the handlers' own error rendering
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException
from litestar.types import ASGIApp, HTTPResponseStartEvent, Receive, ReceiveMessage, Scope, Send

from feedcore import UserId
from feedcore.entrypoints.container import Services
from feedcore.entrypoints.http.routes import admit_writer, bearer_user, publish
from feedcore.entrypoints.http.schemas import NewPost
from feedcore.posts import IDEMPOTENCY_KEY_PATTERN

_decode: Final = msgspec.json.Decoder(NewPost).decode
_encode: Final = msgspec.json.Encoder().encode
_KEY: Final = re.compile(IDEMPOTENCY_KEY_PATTERN)
_JSON: Final = b"application/json"
_HEADERS: Final = (b"authorization", b"content-type", b"idempotency-key")


class _Declined(Exception):  # not an error: the handler takes the request instead
    """The request is not one the shortcut answers."""


class _Recording:
    """A request's ``receive``, keeping what it returned for the handler in case of a decline."""

    __slots__ = ("declined", "receive", "received")

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
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


def shortcut_posts(services: Callable[[], Services], *, max_body_bytes: int) -> Callable[[ASGIApp], ASGIApp]:
    """Middleware (the innermost): answer well-formed `POST /posts` requests itself."""

    async def take(scope: Scope, receive: Receive, send: Send) -> None:
        recording = cast("_Recording", receive)  # the middleware's own, passed on by the error handling
        try:
            serving, writer, data, key = await _well_formed(scope, receive, services, max_body_bytes)
        except _Declined:
            recording.declined = True
            return
        await admit_writer(writer, serving)
        body = _encode(await publish(writer, data, key, serving))
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"content-type", _JSON), (b"content-length", str(len(body)).encode())],
        }
        await send(start)
        await send({"type": "http.response.body", "body": body, "more_body": False})

    answer = wrap_in_exception_handler(take)

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP or scope["method"] != "POST" or _route(scope) != "/posts":
                await app(scope, receive, send)
                return
            if scope["query_string"]:  # the handler's to refuse
                await app(scope, receive, send)
                return
            recording = _Recording(receive)
            await answer(scope, recording, send)
            if recording.declined:
                await app(scope, recording.replaying(), send)

        return middleware

    return wrap


async def _well_formed(
    scope: Scope, receive: Receive, services: Callable[[], Services], max_body_bytes: int
) -> tuple[Services, UserId, NewPost, str | None]:
    """The services, the writer, the post asked for and its Idempotency-Key, or a decline."""
    headers = _headers(scope)
    raw_key = headers.get(b"idempotency-key")
    key = None if raw_key is None else raw_key.decode("latin-1")
    if headers.get(b"content-type", b"").partition(b";")[0].strip().lower() != _JSON:
        raise _Declined
    if key is not None and not _KEY.search(key):
        raise _Declined
    try:
        serving = services()
    except IndexError:  # not built yet: the lifespan has not run
        raise _Declined from None
    try:
        writer = bearer_user(headers.get(b"authorization", b"").decode("latin-1"), serving)
        data = _decode(await _body(receive, max_body_bytes))
    except (NotAuthorizedException, msgspec.MsgspecError, UnicodeDecodeError, RecursionError):
        raise _Declined from None
    return serving, writer, data, key


def _route(scope: Scope) -> object:
    return scope.get("path_template")


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The headers the shortcut reads; a second copy of any of them declines the request."""
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in _HEADERS:
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

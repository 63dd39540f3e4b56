"""The Litestar application factory."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import logging
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

from litestar import Litestar, Request
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.exceptions import ClientException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.status_codes import HTTP_408_REQUEST_TIMEOUT
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

from feedcore import LiveFeeds
from feedcore.adapters.metrics import Metrics
from feedcore.entrypoints.auth import token_secret
from feedcore.entrypoints.container import Containers, Services, awaited, build_containers
from feedcore.entrypoints.http.observability import observed
from feedcore.entrypoints.http.problems import EXCEPTION_HANDLERS, on_unavailable
from feedcore.entrypoints.http.routes import ROUTES, reject_unknown_query
from feedcore.entrypoints.http.schemas import REQUEST_BODIES
from feedcore.entrypoints.http.shortcut import shortcuts
from feedcore.entrypoints.logs import configure_logging
from feedcore.entrypoints.runtime import background_work
from feedcore.entrypoints.settings import Settings

_log = logging.getLogger(__name__)

Lifespan = Callable[[Litestar], AbstractAsyncContextManager[None]]
T = TypeVar("T")


class _Request(Request[Any, Any, Any]):
    async def json(self) -> Any:  # a JSON document is any value
        # Litestar turns msgspec's DecodeError into a 400, but not the errors msgspec raises for
        # invalid UTF-8 inside a string or for nesting deeper than it recurses.
        try:
            return await super().json()
        except (UnicodeDecodeError, RecursionError) as error:
            raise ClientException(f"the body is not valid JSON: {type(error).__name__}") from None


def create_app(
    services: Services | Callable[[], Services],
    *,
    max_body_bytes: int,
    metrics: Metrics,
    body_timeout_seconds: float | None = None,
    lifespan: list[Lifespan] | None = None,
    unavailable_errors: tuple[type[Exception], ...] = (),
    shortcut: bool = True,
) -> Litestar:
    """The API over ``services``, or over what a callable returns once the lifespan has built it;
    a request body that takes longer than ``body_timeout_seconds`` to arrive is answered 408.
    Without ``shortcut``, every request goes through its route's handler (see `http.shortcut`)."""
    current = services if callable(services) else lambda: services

    def unavailable(request: Request[Any, Any, Any], error: Exception) -> Any:
        metrics.fell_back("postgres", "request")
        return on_unavailable(request, error)

    handlers: dict[int | type[Exception], Any] = {
        **EXCEPTION_HANDLERS,
        **dict.fromkeys(unavailable_errors, unavailable),
    }
    middleware = [observed(metrics)]
    if body_timeout_seconds is not None:  # inside `observed`, which counts the 408s
        middleware.append(body_deadline(body_timeout_seconds))
    if shortcut:  # innermost: inside the request's metrics, id and body deadline
        middleware.append(shortcuts(current, max_body_bytes=max_body_bytes))
    app = Litestar(
        route_handlers=ROUTES,
        middleware=middleware,
        # Logging is the process's to configure (see entrypoints.logs), not the framework's.
        logging_config=None,
        dependencies={"services": Provide(current, use_cache=True, sync_to_thread=False)},
        exception_handlers=handlers,
        request_max_body_size=max_body_bytes,
        before_request=reject_unknown_query,
        request_class=_Request,
        lifespan=lifespan or [],
        openapi_config=OpenAPIConfig(
            title="feedcore",
            version="0.1.0",
            path="/schema",
            components=Components(
                security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")}
            ),
        ),
    )
    _declare_closed_bodies(app)
    return app


#: Methods whose requests feedcore never reads a body of.
_BODILESS = frozenset(("GET", "HEAD", "OPTIONS"))


def body_deadline(seconds: float) -> Callable[[ASGIApp], ASGIApp]:
    """Middleware: a request's body must have arrived ``seconds`` after its headers, or the request
    is answered 408.

    Neither granian nor Litestar bounds how long a body may take: a client sending one byte a
    second would hold its request, and the handler awaiting the body, for as long as it likes.
    """

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP or scope["method"] in _BODILESS:  # reads cost nothing more
                await app(scope, receive, send)
                return
            deadline = asyncio.get_running_loop().time() + seconds
            arrived = False

            async def receiving() -> ReceiveMessage:
                nonlocal arrived
                if arrived:  # later receives wait for the disconnect, which takes its time
                    return await receive()
                try:
                    async with asyncio.timeout_at(deadline):
                        message = await receive()
                except TimeoutError:
                    detail = f"the request body did not arrive within {seconds:g} s"
                    raise ClientException(detail, status_code=HTTP_408_REQUEST_TIMEOUT) from None
                arrived = message["type"] != "http.request" or not message.get("more_body", False)
                return message

            await app(scope, receiving, send)

        return middleware

    return wrap


def _declare_closed_bodies(app: Litestar) -> None:
    """Say in the schema what the decoder does: request bodies reject unknown fields.

    Litestar's schema of a msgspec Struct leaves out ``forbid_unknown_fields``; without it the
    document would promise that extra fields are accepted.
    """
    schemas = (app.openapi_schema.components.schemas or {}) if app.openapi_schema.components else {}
    for body in REQUEST_BODIES:
        if body.__struct_config__.forbid_unknown_fields and body.__name__ in schemas:
            schemas[body.__name__].additional_properties = False


def create_service_app(settings: Settings | None = None, *, shortcut: bool = True) -> Litestar:
    """The API and an in-process fan-out worker, on the adapters the settings choose.

    Embedded (no configuration): everything in memory. With ``FEEDCORE_DATABASE_URL``: posts,
    graph, feeds and idempotency in PostgreSQL.
    """
    settings = settings or Settings.from_env()
    configure_logging(settings)
    built = build_containers(settings, token_secret(settings, create=settings.embedded))
    # In-memory storage needs no start-up: its services exist at once, lifespan or not.
    services: list[Services] = [] if settings.database_url else [_resolved(built.app.services())]
    return create_app(
        lambda: services[0],
        max_body_bytes=settings.max_body_bytes,
        metrics=built.app.metrics(),
        body_timeout_seconds=settings.body_timeout_seconds,
        lifespan=[_run_in_process(built, settings, services)],
        unavailable_errors=built.storage.unavailable_errors(),
        shortcut=shortcut,
    )


def _resolved(value: T | Awaitable[T]) -> T:
    if inspect.isawaitable(value):
        raise TypeError("this provider needs its resources initialised first")
    return value


def _run_in_process(built: Containers, settings: Settings, services: list[Services]) -> Lifespan:
    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        async with background_work(built, settings), contextlib.AsyncExitStack() as held:
            if not services:
                services.append(await awaited(built.app.services()))
            live = asyncio.create_task(services[0].live_feeds.run())
            held.push_async_callback(_cancelled, live)
            held.callback(_end_streams_on_signals(services[0].live_feeds))
            # What start-up made lives as long as the process: leave it out of every garbage
            # collection from now on, which shortens the pauses requests wait out.
            gc.collect()
            gc.freeze()
            yield

    return lifespan


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _end_streams_on_signals(live: LiveFeeds) -> Callable[[], None]:
    """End the live streams on SIGTERM or SIGINT; returns what puts the handlers back.

    The server waits for open responses to end before it stops the application, and a stream
    never ends by itself: without this, a stopping server would wait for its clients to leave.
    The server's own handling of the signals is the event loop's, woken through its wakeup file
    descriptor whatever the handler; the handler that was there is called as well.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # only the main thread sets handlers (an app under a test client)
    loop = asyncio.get_running_loop()
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}

    def ending(signum: int, frame: Any) -> None:
        loop.call_soon_threadsafe(live.end_all)
        chained = previous[signal.Signals(signum)]
        if callable(chained):
            chained(signum, frame)

    for signum in previous:
        signal.signal(signum, ending)

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore

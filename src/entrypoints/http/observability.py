"""What every request leaves behind: its metrics, and a request id that its log lines carry."""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Callable
from typing import Final

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from feedcore.adapters.metrics import Metrics
from feedcore.entrypoints.logs import REQUEST_ID

#: A client's own request id is kept when it is short and plain; otherwise one is made.
_CLIENT_REQUEST_ID: Final = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
_HEADER: Final = b"x-request-id"


def observed(metrics: Metrics) -> Callable[[ASGIApp], ASGIApp]:
    """Middleware: count and time each request by route template, method and status, and give it a
    request id (the client's ``X-Request-ID``, or a new one), echoed in the response."""

    # New ids: this process's own random prefix and a count, cheaper than a UUID a request. Made
    # here, in the worker process that serves the app, not at import (which forked workers share).
    fresh = map(f"{os.urandom(12).hex()}{{:08x}}".format, itertools.count())

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            request_id = _client_request_id(scope) or next(fresh)
            token = REQUEST_ID.set(request_id)
            status = 500  # unless a response starts
            started = time.perf_counter()

            async def sending(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message["headers"] = [*message.get("headers", ()), (_HEADER, request_id.encode())]
                await send(message)

            try:
                await app(scope, receive, sending)
            finally:
                route = scope.get("path_template", "unmatched")
                metrics.http_request(route, scope["method"], status, time.perf_counter() - started)
                REQUEST_ID.reset(token)

        return middleware

    return wrap


def _client_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == _HEADER and _CLIENT_REQUEST_ID.match(value):
            return value.decode()
    return None

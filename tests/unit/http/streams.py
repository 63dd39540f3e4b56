"""A live feed stream opened on an app under a Litestar TestClient, read a message at a time.

Litestar's test client reads a whole body before it answers, which a stream never ends; this
drives the ASGI app directly, on the client's own event loop, as a server would.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import anyio
from litestar import Litestar
from litestar.testing import TestClient

from tests.support.sse import Message, SseParser
from tests.unit.http.api import authorization, token

#: What a stream gets to deliver an event in, before a test says it did not.
DELIVERY_SECONDS = 5.0


class Stream:
    """One open stream; :meth:`close` hangs up, as a client going away does."""

    #: Streams not closed yet, which :meth:`close_all` closes (a failed test leaves some open).
    unclosed: set[Stream] = set()  # noqa: RUF012  # shared on purpose

    def __init__(self, client: TestClient[Litestar], path: str, headers: Mapping[str, str]) -> None:
        self._portal = client.blocking_portal
        self._chunks: queue.Queue[bytes | None] = queue.Queue()
        self._parser = SseParser()
        self._pending: list[Message] = []
        self.status = 0
        self.headers: dict[str, str] = {}
        self._body = b""
        self._gone: anyio.Event = self._portal.call(anyio.Event)
        path, _, query = path.partition("?")
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [(b"host", b"testserver"), *((k.lower().encode(), v.encode()) for k, v in headers.items())],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "state": {},
        }
        self._done = self._portal.start_task_soon(self._drive, client.app, scope)
        Stream.unclosed.add(self)
        started = self._chunks.get(timeout=DELIVERY_SECONDS)
        assert started == b"", "the response did not start"

    async def _drive(self, app: Litestar, scope: dict[str, Any]) -> None:
        asked = False

        async def receive() -> dict[str, Any]:
            nonlocal asked
            if not asked:
                asked = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await self._gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]
                self.headers = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
                self._chunks.put(b"")
            elif message["type"] == "http.response.body":
                self._chunks.put(message.get("body", b""))
                if not message.get("more_body", False):
                    self._chunks.put(None)

        await app(scope, receive, send)  # type: ignore[arg-type]  # a plain dict scope, as servers give

    def next(self, *, timeout: float = DELIVERY_SECONDS) -> Message:
        """The next message (event or comment); fails when none comes within ``timeout``."""
        deadline = time.monotonic() + timeout
        while not self._pending:
            chunk = self._chunks.get(timeout=max(0.0, deadline - time.monotonic()))
            assert chunk is not None, f"the stream ended: {self._body!r}"
            self._body += chunk
            self._pending += self._parser.feed(chunk)
        return self._pending.pop(0)

    def next_event(self, *, timeout: float = DELIVERY_SECONDS) -> Message:
        """The next event, heartbeats skipped."""
        while True:
            message = self.next(timeout=timeout)
            if message.comment is None:
                return message

    def body(self) -> bytes:
        """The whole body of a response that ended (an error)."""
        while (chunk := self._chunks.get(timeout=DELIVERY_SECONDS)) is not None:
            self._body += chunk
        return self._body

    def nothing_within(self, seconds: float) -> bool:
        """Whether no event (heartbeats aside) came within ``seconds``."""
        try:
            self.next_event(timeout=seconds)
        except queue.Empty:
            return True
        return False

    def close(self) -> None:
        Stream.unclosed.discard(self)
        self._portal.call(self._gone.set)
        self._done.result(timeout=DELIVERY_SECONDS)

    @classmethod
    def close_all(cls) -> None:
        for stream in list(cls.unclosed):
            stream.close()


def open_stream(
    client: TestClient[Litestar],
    owner: str,
    *,
    user: str | None = None,
    last_event_id: str | None = None,
    query: Mapping[str, str] | None = None,
) -> Stream:
    """``owner``'s feed stream, opened as ``user`` (the owner by default)."""
    headers = authorization(token(user or owner))
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    suffix = f"?{urlencode(query)}" if query else ""
    return Stream(client, f"/feeds/{owner}/stream{suffix}", headers)

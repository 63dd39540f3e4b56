"""`POST /posts` and `GET /feeds/{user_id}` answered by the shortcut are answered as their handlers
answer them, and every request the shortcut declines reaches the handler with its body whole."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient
from litestar.types import ReceiveMessage, Scope

from feedcore.entrypoints.container import build_containers
from feedcore.entrypoints.http import routes
from feedcore.entrypoints.http.app import create_service_app
from feedcore.entrypoints.http.shortcut import shortcuts
from feedcore.model import MAX_CONTENT_LENGTH
from tests.unit.http.api import SECRET, Api, authorization, make_settings, token

MAX_BODY_BYTES = 8192  # above the longest content allowed, so both limits are met
#: The headers whose values differ between two answers to the same request.
_VARYING = {"x-request-id", "date"}

#: (method, path, headers, body): well-formed requests, and each way of being otherwise.
_REQUESTS: list[tuple[str, dict[str, str], bytes]] = [
    ("ana", {}, b'{"content": "plain"}'),
    ("ana", {"Content-Type": "application/json; charset=utf-8"}, b'{"content": "with a charset"}'),
    ("ana", {"Idempotency-Key": "k-1"}, b'{"content": "keyed"}'),
    ("ana", {"Idempotency-Key": "k-1"}, b'{"content": "keyed"}'),  # replayed
    ("ana", {"Idempotency-Key": "k-1"}, b'{"content": "keyed, changed"}'),  # the key reused
    ("ana", {"Idempotency-Key": "a key"}, b'{"content": "bad key"}'),
    ("ana", {"Idempotency-Key": "x" * 256}, b'{"content": "long key"}'),
    ("", {}, b'{"content": "no token"}'),
    ("ana", {"Authorization": "Basic YW5hOmFuYQ=="}, b'{"content": "not a bearer"}'),
    ("ana", {"Authorization": f"Bearer {token('ana', secret='y' * 40)}"}, b'{"content": "forged"}'),
    ("ana", {"Content-Type": "text/plain"}, b'{"content": "as text"}'),
    ("ana", {}, b"not json"),
    ("ana", {}, b'{"content": "extra", "more": 1}'),
    ("ana", {}, b'{"content": ""}'),
    ("ana", {}, b'{"content": "nul \\u0000"}'),
    ("ana", {}, json.dumps({"content": "x" * (MAX_CONTENT_LENGTH + 1)}).encode()),
    ("ana", {}, b'["content"]'),
    ("ana", {}, b'{"content": "\xff\xfe"}'),
    ("ana", {}, b"[" * 5000),
    ("ana", {}, b'{"content": "' + b"x" * MAX_BODY_BYTES + b'"}'),
    ("ana", {}, b""),
]


def _answer(
    client: TestClient[Any], user: str, headers: dict[str, str], body: bytes, *, query: str = ""
) -> httpx.Response:
    sent = {"Content-Type": "application/json", **(authorization(token(user)) if user else {})}
    sent.update(headers)
    return client.post(f"/posts{query}", content=body, headers=sent)


def _comparable(response: httpx.Response) -> tuple[int, dict[str, str], Any]:
    """An answer without what differs between two servers: post ids, times and request ids."""
    headers = {name: value for name, value in response.headers.items() if name not in _VARYING}
    if response.status_code == HTTPStatus.CREATED:
        body = response.json()
        headers.pop("content-length")
        return response.status_code, headers, {**body, "id": "-", "created_at": "-"}
    if response.status_code == HTTPStatus.OK:
        page = response.json()
        headers.pop("content-length")
        return (
            response.status_code,
            headers,
            ([(post["author_id"], post["content"]) for post in page["items"]], page["next_cursor"] is not None),
        )
    return response.status_code, headers, response.content


@pytest.fixture
def clients(tmp_path: Path) -> Iterator[tuple[TestClient[Any], TestClient[Any]]]:
    """The app with the shortcut, and without it."""
    with ExitStack() as stack:
        yield tuple(  # type: ignore[misc]  # two of them
            stack.enter_context(
                TestClient(
                    create_service_app(
                        make_settings(
                            tmp_path / str(shortcut),
                            max_body_bytes=MAX_BODY_BYTES,
                            rate_limit_burst=30,
                            rate_limit_per_second=0.001,
                        ),
                        shortcut=shortcut,
                    )
                )
            )
            for shortcut in (True, False)
        )


def test_every_post_request_gets_the_answer_the_handler_gives(
    clients: tuple[TestClient[Any], TestClient[Any]],
) -> None:
    with_shortcut, without = clients
    for user, headers, body in _REQUESTS:
        answers = [_comparable(_answer(client, user, headers, body)) for client in clients]
        assert answers[0] == answers[1], (headers, body[:80])
    for query in ("?a=1", "?"):
        answers = [_comparable(_answer(client, "ana", {}, b'{"content": "q"}', query=query)) for client in clients]
        assert answers[0] == answers[1], query
    # The rate limit (a burst of 30) runs out alike: 19 requests above were let through.
    for _ in range(15):
        answers = [_comparable(_answer(client, "bo", {}, b'{"content": "many"}')) for client in clients]
        assert answers[0] == answers[1]
    assert answers[0][0] == HTTPStatus.CREATED
    for _ in range(20):
        answers = [_comparable(_answer(client, "bo", {}, b'{"content": "many"}')) for client in clients]
        assert answers[0] == answers[1]
    assert answers[0][0] == HTTPStatus.TOO_MANY_REQUESTS
    # And both servers hold the same posts.
    feeds = [Api(client).get("/users/ana/posts", user="ana") for client in (with_shortcut, without)]
    assert [post["content"] for post in feeds[0]["items"]] == [post["content"] for post in feeds[1]["items"]]


class _Handler:
    """The app behind the shortcut: records what reaches it, and reads the body as a handler would."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        self.bodies.append(b"".join(chunks))
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def _through_shortcut(
    tmp_path: Path, headers: dict[str, str], chunks: list[bytes], *, query: bytes = b""
) -> tuple[_Handler, list[dict[str, Any]]]:
    settings = make_settings(tmp_path, max_body_bytes=MAX_BODY_BYTES)
    services = build_containers(settings, SECRET).app.services()
    handler = _Handler()
    middleware = shortcuts(lambda: services, max_body_bytes=MAX_BODY_BYTES)(handler)
    scope: Any = {
        "type": "http",
        "method": "POST",
        "path": "/posts",
        "path_template": "/posts",
        "query_string": query,
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
    }
    messages: list[ReceiveMessage] = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> ReceiveMessage:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    await middleware(scope, receive, send)
    return handler, sent


_WELL_FORMED = {"Content-Type": "application/json", **authorization(token("ana"))}


async def test_a_well_formed_post_is_answered_by_the_shortcut_alone(tmp_path: Path) -> None:
    handler, sent = await _through_shortcut(tmp_path, _WELL_FORMED, [b'{"content": ', b'"in two parts"}'])
    assert handler.bodies == []
    assert sent[0]["status"] == HTTPStatus.CREATED
    assert json.loads(sent[1]["body"])["content"] == "in two parts"


@pytest.mark.parametrize(
    ("headers", "chunks", "query"),
    [
        ({**_WELL_FORMED, "Authorization": "Bearer nonsense"}, [b'{"content": "a"}'], b""),
        ({"Content-Type": "text/plain", **authorization(token("ana"))}, [b'{"content": "a"}'], b""),
        (_WELL_FORMED, [b'{"content": ', b"oops"], b""),
        (_WELL_FORMED, [b'{"content": "', b"x" * MAX_BODY_BYTES, b'"}'], b""),
        (_WELL_FORMED, [b'{"content": "a"}'], b"a=1"),
    ],
    ids=["bad token", "not json", "bad body", "too long", "query string"],
)
async def test_a_request_the_shortcut_declines_reaches_the_handler_with_its_whole_body(
    tmp_path: Path, headers: dict[str, str], chunks: list[bytes], query: bytes
) -> None:
    handler, sent = await _through_shortcut(tmp_path, headers, chunks, query=query)
    assert handler.bodies == [b"".join(chunks)]
    assert [message.get("status") for message in sent if message["type"] == "http.response.start"] == [418]


#: (user, path and query) of feed reads: well formed, and each way of being otherwise.
_READS: list[tuple[str, str]] = [
    ("ana", "/feeds/ana"),
    ("ana", "/feeds/ana?limit=2"),
    ("ana", "/feeds/ana?limit=100"),
    ("ana", "/feeds/ana?limit=0"),
    ("ana", "/feeds/ana?limit=101"),
    ("ana", "/feeds/ana?limit=020"),
    ("ana", "/feeds/ana?limit="),
    ("ana", "/feeds/ana?limit=two"),
    ("ana", "/feeds/ana?limit=%320"),
    ("ana", "/feeds/ana?limit=1&limit=2"),
    ("ana", "/feeds/ana?cursor=abc"),
    ("ana", "/feeds/ana?cursor="),
    ("ana", "/feeds/ana?cursor=%21%21"),
    ("ana", "/feeds/ana?cursor=" + "A" * 257),
    ("ana", "/feeds/ana?page=2"),
    ("ana", "/feeds/ana?limit=2&"),
    ("ana", "/feeds/bo"),
    ("", "/feeds/ana"),
    ("ana", "/feeds/nobody"),
    ("ana", "/feeds/a%20b"),
]


def test_every_feed_read_gets_the_answer_the_handler_gives(
    clients: tuple[TestClient[Any], TestClient[Any]],
) -> None:
    for client in clients:
        api = Api(client)
        api.follow("ana", "bo")
        for index in range(5):
            api.publish("bo" if index % 2 else "ana", f"post {index}")
    for user, target in _READS:
        answers = [
            _comparable(client.get(target, headers=authorization(token(user)) if user else {})) for client in clients
        ]
        assert answers[0] == answers[1], target
    # Each app's own cursors, page after page.
    pages: list[list[Any]] = [[], []]
    for index, client in enumerate(clients):
        next_page: str | None = "/feeds/ana?limit=2"
        while next_page is not None:
            response = client.get(next_page, headers=authorization(token("ana")))
            pages[index].append(_comparable(response))
            cursor = response.json()["next_cursor"]
            next_page = f"/feeds/ana?limit=2&cursor={cursor}" if cursor else None
    assert pages[0] == pages[1]
    assert len(pages[0]) == 3


def test_the_shortcut_answers_well_formed_requests_and_hands_on_the_rest(
    clients: tuple[TestClient[Any], TestClient[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The handlers call the routes module's functions; the shortcut holds its own references."""
    reached: list[str] = []
    for name in ("publish", "read_feed"):
        original = getattr(routes, name)

        def spy(*args: Any, _name: str = name, _original: Any = original) -> Any:
            reached.append(_name)
            return _original(*args)

        monkeypatch.setattr(routes, name, spy)
    with_shortcut, _ = clients
    ana = authorization(token("ana"))
    assert with_shortcut.post("/posts", json={"content": "quick"}, headers=ana).status_code == HTTPStatus.CREATED
    assert with_shortcut.get("/feeds/ana?limit=20", headers=ana).status_code == HTTPStatus.OK
    assert reached == []
    # A percent-escaped page size, and a JSON body sent as text: the handlers answer those.
    assert with_shortcut.get("/feeds/ana?limit=%320", headers=ana).status_code == HTTPStatus.OK
    response = with_shortcut.post(
        "/posts", content=b'{"content": "as text"}', headers={**ana, "Content-Type": "text/plain"}
    )
    assert response.status_code < HTTPStatus.INTERNAL_SERVER_ERROR
    assert reached[0] == "read_feed"

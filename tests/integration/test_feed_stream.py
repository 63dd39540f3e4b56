"""Live feed streams on the real stack: `serve --workers 2` and a `process` beside it, announcing
feed changes through Redis."""

from __future__ import annotations

import signal
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from feedcore import UserId
from feedcore.entrypoints.auth import Tokens
from tests.integration.conftest import service_url
from tests.integration.stack import SECRET, Stack, free_port, isolated_stack, wait_until
from tests.support.sse import Message, SseParser

#: How long an event may take to arrive before a test says it did not.
DELIVERY_SECONDS = 15.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    settings = {
        "FEEDCORE_REDIS_URL": service_url("FEEDCORE_REDIS_URL"),
        "FEEDCORE_REDIS_PREFIX": f"stream-{uuid.uuid4().hex[:8]}:",
        "FEEDCORE_STREAM_HEARTBEAT_SECONDS": "0.5",
    }
    with isolated_stack(tmp_path_factory.mktemp("stream"), **settings) as started:
        started.serve("--workers", "2")
        started.spawn("process")
        yield started


class Reader:
    """An open stream, read a message at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._chunks = response.iter_bytes()
        self._parser = SseParser()
        self._pending: list[Message] = []

    def next_event(self) -> Message:
        while True:
            while not self._pending:
                self._pending += self._parser.feed(next(self._chunks))
            message = self._pending.pop(0)
            if message.comment is None:
                return message

    def next_comment(self) -> str:
        while True:
            while not self._pending:
                self._pending += self._parser.feed(next(self._chunks))
            message = self._pending.pop(0)
            if message.comment is not None:
                return message.comment

    def posts(self, count: int) -> list[dict[str, Any]]:
        found = []
        for _ in range(count):
            message = self.next_event()
            assert message.event == "post", message
            post: dict[str, Any] = message.json()
            assert message.id == post["id"]
            found.append(post)
        return found


@contextmanager
def streaming(stack: Stack, owner: str, *, last_event_id: str | None = None) -> Iterator[Reader]:
    headers = {"Authorization": f"Bearer {Tokens(SECRET).issue(UserId(owner))}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    timeout = httpx.Timeout(10, read=DELIVERY_SECONDS)
    with (
        httpx.Client(base_url=stack.base_url, timeout=timeout) as client,
        client.stream("GET", f"/feeds/{owner}/stream", headers=headers) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Reader(response)


def _user(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def test_posts_arrive_and_a_resume_on_any_worker_has_no_gap_or_repeat(stack: Stack) -> None:
    reader_name, author_name = _user("ana"), _user("bo")
    with stack.client(reader_name) as reader, stack.client(author_name) as author:
        assert reader.post("/follow", json={"followee_id": author_name}).status_code == 204
        published: list[dict[str, Any]] = []
        with streaming(stack, reader_name) as stream:
            published += [author.post("/posts", json={"content": f"#{n}"}).json() for n in range(3)]
            seen = stream.posts(2)
        published += [author.post("/posts", json={"content": f"#{n}"}).json() for n in range(3, 6)]
        # Connections go to either worker: each resume may land on the other one.
        for _ in range(2):
            with streaming(stack, reader_name, last_event_id=seen[-1]["id"]) as stream:
                seen += stream.posts(1)
        with streaming(stack, reader_name, last_event_id=seen[-1]["id"]) as stream:
            seen += stream.posts(2)
    assert seen == published


def test_deletes_and_unfollows_arrive_as_removals(stack: Stack) -> None:
    reader_name, author_name = _user("ana"), _user("bo")
    with stack.client(reader_name) as reader, stack.client(author_name) as author:
        assert reader.post("/follow", json={"followee_id": author_name}).status_code == 204
        with streaming(stack, reader_name) as stream:
            created = author.post("/posts", json={"content": "soon gone"}).json()
            assert stream.posts(1) == [created]
            assert author.delete(f"/posts/{created['id']}").status_code == 204
            removed = stream.next_event()
            assert (removed.event, removed.json()) == ("removed", {"post_ids": [created["id"]], "author_ids": []})
            assert reader.delete(f"/follow/{author_name}").status_code == 204
            removed = stream.next_event()
            assert (removed.event, removed.json()) == ("removed", {"post_ids": [], "author_ids": [author_name]})


def test_an_idle_stream_gets_heartbeats(stack: Stack) -> None:
    with streaming(stack, _user("idle")) as stream:
        assert [stream.next_comment() for _ in range(2)] == ["heartbeat", "heartbeat"]


def _workers(stack: Stack) -> list[int]:
    server = stack.processes[0].popen.pid
    children = Path(f"/proc/{server}/task/{server}/children").read_text().split()
    return [int(pid) for pid in children]


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def test_clients_that_stop_reading_do_not_grow_the_servers_memory(stack: Stack) -> None:
    reader_name, author_name = _user("sleepy"), _user("loud")
    token = Tokens(SECRET).issue(UserId(reader_name))
    with stack.client(reader_name) as reader, stack.client(author_name) as author:
        assert reader.post("/follow", json={"followee_id": author_name}).status_code == 204
        sleepers = []
        for _ in range(4):
            sleeper = socket.create_connection(("127.0.0.1", stack.port))
            sleeper.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            request = f"GET /feeds/{reader_name}/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
            sleeper.sendall(request.encode())
            sleepers.append(sleeper)
        try:
            time.sleep(1)
            before = sum(map(_rss_bytes, _workers(stack)))
            content = "x" * 4_000
            posts = 1_500  # 6 MB of events for each of the four streams, none of it read
            for _ in range(posts):
                assert author.post("/posts", json={"content": content}).status_code == 201
            with streaming(stack, reader_name) as awake:  # the stack keeps delivering meanwhile
                last = author.post("/posts", json={"content": "the last"}).json()
                assert awake.posts(1) == [last]
            grown = sum(map(_rss_bytes, _workers(stack))) - before
            assert grown < 12 * 2**20, f"the workers grew by {grown / 2**20:.1f} MB"
        finally:
            for sleeper in sleepers:
                sleeper.close()


def test_a_server_stopping_ends_its_streams_and_exits(stack: Stack) -> None:
    port = free_port()
    server = stack.spawn("serve", FEEDCORE_PORT=str(port))
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: _answers(base), timeout=30, what="the second server to answer")
    user = _user("leaving")
    headers = {"Authorization": f"Bearer {Tokens(SECRET).issue(UserId(user))}"}
    with (
        httpx.Client(base_url=base, timeout=httpx.Timeout(10, read=DELIVERY_SECONDS)) as client,
        client.stream("GET", f"/feeds/{user}/stream", headers=headers) as response,
    ):
        stream = Reader(response)
        assert stream.next_comment() == "heartbeat"
        started = time.monotonic()
        assert server.stop(signal.SIGTERM, timeout=10) == 0
        assert time.monotonic() - started < 10
        with pytest.raises(StopIteration):  # the response ended, as a stream's end does
            stream.next_event()


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_a_celebrity_post_merged_at_read_time_arrives_and_leaves(stack: Stack) -> None:
    # Posts published through a server whose threshold is one follower are never fanned out.
    port = free_port()
    stack.spawn("serve", FEEDCORE_PORT=str(port), FEEDCORE_CELEBRITY_THRESHOLD="1")
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: _answers(base), timeout=30, what="the low-threshold server to answer")
    star, fan, other = _user("star"), _user("fan"), _user("other")
    for follower in (fan, other):
        with stack.client(follower) as client:
            assert client.post("/follow", json={"followee_id": star}).status_code == 204
    token = Tokens(SECRET).issue(UserId(star))
    with (
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as author,
        streaming(stack, fan) as stream,
    ):
        created = author.post("/posts", json={"content": "to the many"}).json()
        assert stack.scalar("SELECT fan_out FROM posts WHERE id = %s", int(created["id"])) is False
        assert stream.posts(1) == [created]
        assert author.delete(f"/posts/{created['id']}").status_code == 204
        removed = stream.next_event()
        assert (removed.event, removed.json()) == ("removed", {"post_ids": [created["id"]], "author_ids": []})

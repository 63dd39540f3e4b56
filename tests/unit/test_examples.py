"""The example programs in examples/ run, and do what they say, as a user would run them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

EXAMPLES = Path(__file__).parents[2] / "examples"


def in_memory_environment() -> dict[str, str]:
    """This process's environment without any FEEDCORE_* setting: the examples run in memory."""
    return {name: value for name, value in os.environ.items() if not name.startswith("FEEDCORE_")}


def test_the_embedded_example_prints_feeds_as_they_change() -> None:
    finished = subprocess.run(  # noqa: S603  # our own example, on this interpreter
        [sys.executable, str(EXAMPLES / "embedded.py")],
        env=in_memory_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.splitlines() == [
        "ana follows bo and cy",
        "ana's home feed, two posts a page:",
        "  page 1: cy: new bread recipe | bo: the ferry is late again",
        "  page 2: cy: a post cy will delete | bo: first light over the harbour",
        "cy deletes a post, ana unfollows bo; ana's home feed:",
        "  page 1: cy: new bread recipe",
        "ana: 0 followers, 1 following, 0 posts",
        "bo: 0 followers, 0 following, 2 posts",
        "cy: 1 followers, 0 following, 1 posts",
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def eventually(check: Callable[[], bool], *, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def litestar_app(tmp_path: Path) -> Iterator[httpx.Client]:
    """The Litestar example served by granian, as its docstring says to run it."""
    port = free_port()
    log = tmp_path / "granian.log"
    with log.open("wb") as output:
        server = subprocess.Popen(  # noqa: S603  # granian, serving our own example
            [sys.executable, "-m", "granian", "--interface", "asgi", "--port", str(port), "litestar_app:app"],
            cwd=EXAMPLES,
            env=in_memory_environment(),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its worker in its group, to be stopped with it
        )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

    def answers() -> bool:
        if server.poll() is not None:
            raise AssertionError(f"the example exited:\n{log.read_text()}")
        try:
            return client.get("/users/nobody/home").status_code == 200
        except httpx.TransportError:
            return False

    try:
        eventually(answers, what="the Litestar example to answer", timeout=30)
        yield client
    finally:
        client.close()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=15)
            raise AssertionError(f"the example did not stop on SIGINT:\n{log.read_text()}") from None


def stories(client: httpx.Client, user: str) -> list[str]:
    answer = client.get(f"/users/{user}/home")
    assert answer.status_code == 200, answer.text
    return [story["text"] for story in answer.json()["stories"]]


def test_the_litestar_example_serves_feeds_through_its_own_routes(litestar_app: httpx.Client) -> None:
    client = litestar_app
    assert client.post("/users/ana/following/bo").status_code == 204
    written = client.post("/users/bo/posts", json={"content": "hello from bo"})
    assert written.status_code == 201, written.text
    assert written.json()["author"] == "bo"
    eventually(lambda: stories(client, "ana") == ["hello from bo"], what="bo's post in ana's home feed")

    refused = client.delete(f"/users/ana/posts/{written.json()['id']}")
    assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")
    self_follow = client.post("/users/ana/following/ana")
    assert (self_follow.status_code, self_follow.json()["error"]) == (422, "self_follow")
    bad_cursor = client.get("/users/ana/home", params={"more": "not-a-cursor"})
    assert (bad_cursor.status_code, bad_cursor.json()["error"]) == (400, "invalid_cursor")

    assert client.delete("/users/ana/following/bo").status_code == 204
    assert stories(client, "ana") == []

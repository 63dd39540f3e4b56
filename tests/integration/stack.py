"""feedcore's own processes (`serve`, `process`, `relay`) on the real services, for the tests that
need the whole event path: each stack gets a database, topics and a consumer group of its own."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from infra.infra import delete_kafka_topics
from psycopg import sql
from psycopg.conninfo import make_conninfo

from feedcore import UserId
from feedcore.entrypoints.auth import Tokens
from tests.integration.conftest import SERVICE_VARIABLES, service_url
from tests.prometheus import Scrape, parse

ROOT = Path(__file__).parents[2]
SECRET = "stack-" + "s" * 40


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(check: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, signum: int = signal.SIGTERM, *, timeout: float = 30) -> int:
        """Signal the process and wait for its exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signum)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.end()
            raise AssertionError(
                f"{self.name} did not exit within {timeout:.0f}s of {signum!r}:\n{self.output()}"
            ) from None

    def end(self) -> None:
        """Stop the process and everything it started (granian's workers, say) for good.

        Each process leads a process group of its own: SIGTERM to the group, then SIGKILL to what
        is left of it. Killing only a server's parent would orphan its workers, port and all.
        """
        for signum, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signum)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=grace)
            deadline = time.monotonic() + grace
            while _group_alive(self.popen.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not _group_alive(self.popen.pid):
                return


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class Stack:
    """One isolated feedcore deployment: its database, topics and group, and the processes started on them."""

    directory: Path
    database_url: str
    settings: dict[str, str]
    port: int
    processes: list[Process] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self, **overrides: str) -> dict[str, str]:
        inherited = {
            name: value
            for name, value in os.environ.items()
            if name not in SERVICE_VARIABLES and not name.startswith("FEEDCORE_")
        }
        return {**inherited, **self.settings, **overrides}

    def spawn(self, command: str, *arguments: str, **overrides: str) -> Process:
        """Start ``feedcore COMMAND`` on this stack; ``overrides`` change its FEEDCORE_* settings."""
        log = self.directory / f"{command}-{len(self.processes)}.log"
        with log.open("wb") as output:
            popen = subprocess.Popen(  # noqa: S603  # our own command
                [str(ROOT / ".venv" / "bin" / "feedcore"), command, *arguments],
                env=self.environment(**overrides),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a process group of its own: see Process.end
            )
        process = Process(command, popen, log)
        self.processes.append(process)
        return process

    def serve(self, *arguments: str, **overrides: str) -> Process:
        process = self.spawn("serve", *arguments, **overrides)

        def healthy() -> bool:
            if process.popen.poll() is not None:
                raise AssertionError(f"feedcore serve exited:\n{process.output()}")
            try:
                return httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, timeout=30, what="feedcore serve to answer")
        return process

    def client(self, user: str) -> httpx.Client:
        token = Tokens(SECRET).issue(UserId(user))
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    def first_post_in_feed(self, follower: str, author: str) -> str:
        """``follower`` follows ``author``, who posts once; returns the post's id once it is in the
        follower's feed (the whole event path works before a test breaks part of it)."""
        with self.client(follower) as reader, self.client(author) as writer:
            assert reader.post("/follow", json={"followee_id": author}).status_code == 204
            created = writer.post("/posts", json={"content": "before the outage"})
        assert created.status_code == 201, created.text
        post_id = str(created.json()["id"])
        wait_until(lambda: post_id in self.feed_ids(follower), timeout=30, what=f"the first post in {follower}'s feed")
        return post_id

    def post_while_away(self, author: httpx.Client, follower: str, posted: list[str], *, count: int, what: str) -> None:
        """``author`` posts ``count`` times while ``what`` is away (the ids go to ``posted``), and the
        processor applies them to ``follower``'s feed in PostgreSQL: ``posted`` is then that feed."""
        for number in range(count):
            created = author.post("/posts", json={"content": f"while {what} is away, #{number}"})
            assert created.status_code == 201, created.text
            posted.append(created.json()["id"])
        wait_until(
            lambda: self.scalar("SELECT count(*) FROM feed_entries WHERE user_id = %s", follower) == len(posted),
            timeout=30,
            what=f"the processor to apply the posts without {what}",
        )

    def feed_ids(self, user: str) -> list[str]:
        """The ids of the first 100 posts of ``user``'s home feed, as the user reads it."""
        with self.client(user) as client:
            response = client.get(f"/feeds/{user}", params={"limit": 100})
            assert response.status_code == 200, response.text
            return [item["id"] for item in response.json()["items"]]

    def query(self, statement: str, *parameters: object) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            return connection.execute(statement, parameters).fetchall()

    def scalar(self, statement: str, *parameters: object) -> Any:
        return self.query(statement, *parameters)[0][0]


@contextmanager
def isolated_stack(directory: Path, **settings: str) -> Iterator[Stack]:
    """A stack on the services of this test run; its processes are stopped and its database dropped after."""
    server = service_url("FEEDCORE_DATABASE_URL")
    kafka = service_url("FEEDCORE_KAFKA_BOOTSTRAP")
    name = f"feedcore_stack_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    database_url = make_conninfo(server, dbname=name)
    port = free_port()
    stack = Stack(
        directory=directory,
        database_url=database_url,
        port=port,
        settings={
            "FEEDCORE_DATABASE_URL": database_url,
            "FEEDCORE_KAFKA_BOOTSTRAP": kafka,
            "FEEDCORE_KAFKA_TOPIC": f"{name}.events",
            "FEEDCORE_KAFKA_GROUP": f"{name}.processor",
            "FEEDCORE_KAFKA_PARTITIONS": "4",
            "FEEDCORE_JWT_SECRET": SECRET,
            "FEEDCORE_PORT": str(port),
            "FEEDCORE_MIGRATE_ON_START": "true",
            "FEEDCORE_RATE_LIMIT_PER_SECOND": "0",
            "FEEDCORE_RETRY_MAX_SECONDS": "1",
            **settings,
        },
    )
    try:
        yield stack
    finally:
        for process in stack.processes:
            process.end()
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        delete_kafka_topics(stack.settings["FEEDCORE_KAFKA_BOOTSTRAP"], stack.settings["FEEDCORE_KAFKA_TOPIC"])


def scrape(url: str) -> Scrape:
    """What a Prometheus endpoint serves now."""
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return parse(response.text)


def log_records(output: str) -> list[dict[str, Any]]:
    """The JSON log lines among a process's output (the real mode's log format), decoded."""
    records = []
    for line in output.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            assert isinstance(record, dict), line
            records.append(record)
    return records

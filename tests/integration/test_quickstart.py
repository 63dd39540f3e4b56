"""`feedcore serve` as a newcomer runs it, driven by the README's quick start, verbatim."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import SERVICE_VARIABLES

ROOT = Path(__file__).parents[2]


def embedded_environment(**settings: str) -> dict[str, str]:
    """This process's environment for an embedded feedcore: without the services the suite uses."""
    inherited = {name: value for name, value in os.environ.items() if name not in SERVICE_VARIABLES}
    return {**inherited, **settings}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, dict[str, str], str]]:
    port = free_port()
    env = embedded_environment(FEEDCORE_DEV_SECRET_FILE=str(tmp_path / "secret"), FEEDCORE_PORT=str(port))
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen(  # noqa: S603  # our own command
            [str(ROOT / ".venv" / "bin" / "feedcore"), "serve"], env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"feedcore serve did not come up:\n{log.read_text()}")
            time.sleep(0.1)
        yield port, env, log.read_text()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_readme_quick_start_works_as_written(server: tuple[int, dict[str, str], str]) -> None:
    port, env, banner = server
    assert f"listening on http://127.0.0.1:{port}" in banner
    assert "Nothing is persisted" in banner
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1]
    [session] = re.findall(r"```sh\n(.*?)```", quick_start.split("\n## ", 1)[0], flags=re.DOTALL)
    script = session.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    result = subprocess.run(  # noqa: S603  # the README's own commands
        ["/bin/bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    feed = json.loads(result.stdout.strip().splitlines()[-1])
    assert [(post["author_id"], post["content"]) for post in feed["items"]] == [("bo", "hello, feed")]
    assert feed["next_cursor"] is None


def feedcore(*arguments: str, secret_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603  # our own command
        [str(ROOT / ".venv" / "bin" / "feedcore"), *arguments],
        env=embedded_environment(FEEDCORE_DEV_SECRET_FILE=str(secret_file)),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_embedded_mode_refuses_more_than_one_worker(tmp_path: Path) -> None:
    result = feedcore("serve", "--workers", "2", secret_file=tmp_path / "secret")
    assert result.returncode != 0
    assert "--workers above 1 needs FEEDCORE_DATABASE_URL" in result.stderr


def test_a_token_needs_a_secret_to_sign_with(tmp_path: Path) -> None:
    result = feedcore("token", "ana", secret_file=tmp_path / "missing")
    assert result.returncode != 0
    assert "feedcore serve" in result.stderr

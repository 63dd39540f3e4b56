"""A clean install: the wheel's one top-level package is feedcore, it installs into a fresh virtual
environment beside the PyPI distribution named ``entrypoints`` without shadowing it, and the
installed command and the embedding example run from there, away from this source tree."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx

ROOT = Path(__file__).parents[2]
#: The release of the other distribution whose top-level package is named ``entrypoints``.
ENTRYPOINTS_RELEASE = "0.4"


def run(*command: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    finished = subprocess.run(  # noqa: S603  # pip, venv and feedcore: our own commands
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert finished.returncode == 0, f"{command} failed:\n{finished.stdout}\n{finished.stderr}"
    return finished.stdout


def clean_environment(tmp_path: Path) -> dict[str, str]:
    """This environment without anything that would find feedcore elsewhere than in the venv
    (PYTHONPATH) or take it off the memory adapters (FEEDCORE_*)."""
    kept = {
        name: value for name, value in os.environ.items() if not name.startswith(("FEEDCORE_", "PYTHON", "VIRTUAL_ENV"))
    }
    return {**kept, "FEEDCORE_DEV_SECRET_FILE": str(tmp_path / "dev-secret")}


def build_wheel(tmp_path: Path) -> Path:
    """The wheel of a copy of the sources: a build leaves ``build/`` behind, and a stale one in the
    tree itself could put modules deleted since into the wheel."""
    source = tmp_path / "source"
    ignored = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(ROOT / "src", source / "src", symlinks=True, ignore=ignored)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", tmp_path / "dist", source)
    [wheel] = (tmp_path / "dist").glob("feedcore-*.whl")
    return wheel


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve_briefly(feedcore: Path, env: dict[str, str], cwd: Path) -> str:
    """Start `feedcore serve`, wait for /healthz, stop it with SIGINT; returns its output."""
    port = free_port()
    log = cwd / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(  # noqa: S603  # the installed feedcore
            [str(feedcore), "serve", "--port", str(port)], cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, f"feedcore serve exited:\n{log.read_text()}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"feedcore serve did not answer:\n{log.read_text()}"
            time.sleep(0.1)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=15)
    return log.read_text()


def test_the_wheel_installs_feedcore_alone_and_runs_from_a_fresh_venv(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names}
    [dist_info] = [entry for entry in top_level if entry.endswith(".dist-info")]
    assert top_level == {"feedcore", dist_info}
    migrations = sorted(path.name for path in (ROOT / "src" / "adapters" / "postgres" / "migrations").glob("*.sql"))
    assert migrations
    assert {f"feedcore/adapters/postgres/migrations/{name}" for name in migrations} <= set(names)
    assert {"feedcore/py.typed", "feedcore/adapters/py.typed", "feedcore/entrypoints/py.typed"} <= set(names)

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    python, env, away = venv / "bin" / "python", clean_environment(tmp_path), tmp_path  # not the source tree
    run(python, "-m", "pip", "install", "--quiet", f"entrypoints=={ENTRYPOINTS_RELEASE}", wheel, env=env, cwd=away)

    other = run(
        python,
        "-c",
        "import entrypoints, importlib.metadata as m; print(m.version('entrypoints'), entrypoints.get_group_all)",
        env=env,
        cwd=away,
    )
    assert other.startswith(f"{ENTRYPOINTS_RELEASE} <function get_group_all"), other
    installed = run(python, "-c", "import feedcore.entrypoints.embedding as m; print(m.__file__)", env=env, cwd=away)
    assert Path(installed.strip()).is_relative_to(venv), installed

    assert run(venv / "bin" / "feedcore", "--version", env=env, cwd=away).strip() == "feedcore 0.1.0"
    assert "feedcore (embedded) listening on" in serve_briefly(venv / "bin" / "feedcore", env, away)

    example = run(python, ROOT / "examples" / "embedded.py", env=env, cwd=away)
    assert "  page 1: cy: new bread recipe | bo: the ferry is late again" in example.splitlines()

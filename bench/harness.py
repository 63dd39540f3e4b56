"""What the benchmarks share: a feedcore server of their own, and wrk runs summarised as medians."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment(settings: dict[str, str]) -> dict[str, str]:
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("FEEDCORE_")}
    return {**inherited, **settings, "FEEDCORE_LOG_LEVEL": "WARNING"}


@contextmanager
def feedcore_server(settings: dict[str, str]) -> Iterator[str]:
    """`feedcore serve` on a free port with exactly these FEEDCORE_* settings; yields its base URL."""
    port = free_port()
    with feedcore("serve", {**settings, "FEEDCORE_PORT": str(port)}) as server:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("feedcore serve did not become ready")
            time.sleep(0.1)
        yield base


@contextmanager
def feedcore(command: str, settings: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """`feedcore COMMAND` with exactly these FEEDCORE_* settings, stopped with SIGINT at the end."""
    process = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "feedcore"), command], env=_environment(settings), stdout=subprocess.DEVNULL
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


class Run:
    def __init__(self, output: str) -> None:
        if "Non-2xx" in output or "Socket errors" in output:
            raise SystemExit(f"wrk saw errors:\n{output}")
        self.rate = float(_find(r"Requests/sec:\s+([\d.]+)", output))
        self.p50 = _millis("50%", output)
        self.p99 = _millis("99%", output)


def _find(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise SystemExit(f"no {pattern!r} in wrk's output:\n{text}")
    return match.group(1)


def _millis(label: str, output: str) -> float:
    match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", output)
    if match is None:
        raise SystemExit(f"no {label} latency in wrk's output:\n{output}")
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]


def wrk(url: str, *, connections: int, seconds: int, extra: Sequence[str] = ()) -> Run:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", *extra, url]
    return Run(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def report(title: str, runs: list[Run]) -> None:
    print(title)
    for run in runs:
        print(f"  run: {run.rate:9.0f} req/s   p50 {run.p50:6.2f} ms   p99 {run.p99:6.2f} ms")
    print(
        f"median of {len(runs)}: {statistics.median(r.rate for r in runs):.0f} req/s, "
        f"p50 {statistics.median(r.p50 for r in runs):.2f} ms, p99 {statistics.median(r.p99 for r in runs):.2f} ms"
    )

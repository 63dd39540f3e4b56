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
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import redis
from infra.infra import delete_kafka_topics
from psycopg import sql
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def service(variable: str) -> str:
    """A service's URL from the environment ``make bench`` sets up."""
    value = os.environ.get(variable)
    if not value:
        raise SystemExit(f"{variable} is not set: run `make bench`, or `make infra-up` first")
    return value


@contextmanager
def scratch_database() -> Iterator[tuple[str, str]]:
    """A database of the benchmark's own beside FEEDCORE_DATABASE_URL's, as (name, URL); dropped after."""
    server = service("FEEDCORE_DATABASE_URL")
    name = f"feedcore_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name, make_conninfo(server, dbname=name)
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        # The topics named after it (backbone_settings), if a run made them: left behind, a
        # broker's partitions pile up and cost it CPU even idle.
        if os.environ.get("FEEDCORE_KAFKA_BOOTSTRAP"):
            delete_kafka_topics(os.environ["FEEDCORE_KAFKA_BOOTSTRAP"], f"{name}.events")


def backbone_settings(name: str, url: str, secret: str) -> dict[str, str]:
    """feedcore on the scratch database ``url`` and on Kafka topics and a group named after it."""
    return {
        "FEEDCORE_DATABASE_URL": url,
        "FEEDCORE_KAFKA_BOOTSTRAP": service("FEEDCORE_KAFKA_BOOTSTRAP"),
        "FEEDCORE_KAFKA_TOPIC": f"{name}.events",
        "FEEDCORE_KAFKA_GROUP": f"{name}.processor",
        "FEEDCORE_MIGRATE_ON_START": "true",
        "FEEDCORE_JWT_SECRET": secret,
        "FEEDCORE_RATE_LIMIT_PER_SECOND": "0",
    }


def _environment(settings: dict[str, str]) -> dict[str, str]:
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("FEEDCORE_")}
    return {**inherited, **settings, "FEEDCORE_LOG_LEVEL": "WARNING"}


@contextmanager
def feedcore_server(settings: dict[str, str], *, workers: int = 1) -> Iterator[str]:
    """`feedcore serve` on a free port with exactly these FEEDCORE_* settings; yields its base URL."""
    port = free_port()
    with feedcore("serve", {**settings, "FEEDCORE_PORT": str(port)}, "--workers", str(workers)) as server:
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
def feedcore(command: str, settings: dict[str, str], *arguments: str) -> Iterator[subprocess.Popen[bytes]]:
    """`feedcore COMMAND` with exactly these FEEDCORE_* settings, stopped with SIGINT at the end."""
    process = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "feedcore"), command, *arguments],
        env=_environment(settings),
        stdout=subprocess.DEVNULL,
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
    threads = min(2, connections)  # wrk refuses fewer connections than threads
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", *extra, url]
    return Run(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def report(title: str, runs: list[Run]) -> None:
    print(title)
    for run in runs:
        print(f"  run: {run.rate:9.0f} req/s   p50 {run.p50:6.2f} ms   p99 {run.p99:6.2f} ms")
    print(
        f"median of {len(runs)}: {statistics.median(r.rate for r in runs):.0f} req/s, "
        f"p50 {statistics.median(r.p50 for r in runs):.2f} ms, p99 {statistics.median(r.p99 for r in runs):.2f} ms"
    )


@contextmanager
def granian_app(
    app: str, *, workers: int, environment: dict[str, str], probe: Callable[[str], object]
) -> Iterator[str]:
    """The ASGI ``app`` (``module:attribute``) under granian from this project's environment, with
    ``environment`` added; yields its base URL once ``probe(base)`` stops raising httpx errors."""
    port = free_port()
    server = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "granian"),
            "--interface",
            "asgi",
            "--port",
            str(port),
            "--workers",
            str(workers),
            app,
        ],
        env={**os.environ, **environment},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                probe(base)
                break
            except httpx.HTTPError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"{app} did not start") from None
                time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=15)


def compare(title: str, ceiling_title: str, pairs: list[tuple[Run, Run]]) -> None:
    """Runs of the product, each beside a run of its ceiling made just before it: both reported, and
    the medians of the pairs' ratios (throughput, and p99 latency)."""
    report(ceiling_title, [ceiling for ceiling, _ in pairs])
    report(title, [product for _, product in pairs])
    rates = [product.rate / ceiling.rate for ceiling, product in pairs]
    tails = [product.p99 / ceiling.p99 for ceiling, product in pairs]
    print(
        f"against the ceiling, median of {len(pairs)} pairs: {100 * statistics.median(rates):.0f} % of its "
        f"throughput, {statistics.median(tails):.2f}x its p99"
    )


@contextmanager
def scratch_cache(name: str) -> Iterator[dict[str, str]]:
    """The settings of a Redis feed cache under a key prefix of this run's own, on the Redis of the
    services; the prefix's keys are deleted afterwards."""
    redis_url, prefix = service("FEEDCORE_REDIS_URL"), f"{name}:"
    try:
        yield {"FEEDCORE_REDIS_URL": redis_url, "FEEDCORE_REDIS_PREFIX": prefix}
    finally:
        with redis.Redis.from_url(redis_url) as client:
            for key in client.scan_iter(match=f"{prefix}*", count=1_000):
                client.delete(key)

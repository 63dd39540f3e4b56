"""Home-feed read benchmark on the embedded server: wrk, 20-post pages, several runs, medians.

Usage: python bench/read_embedded.py [--connections 32] [--runs 5] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from entrypoints.auth import Tokens, token_secret
from entrypoints.settings import Settings
from feedcore import UserId

ROOT = Path(__file__).parents[1]
READER = "bench-reader"
AUTHORS = ("bench-author-1", "bench-author-2")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_up(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("feedcore serve did not come up")


def seed(base: str, tokens: Tokens, posts: int) -> dict[str, str]:
    def auth(user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens.issue(UserId(user))}"}

    with httpx.Client(base_url=base, timeout=10) as client:
        for author in AUTHORS:
            client.post("/follow", json={"followee_id": author}, headers=auth(READER)).raise_for_status()
        for n in range(posts):
            body = {"content": f"post {n}: " + "lorem ipsum " * 10}
            client.post("/posts", json=body, headers=auth(AUTHORS[n % 2])).raise_for_status()
        for _ in range(200):
            page = client.get(f"/feeds/{READER}?limit=20", headers=auth(READER)).json()
            if len(page["items"]) == 20:
                return auth(READER)
            time.sleep(0.05)
    raise SystemExit("the feed never filled")


def wrk(url: str, header: str, connections: int, seconds: int) -> tuple[float, float, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-H", header, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"non-2xx responses:\n{out}")

    def millis(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return rate, millis("50%"), millis("99%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as scratch:
        env = {
            # The embedded server: whatever services this shell points at are not for it.
            **{
                k: v
                for k, v in os.environ.items()
                if k not in {"FEEDCORE_DATABASE_URL", "FEEDCORE_REDIS_URL", "FEEDCORE_KAFKA_BOOTSTRAP"}
            },
            "FEEDCORE_PORT": str(port),
            "FEEDCORE_RATE_LIMIT_PER_SECOND": "0",
            "FEEDCORE_DEV_SECRET_FILE": f"{scratch}/secret",
            "FEEDCORE_LOG_LEVEL": "WARNING",
        }
        server = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "feedcore"), "serve"], env=env, stdout=subprocess.DEVNULL
        )
        try:
            wait_until_up(base, server)
            settings = Settings.from_env({"FEEDCORE_DEV_SECRET_FILE": f"{scratch}/secret"})
            headers = seed(base, Tokens(token_secret(settings, create=False)), posts=60)
            header = f"Authorization: {headers['Authorization']}"
            url = f"{base}/feeds/{READER}?limit=20"
            runs = [wrk(url, header, args.connections, args.seconds) for _ in range(args.runs)]
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=15)
    print(f"GET /feeds/{{me}}, 20 hydrated posts, embedded server (granian, 1 worker), wrk -t2 -c{args.connections}")
    for rate, p50, p99 in runs:
        print(f"  run: {rate:9.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")
    rates, p50s, p99s = zip(*runs, strict=True)
    print(
        f"median of {len(runs)}: {statistics.median(rates):.0f} req/s, p50 {statistics.median(p50s):.2f} ms, "
        f"p99 {statistics.median(p99s):.2f} ms"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()

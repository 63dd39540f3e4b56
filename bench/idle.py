"""What feedcore costs with no traffic: CPU of each process over --seconds, from /proc.

`feedcore serve --workers 2` (API and outbox relay) and `feedcore process` run on PostgreSQL,
Kafka and Redis, in a database, topics and Redis prefix of their own. After --settle seconds, the
CPU time (user + system) each process uses over --seconds is reported as a share of one core.

Usage: python -m bench.idle [--seconds 30] [--settle 10] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from bench.harness import backbone_settings, feedcore, feedcore_server, scratch_cache, scratch_database

SECRET = "bench-" + "i" * 40
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--settle", type=float, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with scratch_database() as (name, url), scratch_cache(name) as cache:
        settings = {**backbone_settings(name, url, SECRET), **cache}
        with feedcore("process", settings) as processor, feedcore_server(settings, workers=args.workers) as base:
            time.sleep(args.settle)
            shares = idle_cpu(deployment(processor.pid, base), args.seconds)
    print(f"idle CPU over {args.seconds:.0f} s, after {args.settle:.0f} s to settle (share of one core):")
    for label, share in shares.items():
        print(f"  {label:24} {share:5.2f} %")


def deployment(processor: int, base: str) -> dict[str, int]:
    """The processes of a deployment by label: the processor, and the server at ``base`` with its workers."""
    server = _server_pid(base)
    processes = {"processor": processor, "server (granian main)": server}
    return processes | {f"server worker {n}": pid for n, pid in enumerate(children(server), start=1)}


def idle_cpu(processes: dict[str, int], seconds: float) -> dict[str, float]:
    """Each process's CPU over the next ``seconds``, in % of one core."""
    before = {label: cpu_seconds(pid) for label, pid in processes.items()}
    time.sleep(seconds)
    return {label: 100 * (cpu_seconds(pid) - before[label]) / seconds for label, pid in processes.items()}


def _server_pid(base: str) -> int:
    """The `feedcore serve` process listening at ``base``: its port is in its environment."""
    port = base.rsplit(":", 1)[1]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
            environment = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in command and f"FEEDCORE_PORT={port}".encode() in environment:
            return int(entry.name)
    raise SystemExit(f"no feedcore serve process on port {port}")


if __name__ == "__main__":
    main()

"""Where a run's CPU goes: the CPU time of each kind of process on the machine over a stretch of
time, read from /proc, so that a benchmark can say what a request costs each of them."""

from __future__ import annotations

import os
import re
import resource
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")

#: The kinds of process, from their command lines: the first that matches names it.
KINDS: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("feedcore serve", lambda line: "feedcore serve" in line),
    ("feedcore process", lambda line: "feedcore process" in line),
    ("ceiling server", lambda line: "granian" in line and "_ceiling:app" in line),
    ("postgres", lambda line: line.startswith("postgres")),
    ("kafka", lambda line: "kafka.Kafka" in line),
    ("redis", lambda line: "redis-server" in line),
    ("kernel threads", lambda line: line == "[kernel]"),
)


def _socket_owners() -> dict[int, int]:
    """The process holding each local TCP port open on 127.0.0.1, by the socket inodes in its fds."""
    inodes: dict[int, int] = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        inodes[int(fields[9])] = int(fields[1].rsplit(":", 1)[1], 16)
    owners: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            links = [str(fd.readlink()) for fd in (entry / "fd").iterdir()]
        except OSError:
            continue
        for link in links:
            if link.startswith("socket:[") and (port := inodes.get(int(link[8:-1]))) is not None:
                owners[port] = int(entry.name)
    return owners


#: A PostgreSQL backend says in its command line which client port it serves.
_BACKEND_CLIENT = re.compile(r"^postgres: \S+ \S+ 127\.0\.0\.1\((\d+)\)")


def _by_process() -> dict[int, tuple[str, float]]:
    """Each process's kind ("other" when none) and CPU seconds so far. A PostgreSQL backend is
    named for its client's kind ("postgres for feedcore serve"); PostgreSQL's own background
    processes are "postgres (background)"."""
    lines: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # it exited meanwhile
            continue
        if not line:  # a kernel thread: the network's and the disks' work, among others
            line = "[kernel]"
        if line.startswith("/"):  # the interpreter's path: what it runs follows it
            line = " ".join(part.rsplit("/", 1)[-1] if index < 2 else part for index, part in enumerate(line.split()))
        lines[int(entry.name)] = (line, (int(fields[11]) + int(fields[12])) / _TICKS)
    kinds = {pid: next((name for name, matches in KINDS if matches(line)), "other") for pid, (line, _) in lines.items()}
    owners = _socket_owners()
    found: dict[int, tuple[str, float]] = {}
    for pid, (line, seconds) in lines.items():
        kind = kinds[pid]
        if kind == "postgres":
            client = _BACKEND_CLIENT.match(line)
            owner = owners.get(int(client.group(1))) if client else None
            kind = f"postgres for {kinds.get(owner, 'other')}" if owner else "postgres (background)"
        found[pid] = (kind, seconds)
    return found


def _machine() -> tuple[float, float]:
    """CPU seconds the whole machine spent busy so far (user, nice, system, irq, softirq, steal),
    and those of them in interrupts (irq, softirq: loopback TCP's receiving side, for one)."""
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:3]) + sum(values[5:8])) / _TICKS, sum(values[5:7]) / _TICKS


def _children() -> float:
    """CPU seconds of this process's children that ended and were waited for, so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Split:
    """CPU seconds by kind of process over a stretch of time, and the machine's."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.machine = 0.0

    def per(self, requests: float) -> dict[str, float]:
        """Microseconds of each kind, and of the machine, per request."""
        return {kind: 1e6 * seconds / requests for kind, seconds in self.seconds.items()} | {
            "machine": 1e6 * self.machine / requests
        }


@contextmanager
def measured() -> Iterator[Split]:
    """The CPU split of what runs inside the ``with``, filled in when it ends. A process started
    meanwhile counts for all its time; one gone meanwhile for none, unless it was this process's
    child and waited for (the load generator), whose whole time counts as "load generator"."""
    split = Split()
    before, (machine, interrupts), children = _by_process(), _machine(), _children()
    yield split
    after = _by_process()
    machine_after, interrupts_after = _machine()
    split.machine = machine_after - machine
    totals: dict[str, float] = defaultdict(float)
    for pid, (kind, seconds) in after.items():
        totals[kind] += seconds - (before[pid][1] if pid in before else 0.0)
    totals["interrupts"] = interrupts_after - interrupts
    totals["load generator"] = _children() - children
    split.seconds = dict(totals)


def report(title: str, splits: Sequence[dict[str, float]]) -> None:
    """Medians, over runs, of each kind's microseconds per request."""
    kinds = [*sorted({kind for split in splits for kind in split} - {"machine"}), "machine"]
    cells = []
    for kind in kinds:
        values = [split.get(kind, 0.0) for split in splits]
        if max(values) >= 1:
            cells.append(f"{kind} {statistics.median(values):.0f}")
    print(f"{title}, CPU per request (us, median of {len(splits)}): " + ", ".join(cells))

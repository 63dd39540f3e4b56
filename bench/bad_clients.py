"""Bad clients beside a good one: does the HTTP server stay responsive, bounded in memory, and firm?

At the same time, against a running `feedcore serve`:

- ``--idle`` TCP connections (2,000 by default) opened and held without sending a byte;
- a slow-loris: request headers sent a few bytes at a time, never finished;
- a request whose headers total 1 MiB;
- a ``POST /posts`` with a valid token whose small JSON body (Content-Length set) comes at 1 byte/s;
- and a good client reading a feed ten times a second, each read on a new connection (a client
  that arrives now must get in, not only one that connected before the bad ones).

Each bad client should get a 4xx or be dropped by the server within the run; the good reads
should each take at most a second; the server processes' RSS should stay bounded. The idle
connections may be dropped after an idle timeout or kept: both are reported.

`bad_clients` is the entry point for other scripts (the chaos soak); run as a module it drives
a server already running (``--url``, ``--token``, ``--user``, ``--pid`` of `feedcore serve`), or
else an embedded `feedcore serve` of its own (one worker: embedded mode allows no more).

Usage: python -m bench.bad_clients [--url URL --token TOKEN --user USER --pid PID]
                                   [--idle 2000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import httpx

from bench.harness import feedcore, free_port
from feedcore import UserId
from feedcore.entrypoints.auth import Tokens

#: What a run is judged against.
MAX_READ_SECONDS: Final = 1.0
MAX_RSS_GROWTH_MB: Final = 50.0
MAX_WORKER_RSS_MB: Final = 150.0
#: A good read still unanswered after this is given up, and counts as failed.
READ_TIMEOUT_SECONDS: Final = 5.0
#: Idle connections opened at once: more would overflow the listen backlog with SYNs, which the
#: client would resend only after a second or more, and the run would measure the client.
_CONNECTING_AT_ONCE: Final = 100
_CONNECT_TIMEOUT_SECONDS: Final = 10.0
#: How long after the bad clients leave the server's memory is sampled again.
_SETTLE_SECONDS: Final = 2.0
_SAMPLE_EVERY_SECONDS: Final = 0.25
_MB: Final = 1024 * 1024


@dataclass
class Outcome:
    """What the server did to one bad client, ``after`` seconds from its connecting."""

    name: str
    status: int | None = None
    #: How the server ended the connection without an answer: ``closed`` or ``reset``.
    dropped: str | None = None
    after: float | None = None

    @property
    def ended(self) -> bool:
        return self.status is not None or self.dropped is not None

    def __str__(self) -> str:
        if self.status is not None:
            return f"{self.name}: HTTP {self.status} after {self.after:.1f} s"
        if self.dropped is not None:
            return f"{self.name}: dropped ({self.dropped}) after {self.after:.1f} s"
        return f"{self.name}: still open at the end of the run"


@dataclass
class IdleConnections:
    wanted: int
    opened: int = 0
    #: Connections the client could not open (refused, or no handshake within 10 s).
    failed: int = 0
    #: Seconds after connecting at which the server closed each connection it closed.
    dropped_after: list[float] = field(default_factory=list)

    @property
    def open_at_end(self) -> int:
        return self.opened - len(self.dropped_after)

    def __str__(self) -> str:
        text = f"idle connections: {self.opened} of {self.wanted} opened"
        if self.failed:
            text += f", {self.failed} could not connect"
        if self.dropped_after:
            drops = sorted(self.dropped_after)
            text += f", {len(drops)} dropped by the server after {drops[0]:.1f}-{drops[-1]:.1f} s"
        return f"{text}, {self.open_at_end} still open at the end"


@dataclass
class Memory:
    """A server process's resident set, in bytes: before the bad clients, at most during, after."""

    pid: int
    role: str
    before: int
    peak: int
    after: int | None = None

    def __str__(self) -> str:
        after = "gone" if self.after is None else f"{self.after / _MB:.1f}"
        return (
            f"{self.role} {self.pid} RSS {self.before / _MB:.1f} MB before, "
            f"{self.peak / _MB:.1f} MB at peak, {after} MB after"
        )


@dataclass
class BadClientReport:
    base_url: str
    seconds: float
    idle: IdleConnections
    bad: list[Outcome]
    #: Seconds each good read took, failed ones included (a timeout counts as its whole wait).
    reads: list[float] = field(default_factory=list)
    read_failures: list[str] = field(default_factory=list)
    memory: dict[int, Memory] = field(default_factory=dict)
    #: Server processes seen during the run but not before it (a worker started again).
    new_pids: set[int] = field(default_factory=set)

    def problems(self) -> list[str]:
        """What failed the criteria; empty when the run passed."""
        found = []
        if not self.reads:
            found.append("no good read was made")
        if self.read_failures:
            found.append(f"{len(self.read_failures)} good read(s) failed: {', '.join(self.read_failures[:5])}")
        if self.reads and max(self.reads) > MAX_READ_SECONDS:
            found.append(f"the slowest good read took {max(self.reads):.2f} s, above {MAX_READ_SECONDS:.0f} s")
        for outcome in self.bad:
            if not outcome.ended:
                found.append(f"{outcome.name}: neither answered nor dropped within {self.seconds:.0f} s")
            elif outcome.status is not None and not 400 <= outcome.status < 500:
                found.append(f"{outcome.name}: answered HTTP {outcome.status}, not a 4xx")
        for memory in self.memory.values():
            growth = memory.peak - memory.before
            if growth > MAX_RSS_GROWTH_MB * _MB:
                found.append(f"{memory.role} {memory.pid} grew by {growth / _MB:.0f} MB, above {MAX_RSS_GROWTH_MB:.0f}")
            if memory.role == "worker" and memory.peak > MAX_WORKER_RSS_MB * _MB:
                found.append(
                    f"worker {memory.pid} reached {memory.peak / _MB:.0f} MB, above {MAX_WORKER_RSS_MB:.0f} MB"
                )
        if self.new_pids:
            found.append(f"server process(es) {sorted(self.new_pids)} appeared during the run: a worker restarted?")
        return found

    def lines(self) -> list[str]:
        lines = [f"bad clients against {self.base_url} for {self.seconds:.0f} s"]
        if self.reads:
            ordered = sorted(self.reads)
            p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
            lines.append(
                f"good reads: {len(ordered)} ({len(self.read_failures)} failed), latency median "
                f"{1000 * statistics.median(ordered):.1f} ms, p99 {1000 * p99:.1f} ms, max {1000 * ordered[-1]:.1f} ms"
            )
        lines.append(str(self.idle))
        lines += [str(outcome) for outcome in self.bad]
        lines += [str(memory) for memory in self.memory.values()]
        problems = self.problems()
        lines.append("problems: none" if not problems else "problems:")
        lines += [f"  - {problem}" for problem in problems]
        return lines

    def __str__(self) -> str:
        return "\n".join(self.lines())


async def bad_clients(
    base_url: str,
    token: str,
    feed_user: str,
    server_pids: Callable[[], list[int]],
    *,
    idle_connections: int = 2000,
    seconds: float = 20,
    reads_per_second: float = 10,
) -> BadClientReport:
    """Run the bad clients and the good one for ``seconds`` against ``base_url``; ``token`` is a
    bearer token of ``feed_user``, and ``server_pids()`` the server's processes (see
    `granian_processes`), whose memory is sampled."""
    _allow_open_files(idle_connections + 200)
    address = urlsplit(base_url)
    host, port = address.hostname or "127.0.0.1", address.port or 80
    report = BadClientReport(
        base_url=base_url,
        seconds=seconds,
        idle=IdleConnections(wanted=idle_connections),
        bad=[Outcome("slow-loris"), Outcome("1 MiB of headers"), Outcome("body at 1 byte/s")],
    )
    slow_loris, big_headers, slow_body = report.bad
    for pid, rss, role in _sample(server_pids()):
        report.memory[pid] = Memory(pid, role, before=rss, peak=rss)
    stop = asyncio.Event()
    connecting = asyncio.Semaphore(_CONNECTING_AT_ONCE)
    request = f"HTTP/1.1\r\nHost: {address.netloc}\r\n".encode()
    body = json.dumps({"content": "a post whose body comes one byte a second"}).encode()
    bad = [_idle(host, port, report.idle, connecting) for _ in range(idle_connections)] + [
        _bad_client(host, port, slow_loris, b"GET /healthz " + request, _loris_bytes(), every=0.5),
        _bad_client(host, port, big_headers, b"GET /healthz " + request + _headers_of(1024 * 1024), ()),
        _bad_client(
            host,
            port,
            slow_body,
            b"POST /posts "
            + request
            + f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode(),
            (body[index : index + 1] for index in range(len(body))),
            every=1.0,
        ),
    ]
    tasks = [asyncio.create_task(client) for client in bad]
    sampling = asyncio.create_task(_sample_memory(report, server_pids, stop))
    await _good_reads(f"{base_url}/feeds/{feed_user}?limit=20", token, report, reads_per_second, seconds)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, sampling, return_exceptions=True)
    await asyncio.sleep(_SETTLE_SECONDS)
    for pid, rss, _ in _sample(server_pids()):
        if pid in report.memory:
            report.memory[pid].after = rss
    return report


def granian_processes(main: int) -> list[int]:
    """A granian server's processes: its main process ``main`` and the workers it started."""
    found = [main]
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{main}/task").iterdir():
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


async def _good_reads(url: str, token: str, report: BadClientReport, per_second: float, seconds: float) -> None:
    """Start a read every 1/``per_second`` s for ``seconds``, each on a new connection, whatever
    the earlier ones are doing; then wait for the last ones."""
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=READ_TIMEOUT_SECONDS, headers=headers) as client:

        async def read() -> None:
            started = time.monotonic()
            try:
                response = await client.get(url)
            except httpx.HTTPError as error:
                report.read_failures.append(f"{type(error).__name__} after {time.monotonic() - started:.1f} s")
            else:
                if response.status_code != 200:
                    report.read_failures.append(f"HTTP {response.status_code}")
            report.reads.append(time.monotonic() - started)

        reads = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            reads.append(asyncio.create_task(read()))
            await asyncio.sleep(1 / per_second)
        await asyncio.gather(*reads)


async def _idle(host: str, port: int, idle: IdleConnections, connecting: asyncio.Semaphore) -> None:
    """Open a connection and send nothing; note when (whether) the server closes it."""
    async with connecting:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), _CONNECT_TIMEOUT_SECONDS)
        except (OSError, TimeoutError):
            idle.failed += 1
            return
    started = time.monotonic()
    idle.opened += 1
    try:
        with contextlib.suppress(ConnectionError):
            while await reader.read(4096):
                pass
        idle.dropped_after.append(time.monotonic() - started)
    finally:
        writer.close()


async def _bad_client(
    host: str, port: int, outcome: Outcome, head: bytes, trickle: Iterable[bytes], *, every: float = 1.0
) -> None:
    """Send ``head`` at once, then each piece of ``trickle`` ``every`` seconds, while waiting for
    the server to answer or to drop the connection; ``outcome`` says which, and when."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(host, port)
    sending = asyncio.create_task(_send(writer, head, trickle, every))
    try:
        try:
            line = await reader.readline()
        except ConnectionError:
            outcome.dropped = "reset"
        else:
            if line.startswith(b"HTTP/"):
                outcome.status = int(line.split()[1])
            else:
                outcome.dropped = "closed" if not line else f"answered {line[:40]!r}"
        outcome.after = time.monotonic() - started
    finally:
        sending.cancel()
        writer.close()


async def _send(writer: asyncio.StreamWriter, head: bytes, trickle: Iterable[bytes], every: float) -> None:
    # The server may stop reading, or close: what it did is the reader's to see.
    with contextlib.suppress(ConnectionError):
        writer.write(head)
        await writer.drain()
        for piece in trickle:
            await asyncio.sleep(every)
            writer.write(piece)
            await writer.drain()


def _loris_bytes() -> Iterator[bytes]:
    """Header lines without end, four bytes at a time."""
    for number in itertools.count():
        line = f"X-Loris-{number}: {number}\r\n".encode()
        yield from (line[index : index + 4] for index in range(0, len(line), 4))


def _headers_of(total: int) -> bytes:
    """Sixteen header lines of equal length, ``total`` bytes in all with the blank line ending them."""
    size = (total - 2) // 16
    lines = [f"X-Padding-{number:02}: ".encode().ljust(size - 2, b"a") + b"\r\n" for number in range(16)]
    return b"".join(lines).ljust(total - 2, b"a") + b"\r\n"


async def _sample_memory(report: BadClientReport, server_pids: Callable[[], list[int]], stop: asyncio.Event) -> None:
    while not stop.is_set():
        for pid, rss, role in _sample(server_pids()):
            memory = report.memory.get(pid)
            if memory is None:
                report.memory[pid] = Memory(pid, role, before=rss, peak=rss)
                report.new_pids.add(pid)
            else:
                memory.peak = max(memory.peak, rss)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), _SAMPLE_EVERY_SECONDS)


def _sample(pids: list[int]) -> list[tuple[int, int, str]]:
    """(pid, RSS in bytes, role) of each process still alive; a worker is a child of another."""
    found = []
    for pid in pids:
        status = _status(pid)
        if "VmRSS" in status:
            role = "worker" if int(status.get("PPid", "0")) in pids else "main"
            found.append((pid, int(status["VmRSS"].split()[0]) * 1024, role))
    return found


def _status(pid: int) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _allow_open_files(needed: int) -> None:
    """Raise this process's soft limit of open files towards its hard limit if ``needed`` is above it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@contextmanager
def embedded_server(secret: str) -> Iterator[tuple[str, int]]:
    """An embedded `feedcore serve` (one worker) on a free port: its base URL and process id."""
    port = free_port()
    settings = {"FEEDCORE_JWT_SECRET": secret, "FEEDCORE_PORT": str(port), "FEEDCORE_RATE_LIMIT_PER_SECOND": "0"}
    with feedcore("serve", settings) as server:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("feedcore serve did not become ready")
            time.sleep(0.1)
        yield base, server.pid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running feedcore; without it, an embedded one is started")
    parser.add_argument("--token", help="a bearer token of --user (with --url)")
    parser.add_argument("--user", default="ana", help="whose feed the good client reads")
    parser.add_argument("--pid", type=int, help="the running `feedcore serve` process (with --url)")
    parser.add_argument("--idle", type=int, default=2000, help="idle connections")
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    if args.url:
        if not (args.token and args.pid):
            parser.error("--url needs --token and --pid")
        report = asyncio.run(
            bad_clients(
                args.url,
                args.token,
                args.user,
                lambda: granian_processes(args.pid),
                idle_connections=args.idle,
                seconds=args.seconds,
            )
        )
    else:
        secret = "bench-" + "b" * 40
        with embedded_server(secret) as (base, pid):
            token = Tokens(secret).issue(UserId(args.user))
            report = asyncio.run(
                bad_clients(
                    base,
                    token,
                    args.user,
                    partial(granian_processes, pid),
                    idle_connections=args.idle,
                    seconds=args.seconds,
                )
            )
    print(report)
    sys.exit(1 if report.problems() else 0)


if __name__ == "__main__":
    main()

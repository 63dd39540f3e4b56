"""Bad clients (idle connections, a slow-loris, 1 MiB of headers, a body at 1 byte/s) against
`feedcore serve` with its default settings: each is answered 4xx or dropped within the run, while
a good client's reads stay answered and the server's memory bounded.

What is judged is how granian and the app are configured, not the stack behind them: an embedded
server with one worker shows it. The run is a short form of `python -m bench.bad_clients`.
"""

from __future__ import annotations

import asyncio

from bench.bad_clients import bad_clients, embedded_server, granian_processes

from feedcore import UserId
from feedcore.entrypoints.auth import Tokens
from feedcore.entrypoints.settings import Settings

SECRET = "bad-clients-" + "s" * 40
#: More than granian's default of 1,024 connections a server holds, idle or not.
IDLE_CONNECTIONS = 1_100


def test_bad_clients_are_answered_or_dropped_while_good_reads_go_on() -> None:
    defaults = Settings()
    # Long enough for the slowest of them to meet its timeout, with time to spare.
    seconds = max(defaults.header_timeout_seconds, defaults.body_timeout_seconds) + 2
    with embedded_server(SECRET) as (base_url, pid):
        report = asyncio.run(
            bad_clients(
                base_url,
                Tokens(SECRET).issue(UserId("ana")),
                "ana",
                lambda: granian_processes(pid),
                idle_connections=IDLE_CONNECTIONS,
                seconds=seconds,
            )
        )
    assert report.problems() == [], str(report)
    # Every one was opened, then closed by the server's idle timeout: none holds a connection for ever.
    assert report.idle.opened == IDLE_CONNECTIONS, str(report)
    assert report.idle.open_at_end == 0, str(report)

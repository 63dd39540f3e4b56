"""Durable post writes: POST /posts on the PostgreSQL-backed server, wrk, several runs, medians.

Each request commits the post, its outbox row and its Idempotency-Key in one transaction (fsync
on); 100 authors write in turn, every request with a key of its own. The in-process fan-out worker
runs beside the API, as it does in this mode. Needs FEEDCORE_DATABASE_URL (make bench starts the
services); works in a database of its own, made and dropped here.

With --workers above 1 the servers relay to Kafka instead (several workers need the backbone), and
each worker's relay publishes what it stored.

Usage: python -m bench.write_postgres [--connections 32] [--runs 5] [--seconds 10] [--workers 1]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import psycopg

from bench.harness import backbone_settings, feedcore_server, report, scratch_database, wrk
from entrypoints.auth import Tokens
from feedcore import UserId

SECRET = "bench-" + "w" * 40
AUTHORS = 100

LUA = """
tokens = {%(tokens)s}
counter = 0
thread_id = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end
function request()
  counter = counter + 1
  local headers = {}
  headers["Authorization"] = "Bearer " .. tokens[(counter %% #tokens) + 1]
  headers["Content-Type"] = "application/json"
  headers["Idempotency-Key"] = "%(run)s-" .. thread_id .. "-" .. counter
  return wrk.format("POST", "/posts", headers, '{"content":"a durable benchmark post"}')
end
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    tokens = Tokens(SECRET)
    quoted = ", ".join(f'"{tokens.issue(UserId(f"writer-{n}"))}"' for n in range(AUTHORS))
    with scratch_database() as (name, url), tempfile.TemporaryDirectory() as scratch:
        with psycopg.connect(url) as connection:
            fsync = connection.execute("SHOW fsync").fetchone()
        settings = {
            "FEEDCORE_DATABASE_URL": url,
            "FEEDCORE_MIGRATE_ON_START": "true",
            "FEEDCORE_JWT_SECRET": SECRET,
            "FEEDCORE_RATE_LIMIT_PER_SECOND": "0",
            "FEEDCORE_DATABASE_POOL_MAX": "16",
            "FEEDCORE_DEV_SECRET_FILE": f"{scratch}/unused",
            **(backbone_settings(name, url, SECRET) if args.workers > 1 else {}),
        }
        with feedcore_server(settings, workers=args.workers) as base:
            runs = []
            for run in range(args.runs):
                script = Path(scratch) / f"post-{run}.lua"
                script.write_text(LUA % {"tokens": quoted, "run": f"r{run}"})
                runs.append(
                    wrk(
                        f"{base}/posts",
                        connections=args.connections,
                        seconds=args.seconds,
                        extra=["-s", str(script)],
                    )
                )
    report(
        f"POST /posts with Idempotency-Key, PostgreSQL (fsync={fsync[0] if fsync else '?'}), "
        f"granian {args.workers} worker(s){', relaying to Kafka' if args.workers > 1 else ''}, "
        f"wrk -t2 -c{args.connections}",
        runs,
    )


if __name__ == "__main__":
    main()

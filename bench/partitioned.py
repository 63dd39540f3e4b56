"""feed_entries as one table against 16 hash partitions by user_id, on this machine's PostgreSQL.

For each layout, in a database of its own (made and dropped here), with 2,000 users following 20
each and 200,000 posts:

- fan-out: the processor's own statement for 340 posts at a time (21 feed entries a post), 60
  batches, each committed; the backend's CPU per post from /proc, the first 10 batches not counted;
- a feed page: FEEDCORE's page query for 200 users, EXPLAIN ANALYZE, and the plan it runs;
- a deletion's holder read (which feeds hold a post), for 200 posts;
- VACUUM of the table after a tenth of its entries are deleted.

The layouts alternate, each measured --rounds times. Needs FEEDCORE_DATABASE_URL (make
bench-partitioned starts the services); PostgreSQL must run on this machine (its backend's CPU is
read from /proc).

Usage: python -m bench.partitioned [--rounds 2] [--partitions 16]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.harness import scratch_database
from bench.write import FOLLOWING, follow_in_a_ring

# The processor's own fan-out statement and the feed page, as the service runs them.
from feedcore.adapters.postgres.feeds import _ADD_TO_AUDIENCES, FEED_PAGE

MIGRATIONS = Path(__file__).resolve().parents[1] / "src" / "adapters" / "postgres" / "migrations"
USERS = 2_000
BATCH = 340
BATCHES = 60
WARM_UP = 10
BY_POST = "CREATE INDEX feed_entries_by_post ON feed_entries (post_id)"


def layout(partitions: int) -> str:
    """feed_entries made again, as one table (0) or hash-partitioned by user_id: its primary key
    and its index by post are then one per partition."""
    columns = (
        'user_id text COLLATE "C" NOT NULL, post_id bigint NOT NULL, author_id text COLLATE "C" NOT NULL, '
        "PRIMARY KEY (user_id, post_id)"
    )
    if not partitions:
        return f"DROP TABLE feed_entries; CREATE TABLE feed_entries ({columns}); {BY_POST}"
    return (
        f"DROP TABLE feed_entries; CREATE TABLE feed_entries ({columns}) PARTITION BY HASH (user_id); "
        + "".join(
            f"CREATE TABLE feed_entries_{n} PARTITION OF feed_entries FOR VALUES WITH (MODULUS {partitions}, "
            f"REMAINDER {n}); "
            for n in range(partitions)
        )
        + BY_POST
    )


def prepare(connection: psycopg.Connection[Any], url: str, partitions: int) -> None:
    for migration in sorted(MIGRATIONS.glob("*.sql")):
        connection.execute(migration.read_text().encode())
    connection.execute(layout(partitions).encode())
    follow_in_a_ring(url, users=USERS)
    connection.execute(
        "INSERT INTO posts SELECT g, 'user-' || (g %% %s), 'content ' || g, now(), true "
        "FROM generate_series(1, 200000) g",
        (USERS,),
    )
    connection.execute("VACUUM ANALYZE")


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


def fan_out(connection: psycopg.Connection[Any]) -> float:
    """The backend's CPU seconds a post, over the batches after the warm-up."""
    statement = _ADD_TO_AUDIENCES.format(skip_existing="")
    spent = []
    for batch in range(BATCHES):
        posts = list(range(1 + batch * BATCH, 1 + (batch + 1) * BATCH))
        authors = [f"user-{post % USERS}" for post in posts]
        before = backend_cpu(connection.info.backend_pid)
        with connection.transaction():
            connection.execute(statement, {"posts": posts, "authors": authors, "limit": 1000}, prepare=False)
        spent.append(backend_cpu(connection.info.backend_pid) - before)
    return sum(spent[WARM_UP:]) / ((BATCHES - WARM_UP) * BATCH)


def explained(connection: psycopg.Connection[Any], query: str, parameters: tuple[Any, ...]) -> dict[str, Any]:
    row = connection.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {query}".encode(), parameters).fetchone()
    if row is None:
        raise SystemExit(f"EXPLAIN returned nothing for {query}")
    plan: dict[str, Any] = row[0][0]
    return plan


def shape(plan: dict[str, Any]) -> str:
    name = plan["Node Type"] + (f" {plan['Scan Direction']}" if "Scan Direction" in plan else "")
    name += f" on {plan['Relation Name']}" if "Relation Name" in plan else ""
    return " > ".join([name, *(shape(child) for child in plan.get("Plans", []))])


def measure(partitions: int) -> str:
    with scratch_database() as (_, url), psycopg.connect(url, autocommit=True) as connection:
        prepare(connection, url, partitions)
        per_post = fan_out(connection)
        connection.execute("ANALYZE feed_entries")
        pages = [explained(connection, FEED_PAGE, (f"user-{(n * 7) % USERS}", 2**62, 0, 20)) for n in range(200)]
        holders = [
            explained(
                connection, "SELECT user_id FROM feed_entries WHERE post_id = %s ORDER BY user_id", (1_000 + n * 37,)
            )
            for n in range(200)
        ]
        connection.execute("DELETE FROM feed_entries WHERE post_id %% 10 = 0", ())
        started = time.perf_counter()
        connection.execute("VACUUM feed_entries")
        vacuum = time.perf_counter() - started
    layout = f"{partitions} hash partitions" if partitions else "one table"
    return (
        f"{layout:18s} fan-out {per_post * 1e6:6.1f} us of backend CPU a post "
        f"({per_post * 1e6 / (FOLLOWING + 1):.2f} a feed entry); "
        f"page {statistics.median(plan['Execution Time'] for plan in pages) * 1000:5.1f} us; "
        f"holder read {statistics.median(plan['Execution Time'] for plan in holders) * 1000:6.1f} us; "
        f"VACUUM after deleting a tenth {vacuum:.2f} s\n"
        f"{'':18s} page plan: {shape(pages[0]['Plan'])}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=16)
    args = parser.parse_args()
    for _ in range(args.rounds):
        for partitions in (0, args.partitions):
            print(measure(partitions), flush=True)


if __name__ == "__main__":
    main()

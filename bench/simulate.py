"""What a power-law follower graph costs feedcore at scale, for several celebrity thresholds.

The graph: --users accounts whose follower counts fall with their rank as a power law (Zipf), the
largest with --top followers, and the exponent chosen so that users follow --following accounts on
average. Ranks are taken in a few thousand logarithmic bins (exact sums per bin), so 100 million
accounts take a second. Each bin goes through the core's own policy (``Policies.fans_out``):

- **writes**: a post by an account that fans out is written into its author's feed and each
  follower's; one above the threshold into its author's only. Posts come from accounts at random
  (each account as likely to post), --posts-per-day of them, and --peak times that at the peak;
- **reads**: a reader follows accounts in proportion to their followers, so the celebrities a read
  merges are the reader's share of follows that go to accounts above the threshold;
- **memory**: the feed cache keeps ``cache_window`` entries of each active reader's feed.

Per-core costs are this project's benchmarks on a 2-core machine, named in docs/SCALING.md:
PostgreSQL and processor CPU per feed entry written (bench.partitioned, bench.processors), a cached
read (bench.read_redis), what each merged celebrity adds (bench.merge), the WAL a feed entry writes
and a cached entry's bytes.
They are parameters: measure your own machines and pass theirs.

Usage: python -m bench.simulate [--thresholds 10000,100000,1000000] [--users 100000000] ...
"""

from __future__ import annotations

import argparse
import itertools
import math
from dataclasses import dataclass

from feedcore import Policies

SECONDS_A_DAY = 86_400


@dataclass(frozen=True, kw_only=True)
class Graph:
    """Accounts by rank, in bins: (accounts in the bin, followers of each, on average)."""

    bins: list[tuple[float, float]]
    exponent: float

    @classmethod
    def zipf(cls, *, users: int, top: int, following: float, bins: int = 4_000) -> Graph:
        """Follower count top * rank ** -exponent, the exponent making the follows add up."""
        wanted = users * following
        low, high = 0.01, 3.0
        for _ in range(100):  # bisection: the sum falls as the exponent grows
            middle = (low + high) / 2
            if cls._edges(users, top, middle) > wanted:
                low = middle
            else:
                high = middle
        exponent = (low + high) / 2
        edges = [math.exp(math.log(users + 1) * step / bins) for step in range(bins + 1)]
        edges[0] = 1.0
        binned = []
        for start, end in itertools.pairwise(edges):
            accounts = end - start
            if accounts <= 0:
                continue
            binned.append((accounts, top * _integral(start, end, exponent) / accounts))
        return cls(bins=binned, exponent=exponent)

    @staticmethod
    def _edges(users: int, top: int, exponent: float) -> float:
        return top * _integral(1.0, users + 1.0, exponent)

    def above(self, followers: float) -> int:
        return round(sum(accounts for accounts, count in self.bins if count > followers))


def _integral(start: float, end: float, exponent: float) -> float:
    """The integral of rank ** -exponent from start to end: the follower sum of those ranks."""
    if abs(exponent - 1.0) < 1e-9:
        return math.log(end / start)
    return float((end ** (1 - exponent) - start ** (1 - exponent)) / (1 - exponent))


@dataclass(frozen=True, kw_only=True)
class Costs:
    """CPU a unit of work costs, in microseconds of one core."""

    database_per_entry: float
    processor_per_entry: float
    read: float
    merge_per_celebrity: float
    #: Bytes of the feed cache a cached entry takes: 120, Redis's MEMORY USAGE of an 800-entry
    #: window of 19-digit ids (a skiplist), divided by 800.
    cache_bytes_per_entry: float
    #: WAL PostgreSQL writes per feed entry (its row and two index entries).
    wal_bytes_per_entry: float


def simulate(
    graph: Graph, policies: Policies, *, users: int, posts_a_day: float, peak: float, reads: float, costs: Costs
) -> dict[str, float]:
    users_total = sum(accounts for accounts, _ in graph.bins)
    fanned = sum(accounts * count for accounts, count in graph.bins if policies.fans_out(math.floor(count)))
    merged = sum(accounts * count for accounts, count in graph.bins if not policies.fans_out(math.floor(count)))
    # Each account as likely to post: a post is written into its author's feed and, if it fans
    # out, into its followers' (on average, the fanned-out follows per account).
    entries_a_post = 1 + fanned / users_total
    celebrities_a_read = merged / users_total
    posts_a_second = posts_a_day / SECONDS_A_DAY * peak
    entries_a_second = posts_a_second * entries_a_post
    return {
        "celebrities": graph.above(policies.celebrity_threshold),
        "entries a post": entries_a_post,
        "entries/s at the peak": entries_a_second,
        "database cores": entries_a_second * costs.database_per_entry / 1e6,
        "processor cores": entries_a_second * costs.processor_per_entry / 1e6,
        "database WAL MB/s": entries_a_second * costs.wal_bytes_per_entry / 1e6,
        "celebrities merged a read": celebrities_a_read,
        "read cores": reads * (costs.read + celebrities_a_read * costs.merge_per_celebrity) / 1e6,
        "cache GB a million active readers": 1e6 * policies.cache_window * costs.cache_bytes_per_entry / 1e9,
        "users": users,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--thresholds", type=lambda text: [int(n) for n in text.split(",")], default=[10_000, 100_000, 1_000_000]
    )
    parser.add_argument("--users", type=int, default=100_000_000)
    parser.add_argument("--top", type=int, default=50_000_000, help="followers of the most followed account")
    parser.add_argument("--following", type=float, default=200, help="accounts a user follows, on average")
    parser.add_argument("--posts-per-day", type=float, default=500_000_000)
    parser.add_argument("--peak", type=float, default=3.0, help="the peak's posting rate over the day's average")
    parser.add_argument("--reads", type=float, default=300_000, help="feed reads a second")
    parser.add_argument("--database-us-per-entry", type=float, default=9.0)
    parser.add_argument("--processor-us-per-entry", type=float, default=5.0)
    parser.add_argument("--read-us", type=float, default=500.0)
    parser.add_argument("--merge-us-per-celebrity", type=float, default=660.0)
    parser.add_argument("--cache-bytes-per-entry", type=float, default=120.0)
    parser.add_argument("--wal-bytes-per-entry", type=float, default=300.0)
    args = parser.parse_args()
    graph = Graph.zipf(users=args.users, top=args.top, following=args.following)
    costs = Costs(
        database_per_entry=args.database_us_per_entry,
        processor_per_entry=args.processor_us_per_entry,
        read=args.read_us,
        merge_per_celebrity=args.merge_us_per_celebrity,
        cache_bytes_per_entry=args.cache_bytes_per_entry,
        wal_bytes_per_entry=args.wal_bytes_per_entry,
    )
    print(
        f"{args.users:,} users following {args.following:g} each on average; the most followed has {args.top:,} "
        f"followers; rank exponent {graph.exponent:.3f}; accounts above 1M followers: {graph.above(1_000_000):,}"
    )
    print(
        f"{args.posts_per_day:,.0f} posts a day ({args.posts_per_day / SECONDS_A_DAY:,.0f}/s on average, "
        f"x{args.peak:g} at the peak), {args.reads:,.0f} feed reads/s"
    )
    rows = [
        simulate(
            graph,
            Policies(celebrity_threshold=threshold),
            users=args.users,
            posts_a_day=args.posts_per_day,
            peak=args.peak,
            reads=args.reads,
            costs=costs,
        )
        for threshold in args.thresholds
    ]
    print("| celebrity threshold | " + " | ".join(f"{threshold:,}" for threshold in args.thresholds) + " |")
    print("|---" * (len(args.thresholds) + 1) + "|")
    for name in [
        "celebrities",
        "entries a post",
        "entries/s at the peak",
        "database cores",
        "processor cores",
        "database WAL MB/s",
        "celebrities merged a read",
        "read cores",
        "cache GB a million active readers",
    ]:
        print(
            f"| {name} | "
            + " | ".join(f"{row[name]:,.1f}" if row[name] < 100 else f"{row[name]:,.0f}" for row in rows)
            + " |"
        )


if __name__ == "__main__":
    main()

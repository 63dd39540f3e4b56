"""The scale simulator's graph and arithmetic (bench/simulate.py)."""

from __future__ import annotations

import pytest
from bench.simulate import Costs, Graph, simulate

from feedcore import Policies

COSTS = Costs(
    database_per_entry=9,
    processor_per_entry=5,
    read=500,
    merge_per_celebrity=100,
    cache_bytes_per_entry=80,
    wal_bytes_per_entry=300,
)


def test_the_graph_s_follows_add_up_and_its_top_account_has_the_most() -> None:
    graph = Graph.zipf(users=1_000_000, top=500_000, following=50)
    assert sum(accounts for accounts, _ in graph.bins) == pytest.approx(1_000_000, rel=1e-6)
    assert sum(accounts * count for accounts, count in graph.bins) == pytest.approx(50_000_000, rel=1e-3)
    counts = [count for _, count in graph.bins]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] == pytest.approx(500_000, rel=0.05)


def test_a_lower_threshold_writes_less_and_merges_more_and_every_follow_is_one_or_the_other() -> None:
    graph = Graph.zipf(users=1_000_000, top=500_000, following=50)
    rows = [
        simulate(
            graph,
            Policies(celebrity_threshold=threshold),
            users=1_000_000,
            posts_a_day=1e6,
            peak=1,
            reads=1e3,
            costs=COSTS,
        )
        for threshold in (1_000, 10_000, 100_000)
    ]
    written = [row["entries a post"] for row in rows]
    merged = [row["celebrities merged a read"] for row in rows]
    assert written == sorted(written)
    assert merged == sorted(merged, reverse=True)
    for row in rows:  # the author's own entry, then each follow fanned out or merged
        assert row["entries a post"] - 1 + row["celebrities merged a read"] == pytest.approx(50, rel=1e-3)
    assert (
        simulate(
            graph, Policies(celebrity_threshold=10**9), users=1_000_000, posts_a_day=1e6, peak=1, reads=1e3, costs=COSTS
        )["celebrities"]
        == 0
    )

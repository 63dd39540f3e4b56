"""The short soak: the real stack under mixed load while a seeded scheduler breaks its parts, then
every feed against an oracle of what the API acknowledged (`make soak` runs the long one)."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path

from bench.soak.run import Plan, soak

#: Set it to replay a failed run: the seed is printed with every report.
SEED_VARIABLE = "FEEDCORE_TEST_SOAK_SEED"


def test_a_short_soak_loses_nothing_and_shows_nothing_it_should_not() -> None:
    seed = int(os.environ.get(SEED_VARIABLE) or secrets.randbelow(1_000_000))
    # Not pytest's tmp_path: PostgreSQL runs as its own user, which cannot enter root's 0700 directories.
    directory = Path(tempfile.mkdtemp(prefix="feedcore-soak-"))
    # 500 idle connections, not 2,000: test_bad_clients holds more against a server alone.
    report = soak(Plan(seed=seed, seconds=75, users=24, idle_connections=500), directory)
    summary = "\n".join(report.lines())
    assert len(report.injected) >= 4, summary
    assert report.problems() == [], f"replay with {SEED_VARIABLE}={seed}; logs under {directory}\n{summary}"
    shutil.rmtree(directory, ignore_errors=True)

"""``python -m bench.soak``: run a soak and print its report; exit 1 if it found anything."""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

from bench.soak.faults import KINDS
from bench.soak.run import Plan, soak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=20.0, help="how long the load and the faults last")
    parser.add_argument("--seed", type=int, default=None, help="the seed of the faults and the load (default: random)")
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument(
        "--faults",
        default="",
        help="only the kinds of fault whose names contain one of these comma-separated words (e.g. processor,redis)",
    )
    parser.add_argument("--directory", type=Path, default=None, help="where the services keep their data and logs")
    arguments = parser.parse_args()
    seed = random.randrange(1_000_000) if arguments.seed is None else arguments.seed
    words = [word.strip() for word in arguments.faults.split(",") if word.strip()]
    kinds = tuple(kind for kind in KINDS if not words or any(word in kind for word in words))
    if not kinds:
        parser.error(f"no kind of fault matches {arguments.faults!r}; the kinds: {', '.join(KINDS)}")
    plan = Plan(seed=seed, seconds=arguments.minutes * 60, users=arguments.users, kinds=kinds)
    directory = arguments.directory or Path(tempfile.mkdtemp(prefix="feedcore-soak-"))
    print(f"soak: services and logs under {directory}", flush=True)
    report = soak(plan, directory)
    print("\n".join(report.lines()))
    problems = report.problems()
    if problems:
        print(f"FAILED: {len(problems)} problems; replay with --seed {seed}")
        sys.exit(1)
    print("passed")


if __name__ == "__main__":
    main()

from __future__ import annotations

import pytest

from feedcore import Policies
from tests.support.world import World


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def small_world() -> World:
    """A world where two followers make a celebrity and feeds materialise little."""
    return World(Policies(celebrity_threshold=2, backfill_limit=3, cache_window=4, fanout_chunk=2))

"""The adapters under test: each port on its in-memory and its PostgreSQL adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from feedcore.adapters.memory import ManualClock
from tests.integration.contracts.blocks import postgres_ports
from tests.support.world import Adapters, memory_adapters


@pytest.fixture(params=["memory", "postgres"])
def backend(request: pytest.FixtureRequest) -> str | None:
    """None for the in-memory adapters, else the URL of a migrated database."""
    if request.param == "postgres":
        return str(request.getfixturevalue("migrated_database"))
    return None


@pytest.fixture
async def ports(backend: str | None) -> AsyncIterator[Adapters]:
    if backend is None:
        yield memory_adapters(ManualClock())
        return
    async with postgres_ports(backend) as (adapters, _):
        yield adapters

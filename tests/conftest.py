"""Markers by folder, and the hypothesis profiles."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "feedcore",
    max_examples=int(os.environ.get("FEEDCORE_TEST_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("feedcore")

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(item.path).relative_to(_HERE).parts[0]
        if folder in {"unit", "integration"}:
            item.add_marker(getattr(pytest.mark, folder))

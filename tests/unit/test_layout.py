"""The package's layout: one top-level package, ``feedcore``, whose core stays pure.

The adapters and entrypoints live in ``src/adapters`` and ``src/entrypoints`` and are installed
as ``feedcore.adapters`` and ``feedcore.entrypoints`` (``src/feedcore`` links to them), so the
import contracts name the core's modules one by one: these tests keep that list whole.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SRC = Path(__file__).resolve().parents[2] / "src"


def _core_modules() -> set[str]:
    return {f"feedcore.{path.stem}" for path in (SRC / "feedcore").glob("*.py") if path.stem != "__init__"}


def _contracts() -> list[dict[str, object]]:
    with (SRC.parent / "pyproject.toml").open("rb") as file:
        contracts: list[dict[str, object]] = tomllib.load(file)["tool"]["importlinter"]["contracts"]
    return contracts


def test_the_adapters_and_entrypoints_are_installed_inside_feedcore() -> None:
    assert (SRC / "feedcore" / "adapters").resolve() == (SRC / "adapters").resolve()
    assert (SRC / "feedcore" / "entrypoints").resolve() == (SRC / "entrypoints").resolve()


def test_the_import_contracts_name_every_core_module() -> None:
    layers, forbidden = _contracts()
    core_layer = str(layers["layers"][-1])  # type: ignore[index]
    assert {name.strip() for name in core_layer.split(":")} == _core_modules()
    assert set(forbidden["source_modules"]) == _core_modules()  # type: ignore[call-overload]


def test_importing_the_core_loads_no_adapter_no_entrypoint_and_no_driver() -> None:
    # In a fresh interpreter: feedcore/__init__ is the one core module no contract can name alone.
    loaded = subprocess.run(
        [sys.executable, "-c", "import feedcore, sys; print(' '.join(sorted(sys.modules)))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    unwanted = ("feedcore.adapters", "feedcore.entrypoints", "litestar", "psycopg", "redis", "aiokafka")
    assert [name for name in loaded if name.startswith(unwanted)] == []
    assert "feedcore.model" in loaded

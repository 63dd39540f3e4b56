"""feedcore imports nothing but itself, the standard library and msgspec."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import feedcore

ALLOWED = {"feedcore", "msgspec", "__future__"}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_feedcore_imports_only_the_standard_library_and_msgspec() -> None:
    package = Path(feedcore.__file__).parent
    sources = sorted(package.rglob("*.py"))
    assert len(sources) > 5
    outside = {
        f"{path.name}: {root}"
        for path in sources
        for root in imported_roots(path)
        if root not in ALLOWED and root not in sys.stdlib_module_names
    }
    assert outside == set()


def test_the_check_would_see_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("import os\nfrom redis.asyncio import Redis\nfrom . import sibling\n")
    assert imported_roots(module) - sys.stdlib_module_names == {"redis"}

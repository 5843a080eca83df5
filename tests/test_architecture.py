"""Rules of the codebase's shape that a reviewer would otherwise have to remember."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIRS = {
    "cornerstore": ROOT / "platform" / "cornerstore",
    "consent": ROOT / "consent",
    "audit": ROOT / "audit",
    "connectors": ROOT / "connectors",
}


def _modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package, directory in PACKAGE_DIRS.items():
        for path in directory.rglob("*.py"):
            if "versions" in path.parts:
                continue
            parts = [package, *path.relative_to(directory).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _top_level_imports(path: Path, known: set[str]) -> set[str]:
    """Imports executed at import time (not those inside functions)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found.update(name for name in names if name in known)
    return found


def test_platform_folder_is_not_a_package() -> None:
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_modules_never_import_each_other_in_a_cycle() -> None:
    modules = _modules()
    graph = {
        name: _top_level_imports(path, set(modules)) - {name} for name, path in modules.items()
    }
    visiting: list[str] = []
    done: set[str] = set()
    cycles: list[list[str]] = []

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            cycles.append([*visiting[visiting.index(name) :], name])
            return
        visiting.append(name)
        for target in sorted(graph[name]):
            visit(target)
        visiting.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)
    assert cycles == []


def test_shop_data_tables_are_queried_only_by_the_records_repository() -> None:
    allowed = {"cornerstore.records.models", "cornerstore.records.repository", "cornerstore.tables"}
    offenders = [
        name
        for name, path in _modules().items()
        if name not in allowed
        and any(
            table in path.read_text(encoding="utf-8")
            for table in ("ShopRecord", "QuarantinedRecord", "shop_records")
        )
    ]
    assert offenders == []


def test_records_are_read_only_through_the_gate() -> None:
    readers = [
        name
        for name, path in _modules().items()
        if "read_window" in path.read_text(encoding="utf-8")
        and name not in ("cornerstore.gate", "cornerstore.records.repository")
    ]
    assert readers == []

"""Rules of the codebase's shape that a reviewer would otherwise have to remember.

The layers, from the bottom up (docs/architecture.md draws them):

    audit_verifier        the auditor's offline verifier: the standard library and cryptography
    cornerstore           the core: settings, db, errors, keys, policy, tables, records, the gate
    audit                 the audit log as the hub stores and serves it
    consent, connectors   consent artefacts; ingestion (neither imports the other)
    web_console           the shopkeeper's portal and the auditor's console (pages)
    hub                   the app, the CLI, the demo, principals, shops and exports
    bench, tests          may import anything; nothing imports them

A module may import its own package and any package in a layer below its own;
never one above, nor a sibling in its own layer. Every import counts: those
inside functions, under ``TYPE_CHECKING`` and in migrations too.
"""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.routes import endpoints, pages, permits

ROOT = Path(__file__).resolve().parent.parent

#: Bottom first. Packages in one tuple share a layer and may not import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("audit_verifier",),
    # The SDK stands beside the core: consumers install it without the hub.
    ("cornerstore", "cornerstore_client"),
    # The reference consumers stand apart from the hub: they import only the SDK.
    ("audit", "cornerstore_consumers"),
    ("consent", "connectors"),
    ("analytics", "proposals"),
    ("web_console",),
    ("hub",),
    ("bench", "tests", "policies"),
)
PACKAGE_DIRS = {
    "audit_verifier": ROOT / "audit_verifier" / "audit_verifier",
    "cornerstore_client": ROOT / "client_sdk" / "cornerstore_client",
    "cornerstore_consumers": ROOT / "reference_consumers" / "cornerstore_consumers",
    "cornerstore": ROOT / "platform" / "cornerstore",
    "audit": ROOT / "audit",
    "consent": ROOT / "consent",
    "connectors": ROOT / "connectors",
    "analytics": ROOT / "analytics",
    "proposals": ROOT / "proposals",
    "web_console": ROOT / "web_console",
    "hub": ROOT / "hub",
    "bench": ROOT / "bench",
    "tests": ROOT / "tests",
    "policies": ROOT / "policies",
}
LAYER_OF = {package: level for level, layer in enumerate(LAYERS) for package in layer}


def _modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package, directory in PACKAGE_DIRS.items():
        for path in directory.rglob("*.py"):
            parts = [package, *path.relative_to(directory).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module named by an import anywhere in the file, with its line."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return found


def _project_imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    return {
        name: {target for _, target in _imports(path) if target in modules} - {name}
        for name, path in modules.items()
    }


def test_every_project_module_is_in_a_layer() -> None:
    # A package missing from LAYERS would escape every rule below.
    roots = {
        path.name
        for path in [*ROOT.iterdir(), *(ROOT / "platform").iterdir()]
        if (path / "__init__.py").is_file()
    }
    assert roots <= set(LAYER_OF)


def test_no_import_runs_against_the_layers() -> None:
    modules = _modules()
    offences = []
    for name, path in modules.items():
        own = name.split(".")[0]
        for line, target in _imports(path):
            other = target.split(".")[0]
            if other == own or other not in LAYER_OF:
                continue
            if LAYER_OF[other] >= LAYER_OF[own]:
                offences.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert offences == []


def test_the_hub_and_its_consumers_meet_only_over_http() -> None:
    """The SDK and the reference consumers import nothing of the hub, and the hub nothing of
    them: they speak only HTTP to each other (tests and benchmarks may use both)."""
    outside = {"cornerstore_client", "cornerstore_consumers"}
    sides = {"audit_verifier", *outside}
    offences = []
    for name, path in _modules().items():
        own = name.split(".")[0]
        for line, target in _imports(path):
            other = target.split(".")[0]
            if other not in LAYER_OF or own in {"bench", "tests", "policies"}:
                continue
            if (own in outside and other not in sides) or (own not in outside and other in outside):
                offences.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert offences == []


def test_modules_never_import_each_other_in_a_cycle() -> None:
    graph = _project_imports(_modules())
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


def test_platform_folder_is_not_a_package() -> None:
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_the_verifier_imports_only_the_standard_library_and_cryptography() -> None:
    """An auditor runs it with nothing of the hub installed: prove it in a fresh interpreter."""
    # _openssl is the OpenSSL binding that cryptography's compiled core registers.
    allowed = {"audit_verifier", "cryptography", "_cffi_backend", "_openssl"}
    program = textwrap.dedent(
        f"""
        import importlib.abc, sys

        before = set(sys.modules)
        allowed = {sorted(allowed)!r}

        class Guard(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in allowed:
                    return None
                raise ImportError(f"the verifier imported {{name}}")

        sys.meta_path.insert(0, Guard())
        import audit_verifier.chain, audit_verifier.merkle, audit_verifier.note
        import audit_verifier.verify, audit_verifier.__main__
        outside = sorted(
            m for m in set(sys.modules) - before
            if m.split(".")[0] not in sys.stdlib_module_names
            and m.split(".")[0] not in allowed
        )
        print(outside)
        """
    )
    result = subprocess.run(  # noqa: S603 (our own interpreter and program)
        [sys.executable, "-c", program],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_guard_of_the_verifier_test_would_catch_a_stray_import() -> None:
    # The test above is only worth something if its guard refuses a project module.
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import importlib.abc, sys\n"
            "class G(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] not in sys.stdlib_module_names:\n"
            "            raise ImportError(name)\n"
            "sys.meta_path.insert(0, G())\n"
            "import cornerstore.db\n",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "ImportError: cornerstore" in result.stderr


def test_shop_data_tables_are_queried_only_by_the_records_repository() -> None:
    allowed = {"cornerstore.models.records", "cornerstore.records.repository", "cornerstore.models"}
    offenders = [
        name
        for name, path in _modules().items()
        if name.split(".")[0] not in ("tests", "bench")
        and name not in allowed
        and "migrations" not in name
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
        if name.split(".")[0] not in ("tests", "bench")
        and "read_window" in path.read_text(encoding="utf-8")
        and name not in ("cornerstore.gate", "cornerstore.records.repository")
    ]
    assert readers == []


#: Endpoints anyone may call: what the hub publishes so that others can check it.
PUBLIC_ENDPOINTS = {
    ("GET", "/v1/purposes"),
    ("GET", "/v1/keys/receipts"),
    ("GET", "/v1/audit/public-key"),
}


def test_every_endpoint_declares_its_permit_in_its_signature() -> None:
    undeclared = [
        (method, path)
        for method, path, route in endpoints()
        if (method, path) not in PUBLIC_ENDPOINTS and len(permits(route.dependant)) != 1
    ]
    assert undeclared == []
    # The allow-list names only endpoints that exist, and that really declare none.
    public = [(m, p) for m, p, route in endpoints() if not permits(route.dependant)]
    assert set(public) == PUBLIC_ENDPOINTS


#: Pages anyone may open: the way in, the way out, the language switch, the API's docs.
PUBLIC_PAGES = {
    ("GET", "/"),
    ("GET", "/sign-in"),
    ("POST", "/sign-in"),
    ("POST", "/sign-out"),
    ("GET", "/language/{tag}"),
    ("GET", "/erased"),
    ("GET", "/docs"),
    ("GET", "/redoc"),
}


def test_every_page_declares_its_permit_as_the_api_does() -> None:
    undeclared = [
        (method, path)
        for method, path, route in pages()
        if (method, path) not in PUBLIC_PAGES and len(permits(route.dependant)) != 1
    ]
    assert undeclared == []
    public = {(m, p) for m, p, route in pages() if not permits(route.dependant)}
    assert public == PUBLIC_PAGES
    # A page about a shop is authorized for that shop, as its API endpoint is.
    unscoped = [
        (method, path)
        for method, path, route in pages()
        if "{shop_id}" in path
        and not all(
            "shop_id" in inspect.signature(permit).parameters for permit in permits(route.dependant)
        )
    ]
    assert unscoped == []


def test_an_endpoint_about_a_shop_is_authorized_for_that_shop() -> None:
    # A permit that did not take the shop would decide as if the caller kept none.
    unscoped = [
        (method, path)
        for method, path, route in endpoints()
        if "{shop_id}" in path
        and not all(
            "shop_id" in inspect.signature(permit).parameters for permit in permits(route.dependant)
        )
    ]
    assert unscoped == []


def test_only_the_permit_dependencies_and_the_gate_call_authorize() -> None:
    callers = sorted(
        name
        for name, path in _modules().items()
        if name.split(".")[0] not in ("tests", "bench")
        and any(
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "authorize"
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        )
    )
    assert callers == ["audit.deps", "cornerstore.access", "cornerstore.gate"]

"""The architecture, checked: a pure core -> adapters and the lab -> runtime -> cli; the lab reachable only from
the CLI; no import circle; packaging complete."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"agent": "segcheck.agent", "cli": "segcheck.cli"}

# The core may use the standard library's pure modules, nothing that does I/O.
CORE_ALLOWED = {"__future__", "abc", "bisect", "collections", "dataclasses", "enum", "functools", "hashlib",
                "ipaddress", "itertools", "json", "math", "re", "typing"}
# Who may import whom inside segcheck (lower layers never import higher ones). The lab sits beside the runtime's
# adapters: it may use adapters, and only the CLI may use it (the DaemonSet's code path never knows it exists).
LAYERS = ["segcheck.agent.core", "segcheck.agent.adapters", "segcheck.agent.lab", "segcheck.agent.runtime", "segcheck.cli"]
LAB = "segcheck.agent.lab"
MAY_IMPORT_LAB = ("segcheck.agent.lab", "segcheck.cli")


def modules():
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([package, *parts])
            is_pkg = path.name == "__init__.py"
            yield name, is_pkg, path


def imports(name: str, is_pkg: bool, path: Path):
    tree = ast.parse(path.read_text(), str(path))
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                prefix = base[: len(base) - node.level + 1]
                yield ".".join(prefix + ([node.module] if node.module else []))
            else:
                yield node.module or ""


def layer(module: str) -> int | None:
    for i, name in enumerate(LAYERS):
        if module == name or module.startswith(name + "."):
            return i
    return None


def test_core_imports_no_io_library():
    bad = []
    for name, is_pkg, path in modules():
        if layer(name) != 0:
            continue
        for imp in imports(name, is_pkg, path):
            if imp.startswith("segcheck."):
                if layer(imp) != 0:
                    bad.append(f"{name} imports {imp}")
            elif imp.split(".")[0] not in CORE_ALLOWED:
                bad.append(f"{name} imports {imp}")
    assert not bad, "\n".join(bad)


def test_layers_only_import_downwards():
    bad = []
    for name, is_pkg, path in modules():
        mine = layer(name)
        if mine is None:
            continue
        for imp in imports(name, is_pkg, path):
            theirs = layer(imp)
            if theirs is not None and theirs > mine:
                bad.append(f"{name} ({LAYERS[mine]}) imports {imp} ({LAYERS[theirs]})")
    assert not bad, "\n".join(bad)


def test_every_package_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {name for name, is_pkg, _ in modules() if is_pkg}
    assert found <= listed, f"add to pyproject [tool.setuptools] packages: {sorted(found - listed)}"


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_only_the_cli_imports_the_lab():
    bad = [f"{name} imports {imp}" for name, is_pkg, path in modules()
           if not any(_within(name, p) for p in MAY_IMPORT_LAB)
           for imp in imports(name, is_pkg, path) if _within(imp, LAB)]
    assert not bad, "\n".join(bad)


def _graph() -> dict[str, set[str]]:
    """Module -> the segcheck modules it imports (a `from package import name` counts as the package)."""
    known = {name for name, _, _ in modules()}
    graph: dict[str, set[str]] = {}
    for name, is_pkg, path in modules():
        targets = set()
        for imp in imports(name, is_pkg, path):
            while imp and imp not in known:
                imp = imp.rpartition(".")[0]
            if imp and imp != name:
                targets.add(imp)
        graph[name] = targets
    return graph


def _package_edge(importer: str, imported: str) -> bool:
    """A package's __init__ importing its own submodules (or a submodule its package) is no circle of design."""
    return _within(imported, importer) or _within(importer, imported)


def test_no_import_circle():
    graph = {m: {t for t in ts if not _package_edge(m, t)} for m, ts in _graph().items()}
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                circles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert not circles, "\n".join(" -> ".join(c) for c in circles)

"""The architecture, checked: a pure core, adapters below the runtime, the CLI on top; packaging complete."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"agent": "segcheck.agent", "cli": "segcheck.cli"}

# The core may use the standard library's pure modules, nothing that does I/O.
CORE_ALLOWED = {"__future__", "abc", "bisect", "collections", "dataclasses", "enum", "functools", "hashlib",
                "ipaddress", "itertools", "json", "math", "re", "typing"}
# Who may import whom inside segcheck (lower layers never import higher ones).
LAYERS = ["segcheck.agent.core", "segcheck.agent.adapters", "segcheck.agent.lab", "segcheck.agent.runtime", "segcheck.cli"]


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

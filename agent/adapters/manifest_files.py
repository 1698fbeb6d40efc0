"""Manifests from files and folders: multi-document YAML and JSON, read into raw objects for the core."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import yaml

from ..core.inventory import Inventory
from ..core.manifests import ManifestError, RawObject, build_inventory

SUFFIXES = (".yaml", ".yml", ".json")


_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when present: ~10x faster on big trees


class _UniqueKeyLoader(_Base):  # type: ignore[misc, valid-type]
    """SafeLoader that refuses duplicate keys (a silent override hides mistakes in policies)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str) -> Any:
    """YAML for embedded documents (cloud-init); raises ValueError on bad input."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ValueError(str(exc).replace("\n", " ")) from None


def expand_paths(paths: Iterable[str | Path]) -> tuple[list[Path], list[ManifestError]]:
    files: list[Path] = []
    errors: list[ManifestError] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES))
        elif path.is_file():
            files.append(path)
        else:
            errors.append(ManifestError(str(path), "-", "no such file or directory"))
    return files, errors


def read_objects(paths: Iterable[str | Path]) -> tuple[list[RawObject], list[ManifestError]]:
    files, errors = expand_paths(paths)
    objects: list[RawObject] = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(ManifestError(str(path), "-", f"cannot read: {exc}"))
            continue
        if path.suffix == ".json":
            try:
                objects.append(RawObject(str(path), json.loads(text)))
            except json.JSONDecodeError as exc:
                errors.append(ManifestError(str(path), "-", f"invalid JSON: {exc.msg} at line {exc.lineno}"))
            continue
        try:
            docs = list(yaml.load_all(text, Loader=_UniqueKeyLoader))  # noqa: S506
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            errors.append(ManifestError(str(path), "-", f"invalid YAML{where}: {problem}"))
            continue
        for i, doc in enumerate(docs):
            if doc is not None:
                objects.append(RawObject(f"{path}" + (f"#{i + 1}" if len(docs) > 1 else ""), doc))
    return objects, errors


def load_inventory(paths: Iterable[str | Path]) -> tuple[Inventory, list[ManifestError]]:
    objects, errors = read_objects(paths)
    inventory, more = build_inventory(objects, parse_yaml)
    return inventory, errors + more

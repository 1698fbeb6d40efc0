"""Manifests from files and folders: multi-document YAML and JSON, read into raw objects for the core.

Input is untrusted: all files of one load together are bounded in size; each YAML document is bounded and
parsed on its own (yaml_documents), so a syntax error costs only that document.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from ..core.input_limits import InputTooLarge, load_json
from ..core.inventory import Inventory
from ..core.manifests import ManifestError, RawObject, build_inventory
from .yaml_documents import parse_yaml, read_yaml

SUFFIXES = (".yaml", ".yml", ".json")
MAX_INPUT_BYTES = 32 << 20  # all files of one load together; ~20x that in memory once parsed


@contextmanager
def _no_gc_pauses() -> Iterator[None]:
    """Parsing allocates millions of objects that all survive: the cyclic collector would rescan them again
    and again (measured: a 10 MB List document 25 s with it, 5 s without)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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


def _read_text(path: Path, budget: int) -> tuple[str, int]:
    """The file's text and size, if it fits in what is left of the input budget; raises OSError/ValueError."""
    size = path.stat().st_size
    if size > budget:
        raise InputTooLarge(f"{size:,} bytes would take the input past {MAX_INPUT_BYTES:,} bytes; the file is skipped")
    with path.open("rb") as f:
        data = f.read(budget + 1)  # the size may have changed since stat
    if len(data) > budget:
        raise InputTooLarge(f"grew past the {MAX_INPUT_BYTES:,} bytes of input while read; the file is skipped")
    return data.decode("utf-8"), len(data)


def read_objects(paths: Iterable[str | Path]) -> tuple[list[RawObject], list[ManifestError]]:
    files, errors = expand_paths(paths)
    objects: list[RawObject] = []
    budget = MAX_INPUT_BYTES
    with _no_gc_pauses():
        for path in files:
            try:
                text, size = _read_text(path, budget)
            except (OSError, ValueError) as exc:
                errors.append(ManifestError(str(path), "-", f"cannot read: {exc}"))
                continue
            budget -= size
            if path.suffix == ".json":
                try:
                    objects.append(RawObject(str(path), load_json(text)))
                except ValueError as exc:
                    errors.append(ManifestError(str(path), "-", f"{exc}; the file is skipped"))
                continue
            more, bad = read_yaml(str(path), text)
            objects += more
            errors += bad
    return objects, errors


def load_inventory(paths: Iterable[str | Path]) -> tuple[Inventory, list[ManifestError]]:
    objects, errors = read_objects(paths)
    inventory, more = build_inventory(objects, parse_yaml)
    return inventory, errors + more

"""Manifests from files and folders: multi-document YAML and JSON, read into raw objects for the core.

Input is untrusted: files and YAML documents are bounded in size, YAML aliases in how far they expand, and
every document is parsed on its own, so a syntax error costs only that document.
"""

from __future__ import annotations

import gc
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import yaml

from ..core.input_limits import MAX_DEPTH, MAX_NUMBER_DIGITS, InputTooLarge, load_json
from ..core.inventory import Inventory
from ..core.manifests import ManifestError, RawObject, build_inventory

SUFFIXES = (".yaml", ".yml", ".json")
MAX_INPUT_BYTES = 32 << 20  # all files of one load together; ~20x that in memory once parsed
MAX_YAML_DOCUMENT_BYTES = 8 << 20  # a YAML document costs ~60x its size while parsed (JSON ~14x)
MAX_ALIAS_EXPANSION = 100_000  # values YAML aliases may add to a document (billion laughs adds billions)
MAX_YAML_NODES = 1_500_000  # values of one YAML document (~400 bytes each while parsed: ~600 MB)
# Every YAML node but the root starts after one of these, at most two at one place (`- a: b` opens a mapping
# and its key), so twice their count bounds the nodes a document has before it is parsed.
_NODE_STARTS = (",", "\n", ":", "-", "[", "{", "?")

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when present: ~10x faster on big trees
# A document starts at `---` or ends at `...` at the start of a line; directives (`%YAML`) open the next one.
_DOCUMENT_START = re.compile(r"^(?:---|\.\.\.)(?=[ \t\r\n]|$)|^%", re.M)
_END_MARKER = re.compile(r"\.\.\.[ \t]*(?:#.*)?(?:\r?\n|$)")
_CONTENT = re.compile(r"^[ \t]*[^ \t\r\n#]", re.M)
_KIND = re.compile(r"^kind:[ \t]*[\"']?([\w.-]+)", re.M)
_METADATA = re.compile(r"^metadata:[ \t]*\r?\n((?:[ \t]+[^\n]*\n?|[ \t]*\r?\n)*)", re.M)  # its indented block
_NAME = re.compile(r"^[ \t]+name:[ \t]*[\"']?([\w.-]+)", re.M)
_NAMESPACE = re.compile(r"^[ \t]+namespace:[ \t]*[\"']?([\w.-]+)", re.M)


_TAG = "tag:yaml.org,2002:"
_MAP, _SEQ, _STR, _MERGE = _TAG + "map", _TAG + "seq", _TAG + "str", _TAG + "merge"


def _refuse(problem: str, node: yaml.Node) -> yaml.constructor.ConstructorError:
    return yaml.constructor.ConstructorError(None, None, problem, node.start_mark)


def _int(loader: Any, node: yaml.ScalarNode) -> int:
    if len(node.value) > MAX_NUMBER_DIGITS:
        raise _refuse(f"an integer of {len(node.value):,} digits (at most {MAX_NUMBER_DIGITS})", node)
    return int(yaml.constructor.SafeConstructor.construct_yaml_int(loader, node))


# The plain values of YAML 1.1 Kubernetes accepts; timestamps stay text, as Kubernetes' YAML-to-JSON keeps them.
_SCALARS = {
    _TAG + "int": _int,
    _TAG + "float": yaml.constructor.SafeConstructor.construct_yaml_float,
    _TAG + "bool": yaml.constructor.SafeConstructor.construct_yaml_bool,
    _TAG + "null": lambda loader, node: None,
    _TAG + "timestamp": lambda loader, node: node.value,
    _MERGE: lambda loader, node: node.value,  # the `<<` key itself; _mapping does the merging
}


def _scalar(loader: Any, node: yaml.ScalarNode) -> Any:
    if node.tag == _STR:
        return node.value
    make = _SCALARS.get(node.tag)
    if make is None:
        raise _refuse(f"unsupported YAML tag {node.tag}", node)
    return make(loader, node)


def _mapping(node: yaml.MappingNode, values: list[Any]) -> dict[Any, Any]:
    """A mapping from its constructed keys and values (in `values`, alternating); `<<` merges as YAML 1.1
    says: explicit keys win over merged ones, earlier merged mappings over later ones."""
    explicit: dict[Any, Any] = {}
    merged: dict[Any, Any] = {}
    for (key_node, _), key, value in zip(node.value, values[::2], values[1::2]):
        if key_node.tag == _MERGE:
            sources = value if isinstance(value, list) else [value]
            if not all(isinstance(s, dict) for s in sources):
                raise _refuse("`<<` needs a mapping or a list of mappings", key_node)
            for source in sources:
                for k, v in source.items():
                    merged.setdefault(k, v)
        elif key in explicit:
            raise _refuse(f"duplicate key {key!r}", key_node)
        else:
            explicit[key] = value
    return {**merged, **explicit} if merged else explicit


def _construct(loader: Any, root: yaml.Node) -> Any:
    """The document's value, built bottom-up without recursion; a node an alias reaches again is the same
    object (as in PyYAML). Faster than PyYAML's constructor, which dominated the time of big files."""
    built: dict[int, Any] = {}
    out: list[Any] = []
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            count = len(node.value) * (2 if isinstance(node, yaml.MappingNode) else 1)
            values = out[len(out) - count:]
            del out[len(out) - count:]
            value = _mapping(node, values) if isinstance(node, yaml.MappingNode) else values
            built[id(node)] = value
            out.append(value)
        elif id(node) in built:
            out.append(built[id(node)])
        elif isinstance(node, yaml.ScalarNode):
            out.append(_scalar(loader, node))
        elif node.tag not in (_MAP, _SEQ):
            raise _refuse(f"unsupported YAML tag {node.tag}", node)
        else:
            stack.append((node, True))
            children = _children(node)
            for child in children[::2] if isinstance(node, yaml.MappingNode) else ():
                if not isinstance(child, yaml.ScalarNode):
                    raise _refuse(f"a mapping key must be a plain value, not a {child.id}", child)
            stack.extend((child, False) for child in reversed(children))
    return out[0]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_aliases(root: yaml.Node) -> None:
    """Refuse a document whose aliases make it recursive, too deep, or much larger than written.

    Counts the values the document expands to without expanding it: each distinct collection once (memoised),
    each scalar as one value."""
    sizes: dict[int, tuple[int, int]] = {}  # id(collection) -> (values it expands to, depth)
    written = 0  # values as written (a scalar an alias repeats counts again: a little generous)
    active: set[int] = set()  # collections on the current path: meeting one again is a recursive alias
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        nid = id(node)
        children = _children(node)
        if done:
            active.discard(nid)
            size, depth = 1, 1
            for child in children:
                s, d = sizes.get(id(child), (1, 1))
                size, depth = size + s, max(depth, d + 1)
            written += 1 + sum(1 for c in children if isinstance(c, yaml.ScalarNode))
            if size - written > MAX_ALIAS_EXPANSION:
                raise InputTooLarge(f"YAML aliases expand the document by more than {MAX_ALIAS_EXPANSION:,} values "
                                    f"(at line {node.start_mark.line + 1}); write the values out")
            if depth > MAX_DEPTH:
                raise InputTooLarge(f"nested deeper than {MAX_DEPTH} levels (at line {node.start_mark.line + 1})")
            sizes[nid] = (size, depth)
            continue
        if nid in sizes or isinstance(node, yaml.ScalarNode):
            continue
        active.add(nid)
        stack.append((node, True))
        for child in children:
            if id(child) in active:
                raise InputTooLarge(f"recursive YAML alias at line {child.start_mark.line + 1}")
            if not isinstance(child, yaml.ScalarNode) and id(child) not in sizes:
                stack.append((child, False))


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


def _load_document(text: str) -> Any:
    if 1 + 2 * sum(text.count(c) for c in _NODE_STARTS) > MAX_YAML_NODES:
        raise InputTooLarge(f"the document may hold more than {MAX_YAML_NODES:,} values, more than segcheck parses "
                            "as YAML within its memory bounds; split it or give it as JSON")
    loader = _Base(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if "&" in text and "*" in text:  # no anchor or no alias: nothing can expand
            _check_aliases(node)
        return _construct(loader, node)
    finally:
        loader.dispose()


def parse_yaml(text: str) -> Any:
    """YAML for embedded documents (cloud-init); raises ValueError on bad input."""
    try:
        return _load_document(text)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc).replace("\n", " ")) from None
    except RecursionError:
        raise InputTooLarge(f"YAML nested deeper than {MAX_DEPTH} levels") from None


@dataclass(frozen=True)
class _Document:
    text: str
    first_line: int  # 0-based line of the file where the document starts


def _documents(text: str) -> list[_Document]:
    """The documents of a YAML stream, split at its markers (a marker at the start of a line always ends a
    document, even inside a block scalar), so each parses on its own."""
    starts = [m.start() for m in _DOCUMENT_START.finditer(text)]
    bounds = [0, *[s for s in starts if s > 0], len(text)]
    pieces: list[_Document] = []
    pending, pending_line = "", 0  # directives belong to the document they precede
    line = 0  # of `begin`
    for begin, end in zip(bounds, bounds[1:]):
        piece, first = text[begin:end], line
        line += piece.count("\n")
        if piece.startswith("%"):
            pending, pending_line = pending + piece, pending_line if pending else first
            continue
        if piece.startswith("..."):
            marker = _END_MARKER.match(piece)
            piece, first = (piece[marker.end():] if marker else ""), first + 1
        if pending:
            piece, first, pending = pending + piece, pending_line, ""
        if piece.startswith(("---", "%")) or _CONTENT.search(piece):
            pieces.append(_Document(piece, first))
    return pieces


def _peek_object(text: str) -> str:
    """`Kind ns/name` (as the core describes objects) of a document that does not parse, as far as its text
    shows it, so the agent can tell which object's last good version to keep."""
    kind, meta = _KIND.search(text), _METADATA.search(text)
    if kind is None:
        return "-"
    name, ns = (r.search(meta.group(1)) if meta else None for r in (_NAME, _NAMESPACE))
    return f"{kind.group(1)} {ns.group(1) + '/' if ns else ''}{name.group(1) if name else '?'}"


def _yaml_problem(exc: yaml.YAMLError, doc: _Document) -> str:
    mark = getattr(exc, "problem_mark", None)
    last = max(doc.text.count("\n", 0, len(doc.text) - 1), 0)  # a mark past the end is on the last line
    where = f" at line {doc.first_line + min(mark.line, last) + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"invalid YAML{where}: {problem}; this document is skipped"


def _read_yaml(path: Path, text: str) -> tuple[list[RawObject], list[ManifestError]]:
    docs = _documents(text)
    objects: list[RawObject] = []
    errors: list[ManifestError] = []
    for i, doc in enumerate(docs):
        source = f"{path}#{i + 1}" if len(docs) > 1 else str(path)
        if len(doc.text) > MAX_YAML_DOCUMENT_BYTES:
            errors.append(ManifestError(source, _peek_object(doc.text), f"document of {len(doc.text):,} bytes, over "
                                        f"the {MAX_YAML_DOCUMENT_BYTES:,} a YAML document may have; split it or "
                                        "give it as JSON"))
            continue
        try:
            data = _load_document(doc.text)
        except yaml.YAMLError as exc:
            errors.append(ManifestError(source, _peek_object(doc.text), _yaml_problem(exc, doc)))
            continue
        except (InputTooLarge, RecursionError) as exc:
            problem = str(exc) if isinstance(exc, InputTooLarge) else f"nested deeper than {MAX_DEPTH} levels"
            errors.append(ManifestError(source, _peek_object(doc.text), problem))
            continue
        if data is not None:
            objects.append(RawObject(source, data))
    return objects, errors


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


def _read_text(path: Path, budget: int) -> str:
    """The file's text, if it fits in what is left of the input budget; raises OSError/ValueError."""
    size = path.stat().st_size
    if size > budget:
        raise InputTooLarge(f"{size:,} bytes would take the input past {MAX_INPUT_BYTES:,} bytes; the file is skipped")
    with path.open("rb") as f:
        data = f.read(budget + 1)  # the size may have changed since stat
    if len(data) > budget:
        raise InputTooLarge(f"grew past the {MAX_INPUT_BYTES:,} bytes of input while read; the file is skipped")
    return data.decode("utf-8")


def read_objects(paths: Iterable[str | Path]) -> tuple[list[RawObject], list[ManifestError]]:
    files, errors = expand_paths(paths)
    objects: list[RawObject] = []
    budget = MAX_INPUT_BYTES
    with _no_gc_pauses():
        for path in files:
            try:
                text = _read_text(path, budget)
            except (OSError, ValueError) as exc:
                errors.append(ManifestError(str(path), "-", f"cannot read: {exc}"))
                continue
            budget -= len(text)
            if path.suffix == ".json":
                try:
                    objects.append(RawObject(str(path), load_json(text)))
                except ValueError as exc:
                    errors.append(ManifestError(str(path), "-", f"{exc}; the file is skipped"))
                continue
            more, bad = _read_yaml(path, text)
            objects += more
            errors += bad
    return objects, errors


def load_inventory(paths: Iterable[str | Path]) -> tuple[Inventory, list[ManifestError]]:
    objects, errors = read_objects(paths)
    inventory, more = build_inventory(objects, parse_yaml)
    return inventory, errors + more

"""Turning verdicts into the stable JSON contract and into rows a human can scan. No I/O: callers print."""

from __future__ import annotations

import json
from typing import Any, Iterable, Iterator, Sequence

from .compose import ComposedCell
from .drift import CheckedCell
from .programmed import ProgrammedJudgement
from .findings import Finding
from .model import FAMILY_NAMES, Judgement, PortRange, Protocol
from .reachability import Cell, NetworkReachability


def port_json(ports: PortRange | None) -> dict[str, Any]:
    """`port: null` = every port of the pair not listed in another cell; a range adds `end_port`."""
    if ports is None:
        return {"port": None}
    out: dict[str, Any] = {"port": ports.first}
    if ports.last != ports.first:
        out["end_port"] = ports.last
    return out


def judgement_json(judgement: Judgement) -> dict[str, Any]:
    return {
        "because": judgement.because,
        "reasons": [{"ref": r.ref, "detail": r.detail} for r in judgement.reasons],
    }


def plane_json(judgement: Judgement | None) -> dict[str, Any] | None:
    """A programmed or observed plane: null when it was not read (or not probed)."""
    return None if judgement is None else {"verdict": judgement.verdict.value, **judgement_json(judgement)}


def composed_cell_json(cell: ComposedCell) -> dict[str, Any]:
    """A cell of the cluster's view: the cell JSON of a checked cell, with the node that judged each half."""
    return {"from": cell.source, "to": cell.destination, **port_json(None if cell.ports.is_all else cell.ports),
            "protocol": cell.ports.protocol.value, **family_json(cell.family), "expected": cell.expected.verdict.value,
            "because": cell.expected.because, "programmed": plane_json(cell.programmed),
            "observed": plane_json(cell.observed), "drift": [d.value for d in cell.drift],
            "judged_by": dict(sorted(cell.judged_by.items()))}
def family_json(family: int | None) -> dict[str, Any]:
    """`"family": "ipv4"|"ipv6"` on the cells of a dual-stack network; nothing elsewhere."""
    return {} if family is None else {"family": FAMILY_NAMES[family]}


def expected_json(protocol: Protocol, ports: PortRange | None, judgement: Judgement,
                  family: int | None = None) -> dict[str, Any]:
    """A cell's keys after `from`/`to`: what a grouped verdict lists for every pair of its classes."""
    return {**port_json(ports), "protocol": protocol.value, **family_json(family), "expected": judgement.verdict.value,
            "because": judgement.because}


def cell_json(cell: Cell | CheckedCell) -> dict[str, Any]:
    """The one JSON shape of a cell, for every command and the agent's API: the expected verdict of a pair over
    a port range, and, for a checked cell, its probe port, the programmed and observed planes and its drift.
    The network is named by the enclosing record."""
    if isinstance(cell, Cell):
        return {"from": cell.source, "to": cell.destination,
                **expected_json(cell.protocol, cell.ports, cell.judgement, cell.family)}
    out: dict[str, Any] = {"from": cell.source, "to": cell.destination,
                           **port_json(None if cell.ports.is_all else cell.ports), "protocol": cell.protocol.value,
                           **family_json(cell.family)}
    out.update({"expected": cell.expected.verdict.value, "because": cell.expected.because,
                "sample_port": cell.sample_port, "programmed": plane_json(cell.programmed),
                "observed": plane_json(cell.observed), "drift": [d.value for d in cell.drift]})
    here = cell.programmed.judged_here if isinstance(cell.programmed, ProgrammedJudgement) else None
    if here is not None:  # interconnect: this node's zone judged only these halves (the rest: remote)
        out["judged_here"] = sorted(d.value for d in here)
        out["expected_here"] = cell.expected_here.value if cell.expected_here is not None else None
    return out


# --- `matrix -o json`: grouped (default) or per pair, both streamed --------------------------------------------

def _head(matrix: NetworkReachability, form: str) -> dict[str, Any]:
    return {"network": str(matrix.network), "profile": matrix.profile.name, "form": form}


def class_json(matrix: NetworkReachability, c: int) -> dict[str, Any]:
    side = matrix.sides[c]
    return {"id": c, "members": [e.key for e in matrix.members[c]],
            "policies": [str(ref) for ref in matrix.class_policies(c)],
            "isolated": sorted(d.value for d in side.isolated)}


def class_row_json(matrix: NetworkReachability, c: int) -> dict[str, Any]:
    """One source class: [destination class, verdict id] for every class it has pairs with."""
    return {"from": c, "to": matrix.row_shape_ids(c)}


def verdict_json(matrix: NetworkReachability, vid: int) -> dict[str, Any]:
    return {"id": vid, "cells": [expected_json(*cell) for cell in matrix.shapes[vid]]}


def _dump(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def _chunks(head: dict[str, Any], parts: Iterable[tuple[str, Iterable[str]]], findings: Sequence[Finding]) -> Iterator[str]:
    """One compact JSON object, in pieces: the head's keys, then each (key, encoded items) as a list written
    item by item, then the findings."""
    yield _dump(head)[:-1]
    for name, items in parts:
        yield f',"{name}":['
        for i, item in enumerate(items):
            yield ("," if i else "") + item
        yield "]"
    yield ',"findings":' + _dump([f.to_json() for f in findings]) + "}"


def grouped_json_chunks(matrix: NetworkReachability, findings: Sequence[Finding]) -> Iterator[str]:
    """The grouped form: classes (members listed once), class x class rows naming a verdict id, then the
    verdicts those ids stand for. Written row by row: memory grows with classes and distinct verdicts, not pairs."""
    n = len(matrix.members)
    yield from _chunks(_head(matrix, "grouped"), [
        ("classes", (_dump(class_json(matrix, c)) for c in range(n))),
        ("matrix", (_dump(class_row_json(matrix, c)) for c in range(n))),
        ("verdicts", _verdicts(matrix)),
    ], findings)


def _verdicts(matrix: NetworkReachability) -> Iterator[str]:
    # A generator function: it counts the verdicts only when reached, once every row has numbered its own.
    for vid in range(len(matrix.shapes)):
        yield _dump(verdict_json(matrix, vid))


def pairs_json_chunks(matrix: NetworkReachability, findings: Sequence[Finding]) -> Iterator[str]:
    """The per-pair form (`--pairs`): every cell of every pair (`cell_json`'s shape), written pair by pair. Each
    shape's cells are encoded once; a pair only adds its names."""
    yield from _chunks(_head(matrix, "pairs"), [("cells", _pair_cells(matrix))], findings)


def _pair_cells(matrix: NetworkReachability) -> Iterator[str]:
    encoded: dict[int, list[str]] = {}
    for src, dst, sid in matrix.pair_shapes():
        tails = encoded.get(sid)
        if tails is None:
            tails = encoded[sid] = [_dump(expected_json(*cell))[1:] for cell in matrix.shapes[sid]]
        names = f'{{"from":{_dump(src.key)},"to":{_dump(dst.key)},'
        yield ",".join(names + tail for tail in tails)


def matrix_json(matrix: NetworkReachability, findings: Sequence[Finding], pairs: bool = False) -> dict[str, Any]:
    """The same document as one value (for YAML and tests)."""
    chunks = pairs_json_chunks if pairs else grouped_json_chunks
    loaded: dict[str, Any] = json.loads("".join(chunks(matrix, findings)))
    return loaded


def finding_text(finding: Finding) -> str:
    """`kind: ns/policy: message`, the line every table prints after its severity."""
    who = f"{finding.policy}: " if finding.policy else ""
    return f"{finding.kind.value}: {who}{finding.message}"


def port_text(ports: PortRange | None) -> str:
    return "*" if ports is None else (str(ports.first) if ports.first == ports.last else f"{ports.first}-{ports.last}")


def cell_port_text(ports: PortRange | None, protocol: Protocol, family: int | None = None) -> str:
    """`5432/TCP`, and on a dual-stack network `5432/TCP ipv6`."""
    return f"{port_text(ports)}/{protocol.value}" + (f" {FAMILY_NAMES[family]}" if family is not None else "")


def cell_row(cell: Cell) -> list[str]:
    return [cell.source, cell.destination, cell_port_text(cell.ports, cell.protocol, cell.family), cell.verdict.value,
            ", ".join(cell.judgement.because)]


GRID_LEGEND = ("grid: rows are sources, columns destinations (numbered as the rows); each pair's TCP verdict on "
               "the ports no rule names: . allowed, X denied, ? unknown; + some ports differ (see the rows below); "
               "- no cell (the same endpoint, or traffic between two external hosts)")


def _glyph(shape: Sequence[tuple[Protocol, PortRange | None, Judgement, int | None]]) -> str:
    """A pair's `*` TCP verdict (of its first family), plus `+` where some ports, protocols or the other family
    differ from it."""
    default = next(j for proto, ports, j, _ in shape if proto is Protocol.TCP and ports is None)
    return default.verdict.glyph + ("+" if any(j.verdict is not default.verdict for _, _, j, _ in shape) else "")


def _glyph_grid(labels: Sequence[str], glyph: Any) -> list[list[str]]:
    rows = [[""] + [str(i) for i in range(len(labels))]]
    rows.extend([f"{i} {label}"] + [glyph(i, j) for j in range(len(labels))] for i, label in enumerate(labels))
    return rows


def grid(matrix: NetworkReachability, cells: Iterable[Cell]) -> list[list[str]]:
    """A compact glyph grid (rows: sources, columns: destinations) of each pair's `*` TCP verdict, plus a
    `+` where some ports differ from it: the picture one scans before reading rows."""
    keys = [e.key for e in matrix.endpoints]
    shapes: dict[tuple[str, str], list[tuple[Protocol, PortRange | None, Judgement, int | None]]] = {}
    for cell in cells:
        shapes.setdefault((cell.source, cell.destination), []).append(
            (cell.protocol, cell.ports, cell.judgement, cell.family))
    return _glyph_grid(keys, lambda i, j: _glyph(shapes[(keys[i], keys[j])]) if (keys[i], keys[j]) in shapes else "-")


def class_grid(matrix: NetworkReachability) -> list[list[str]]:
    """The grid of the grouped view: rows and columns are classes (`C<id>`, with their size)."""
    n = len(matrix.members)
    pairs = [set(matrix.class_pairs(c)) for c in range(n)]
    labels = [f"C{c} ({len(matrix.members[c])})" for c in range(n)]
    return _glyph_grid(labels, lambda i, j: _glyph(matrix.shape(i, j)) if j in pairs[i] else "-")


def class_rows(matrix: NetworkReachability) -> Iterator[list[str]]:
    """FROM, TO, PORT, EXPECTED, BECAUSE per class pair (classes as `C<id>`)."""
    for c in range(len(matrix.members)):
        for d in matrix.class_pairs(c):
            for proto, ports, j, family in matrix.shape(c, d):
                yield [f"C{c}", f"C{d}", cell_port_text(ports, proto, family), j.verdict.value, ", ".join(j.because)]


def class_member_rows(matrix: NetworkReachability) -> Iterator[list[str]]:
    """CLASS, MEMBERS, SELECTED BY: each endpoint listed once."""
    for c in range(len(matrix.members)):
        policies = ", ".join(map(str, matrix.class_policies(c))) or "-"
        yield [f"C{c}", ", ".join(e.key for e in matrix.members[c]), policies]

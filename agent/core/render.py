"""Turning verdicts into the stable JSON contract and into rows a human can scan. No I/O: callers print."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from .drift import CheckedCell
from .findings import Finding
from .model import Judgement, PortRange
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


def cell_json(cell: Cell | CheckedCell) -> dict[str, Any]:
    """The one JSON shape of a cell, for every command and the agent's API: the expected verdict of a pair over
    a port range, and, for a checked cell, its probe port, the programmed and observed planes and its drift.
    The network is named by the enclosing record."""
    ports = cell.ports if isinstance(cell, Cell) else (None if cell.ports.is_all else cell.ports)
    out: dict[str, Any] = {"from": cell.source, "to": cell.destination, **port_json(ports),
                           "protocol": cell.protocol.value}
    if isinstance(cell, Cell):
        out.update({"expected": cell.verdict.value, "because": cell.judgement.because})
        return out
    out.update({"expected": cell.expected.verdict.value, "because": cell.expected.because,
                "sample_port": cell.sample_port, "programmed": plane_json(cell.programmed),
                "observed": plane_json(cell.observed), "drift": [d.value for d in cell.drift]})
    return out


def matrix_json(matrix: NetworkReachability, findings: Sequence[Finding]) -> dict[str, Any]:
    return {
        "network": str(matrix.network),
        "profile": matrix.profile.name,
        "cells": [cell_json(c) for c in matrix.cells()],
        "findings": [f.to_json() for f in findings],
    }


def port_text(ports: PortRange | None) -> str:
    return "*" if ports is None else (str(ports.first) if ports.first == ports.last else f"{ports.first}-{ports.last}")


def cell_row(cell: Cell) -> list[str]:
    return [cell.source, cell.destination, f"{port_text(cell.ports)}/{cell.protocol.value}", cell.verdict.value,
            ", ".join(cell.judgement.because)]


GRID_LEGEND = ("grid: rows are sources, columns destinations (numbered as the rows); each pair's TCP verdict on "
               "the ports no rule names: . allowed, X denied, ? unknown; + some ports differ (see the rows below); "
               "- no cell (the same endpoint, or traffic between two external hosts)")


def grid(matrix: NetworkReachability, cells: Iterable[Cell]) -> list[list[str]]:
    """A compact glyph grid (rows: sources, columns: destinations) of each pair's `*` TCP verdict, plus a
    `+` where some ports differ from it: the picture one scans before reading rows."""
    keys = [e.key for e in matrix.endpoints]
    default: dict[tuple[str, str], str] = {}
    for cell in cells:
        k = (cell.source, cell.destination)
        if cell.ports is None and cell.protocol.value == "TCP":
            default[k] = cell.verdict.glyph + default.get(k, "")
        elif k in default and not default[k].endswith("+"):
            default[k] += "+"
    rows = [[""] + [str(i) for i in range(len(keys))]]
    for i, src in enumerate(keys):
        rows.append([f"{i} {src}"] + [default.get((src, dst), "-") for dst in keys])
    return rows

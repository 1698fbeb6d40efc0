"""Which policy and which pair a drift is about: the per-policy counts and the worst drifting pairs.

A drifting cell is attributed to the policies that decide its expected verdict (the rules that allow it, or the
policies that isolate the side that denies it): the promise the drift breaks. A cell no policy decides (neither
side isolated) is attributed to `NO_POLICY`. Both views stay bounded: by the policies, and by a cap on pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from .drift import CheckedCell, DriftClass

NO_POLICY = "(none)"
# Worst first: a leak breaks segmentation, a blackhole breaks service, then the planes' disagreements.
SEVERITY = (DriftClass.LEAK, DriftClass.BLACKHOLE, DriftClass.CONTROLLER, DriftClass.DATAPLANE, DriftClass.UNKNOWN)
_RANK = {cls: i for i, cls in enumerate(SEVERITY)}


def deciding_policies(cell: CheckedCell) -> tuple[str, ...]:
    """`ns/name` of the policies behind the expected verdict; refs read `ns/name:direction[index]` (a rule) or
    `ns/name:direction` (an isolating policy); `side:direction-not-isolated` names no policy."""
    names = {ref.partition(":")[0] for ref in cell.expected.because}
    return tuple(sorted(n for n in names if "/" in n)) or (NO_POLICY,)


def policy_drift(cells: Iterable[CheckedCell]) -> dict[tuple[str, DriftClass], int]:
    """Drifting cells per (policy, class); a cell two policies decide counts for both."""
    counts: dict[tuple[str, DriftClass], int] = {}
    for cell in cells:
        if not cell.drift:
            continue
        for policy in deciding_policies(cell):
            for cls in cell.drift:
                counts[(policy, cls)] = counts.get((policy, cls), 0) + 1
    return counts


@dataclass(frozen=True)
class PairDrift:
    """One drifting pair of a network, described by its worst cell."""

    network: str
    source: str
    destination: str
    worst: DriftClass
    cells: int  # drifting cells of the pair
    port: str  # the worst cell's sample port, e.g. "5432/TCP"
    policies: tuple[str, ...]  # deciding the worst cell


def _worst(cell: CheckedCell) -> int:
    return min(_RANK[cls] for cls in cell.drift)


def drifting_pairs(cells: Iterable[CheckedCell]) -> list[PairDrift]:
    """Every (network, pair) with a drifting cell, worst first: by class severity, then more drifting cells, then
    by name (a stable order, so a capped list does not flap between equals)."""
    by_pair: dict[tuple[str, str, str], list[CheckedCell]] = {}
    for cell in cells:
        if cell.drift:
            by_pair.setdefault((cell.network, cell.source, cell.destination), []).append(cell)
    pairs = []
    for (network, source, destination), drifting in by_pair.items():
        worst = min(drifting, key=lambda c: (_worst(c), c.protocol.value, c.ports.first))
        pairs.append(PairDrift(network, source, destination, SEVERITY[_worst(worst)], len(drifting),
                               f"{worst.sample_port}/{worst.protocol.value}", deciding_policies(worst)))
    pairs.sort(key=lambda p: (_RANK[p.worst], -p.cells, p.network, p.source, p.destination))
    return pairs

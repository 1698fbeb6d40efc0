"""The agent's working set: one record per planned cell, grouped by network, for one version of the planes.

A record holds the check point as planned (expected and programmed verdicts), its last observation, and what
readers see (the cell with that observation). An observation remembers the planes it was taken under: when
either plane's verdict for the cell changes, the observation says nothing about the new state and is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.drift import CheckedCell, DriftClass
from ..core.findings import Finding
from ..core.model import Judgement, Verdict
from ..core.programmed import MappingStatus
from ..core.state import DeclaredError
from .checker import Checker

Planes = tuple[Verdict, "Verdict | None"]  # (expected, programmed or None when NB is not read)
CellId = tuple[str, tuple[str, str, str, int, int]]  # (network, cell key)
NOT_SCHEDULED = -1


def planes_of(cell: CheckedCell) -> Planes:
    return (cell.expected.verdict, cell.programmed.verdict if cell.programmed is not None else None)


@dataclass(frozen=True)
class Observation:
    judgement: Judgement
    at: float
    planes: Planes


class CellRecord:
    """One planned cell. `ticket` identifies its live entry in the probe schedule (NOT_SCHEDULED: none)."""

    __slots__ = ("id", "network", "index", "cell", "planes", "probed", "sentinel", "observation", "view", "ticket")

    def __init__(self, network: "NetworkPlan", index: int, cell: CheckedCell, probed: bool,
                 observation: Observation | None) -> None:
        self.id: CellId = (network.name, cell.key)
        self.network, self.index, self.cell, self.probed = network, index, cell, probed
        self.planes = planes_of(cell)
        self.sentinel = False
        self.ticket = NOT_SCHEDULED
        self.observation: Observation | None = None
        self.view = cell
        if observation is not None and observation.planes == self.planes:
            self.observation, self.view = observation, cell.with_observed(observation.judgement)

    def observe(self, observation: Observation) -> tuple[DriftClass, ...]:
        """Record an observation; returns the drift the readers saw before (the caller compares)."""
        before = self.view.drift
        self.observation = observation
        self.view = self.cell.with_observed(observation.judgement)
        self.network.views[self.index] = self.view
        return before


@dataclass(eq=False)
class NetworkPlan:
    """One network's checker, findings and records; `views` is what readers see, kept in record order."""

    checker: Checker
    findings: tuple[Finding, ...]
    mapping: MappingStatus | None
    records: list[CellRecord] = field(default_factory=list)
    views: list[CheckedCell] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.checker.network)


@dataclass(eq=False)
class Plan:
    """What only changes with the declared or programmed state."""

    networks: tuple[NetworkPlan, ...]
    by_id: dict[CellId, CellRecord]
    errors: tuple[DeclaredError, ...]
    unplaced: tuple[Finding, ...] = ()  # findings no network shows (e.g. a NetworkPolicy, a missing NAD)

    def records(self) -> list[CellRecord]:
        return [r for net in self.networks for r in net.records]

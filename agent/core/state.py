"""The agent's published state: one immutable snapshot that metrics and the HTTP API read whole."""

from __future__ import annotations

from dataclasses import dataclass, field

from .drift import CheckedCell, has_drift, summarize
from .findings import Finding
from .model import Ref
from .programmed import MappingStatus

PROBE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
ROUND_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class Histogram:
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
        self.total += value
        self.count += 1

    def copy(self) -> "Histogram":
        h = Histogram(self.buckets)
        h.counts, h.total, h.count = list(self.counts), self.total, self.count
        return h


@dataclass(frozen=True)
class SourceHealth:
    name: str
    up: bool
    staleness_seconds: float
    detail: str = ""
    configured: bool = True  # False: the agent runs without it (e.g. --from-files without OVN), so it is no fault


@dataclass(frozen=True)
class DeclaredError:
    """An object of the declared source that does not parse now."""

    source: str  # the declared source: files or kubernetes
    kind: str  # the object's kind, "-" when its text does not say
    message: str  # file, document, object and problem
    kept: bool  # its last good version is still in use (staleness counts from when it was read)


@dataclass(frozen=True)
class NetworkState:
    network: Ref
    cells: tuple[CheckedCell, ...]
    findings: tuple[Finding, ...]
    mapping: MappingStatus | None


@dataclass(frozen=True)
class AgentState:
    """Everything readers need, built whole by the loop and swapped in one assignment."""

    node: str
    profile: str
    version: str
    evaluated_at: float
    networks: tuple[NetworkState, ...]
    sources: tuple[SourceHealth, ...]
    probes_by_result: dict[str, int]
    probe_durations: Histogram
    round_durations: Histogram
    rounds: int
    last_drift_change: float
    declared_errors: tuple[DeclaredError, ...] = ()
    unplaced_findings: tuple[Finding, ...] = ()  # declared-plane findings that belong to no network

    def drift_counts(self) -> dict[Ref, dict[str, int]]:
        return {n.network: summarize(n.cells) for n in self.networks}



def drift_total(state: AgentState) -> int:
    """Cells with drift other than `unknown`."""
    return sum(1 for n in state.networks for c in n.cells if has_drift(c))

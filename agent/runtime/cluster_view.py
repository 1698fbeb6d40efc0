"""`verify --cluster` / `drift --cluster`: every agent's halves gathered and composed into whole cells."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from ..adapters.agent_client import AgentClient, AgentUnreachable
from ..core.compose import ComposedCell, NodeHalf, compose, halves_from_agent
from ..core.drift import has_drift
from ..core.model import Verdict
from .status import Status


@dataclass
class ClusterReport:
    nodes: list[str] = field(default_factory=list)  # the agents that answered
    unreachable: list[str] = field(default_factory=list)  # agents (URL: why) that did not
    sources_down: list[str] = field(default_factory=list)  # node: source
    checked: list[ComposedCell] = field(default_factory=list)  # every composed cell
    drift_only: bool = False

    @property
    def cells(self) -> list[ComposedCell]:
        """The cells to show: every one, or (drift) the drifting ones."""
        return [c for c in self.checked if c.drift] if self.drift_only else self.checked

    @property
    def status(self) -> Status:
        if any(has_drift(c) for c in self.checked):
            return Status.DRIFT
        incomplete = self.unreachable or self.sources_down or not self.checked or \
            any(c.programmed.verdict is Verdict.UNKNOWN for c in self.checked)
        return Status.COULD_NOT_CHECK if incomplete else Status.MATCH


def cluster_view(clients: Sequence[AgentClient], network: str | None = None, drift_only: bool = False) -> ClusterReport:
    """Ask every agent for its cells and compose them; an agent that does not answer is named, its halves are
    missing (those cells are unknown, never allowed)."""
    report = ClusterReport(drift_only=drift_only)
    halves: list[NodeHalf] = []
    for client in clients:
        try:
            data = client.matrix(network)
            node = str(data.get("node") or client.url)
            for net in data.get("networks", []):
                halves += halves_from_agent(node, str(net["network"]), net.get("cells", []))
        except (AgentUnreachable, ValueError, KeyError, TypeError) as exc:
            report.unreachable.append(f"{client.url}: {exc}")
            continue
        report.nodes.append(node)
        report.sources_down += [f"{node}: {s.get('source')}" for s in data.get("sources", []) if not s.get("up")]
    report.checked = compose(halves)
    return report

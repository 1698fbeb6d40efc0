"""Where the programmed and observed planes come from, as protocols: a node (the DaemonSet) or the lab.

The use cases and the agent see only these; which implementation runs is chosen by the CLI
(`adapters/node_sources.py` on a node, `lab/sources.py` for the embedded lab).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, TypeVar

from .model import Endpoint
from .northbound import NbSnapshot, OvsSnapshot
from .probe import Prober, SendPoint

Snapshot = TypeVar("Snapshot", covariant=True)


class SourceUnavailable(RuntimeError):
    """A source cannot be read now; retrying later can help (its plane is unknown meanwhile)."""


class SnapshotReader(Protocol[Snapshot]):
    """A database replica: consistent snapshots on demand, `on_change` called when the server pushes a change."""

    on_change: Callable[[], None] | None

    def snapshot(self) -> Snapshot: ...

    def close(self) -> None: ...


class Locator(Protocol):
    """Where this node can act as an endpoint (None: not here, or not positively identified)."""

    def send_point(self, endpoint: Endpoint) -> SendPoint | None:
        """Where probes from `endpoint` leave."""
        ...

    def application_netns(self, endpoint: Endpoint) -> str | None:
        """The namespace whose own sockets speak for `endpoint` (a pod's namespace, a VM's guest), for
        protocol follow-ups such as the PostgreSQL startup exchange."""
        ...


@dataclass(frozen=True)
class Trace:
    """A dataplane trace of one packet through OVN's logical pipeline."""

    verdict: str  # "delivered", "dropped" or "unknown"
    text: str


class Tracer(Protocol):
    def __call__(self, datapath: str, flow: str) -> Trace: ...


class LivenessCheck(Protocol):
    """Asks one daemon or service whether it answers: (answering, what it said or why not). Never raises."""

    name: str

    def __call__(self) -> tuple[bool, str]: ...


class Sources(Protocol):
    """Everything a check needs besides the declared state."""

    name: str  # "node" or "lab", for messages
    # True where this node sees every workload (the one-node lab); a cluster node checks only its own.
    sees_every_workload: bool
    # The node whose OVN zone the NB is (interconnect: each node judges only the halves it runs); None when one
    # zone holds every workload.
    node: str | None

    def unavailable(self) -> str | None:
        """Why nothing can be checked here at all (None: go ahead)."""
        ...

    def northbound(self, timeout: float = 5.0) -> SnapshotReader[NbSnapshot] | None: ...

    def open_vswitch(self, timeout: float = 5.0) -> SnapshotReader[OvsSnapshot] | None: ...

    def tracer(self) -> Tracer | None: ...

    def locator(self) -> Locator: ...

    def prober(self) -> Prober: ...

    def daemon_checks(self) -> list[LivenessCheck]:
        """Liveness of the node's datapath and OVN controller (ovs-vswitchd, ovn-controller)."""
        ...

    def close(self) -> None:
        """Release what the sources started (e.g. the server of a database file)."""
        ...

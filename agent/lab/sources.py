"""The embedded lab as the sources of a check: its databases, its namespaces as send points, its ovn-trace."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..adapters.manifest_files import load_inventory
from ..adapters.ovsdb import NorthboundReader, OvsReader
from ..adapters.liveness import controller_check, vswitchd_check
from ..adapters.probers import make_prober
from ..adapters.trace import OvnTracer
from ..core.northbound import NbSnapshot, OvsSnapshot
from ..core.probe import Prober
from ..core.sources import LivenessCheck, Locator, SnapshotReader, Tracer
from .errors import LabUnavailable
from .lab import Lab
from .locator import LabLocator
from .topology import TOPOLOGIES, LabTopology, topology_from_inventory


def manifest_topology(paths: Sequence[str]) -> LabTopology | None:
    """The lab hosts the manifests `paths` make (their first localnet network, else their first layer2 one);
    None: keep the seed's (the check then says what it cannot locate)."""
    if not paths:
        return None
    inventory, _ = load_inventory(paths)
    built = sorted((TOPOLOGIES.index(net.topology), ref) for ref, net in inventory.networks.items()
                   if net.topology in TOPOLOGIES)
    if not built:
        return None
    try:
        return topology_from_inventory(inventory, built[0][1])
    except ValueError:
        return None


class LabSources:
    """The lab built in `state_dir` with namespace `prefix`; its hosts follow the manifests it was built from."""

    name = "lab"
    sees_every_workload = True  # one node: every workload of the lab is local
    node: str | None = None  # ... and its one OVN zone holds them all

    def __init__(self, lab: Lab, prober_name: str = "raw"):
        self.lab = lab
        self.prober_name = prober_name
        self._locator = LabLocator(lab)

    @classmethod
    def build(cls, state_dir: Path, prefix: str, paths: Sequence[str] = (), prober_name: str = "raw") -> "LabSources":
        """The lab in `state_dir`, its hosts as built from the manifests `paths` (the seed's by default)."""
        lab = Lab(state_dir=state_dir, prefix=prefix)
        lab.topology = manifest_topology(paths) or lab.topology
        return cls(lab, prober_name)

    def unavailable(self) -> str | None:
        if self.lab.is_healthy():
            return None
        return f"the lab in {self.lab.state_dir} (prefix {self.lab.prefix!r}) is not up: run `segcheck lab up`"

    def northbound(self, timeout: float = 5.0) -> SnapshotReader[NbSnapshot] | None:
        return NorthboundReader(self.lab.nb_url, timeout=timeout)

    def open_vswitch(self, timeout: float = 5.0) -> SnapshotReader[OvsSnapshot] | None:
        return OvsReader(self.lab.ovs_url, timeout=timeout)

    def tracer(self) -> Tracer | None:
        """The lab's own ovn-trace: it must match the ovn-northd that wrote the lab's southbound."""
        try:
            return OvnTracer(self.lab.sb_url, tuple(self.lab.ovn_trace_command()))
        except LabUnavailable:
            return None

    def locator(self) -> Locator:
        return self._locator

    def prober(self) -> Prober:
        return make_prober(self.prober_name)

    def daemon_checks(self) -> list[LivenessCheck]:
        daemons = self.lab.daemons
        return [vswitchd_check(daemons["ovs-vswitchd"].control_socket),
                controller_check(daemons["ovn-controller"].control_socket)]

    def close(self) -> None:
        """The lab outlives a check: only the locator's OVS replica is released."""
        self._locator.close()

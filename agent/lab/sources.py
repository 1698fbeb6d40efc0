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
from .topology import topology_from_inventory


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
        if paths:
            inventory, _ = load_inventory(paths)
            localnets = sorted(ref for ref, net in inventory.networks.items() if net.topology == "localnet")
            if localnets:
                try:
                    lab.topology = topology_from_inventory(inventory, localnets[0])
                except ValueError:
                    pass  # keep the seed's hosts; the check says what it cannot locate
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
        """The lab outlives a check: nothing to release."""

"""The sources of a real node (the DaemonSet's view): its OVN NB/SB and OVS sockets, its network namespaces
found through /proc (hostPID), and a prober that sends from inside them."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from ..core.northbound import NbSnapshot, OvsSnapshot
from ..core.probe import Prober
from ..core.sources import LivenessCheck, Locator, SnapshotReader, Tracer
from .db_file import ServedDatabase, is_database_file
from .liveness import controller_check, pidfile_socket, vswitchd_check
from .node_locator import NodeLocator
from .ovsdb import DEFAULT_NB, DEFAULT_OVS, DEFAULT_SB, NorthboundReader, OvsReader
from .probers import make_prober
from .trace import OvnTracer


@dataclass
class NodeSources:
    nb_url: str | None = DEFAULT_NB
    ovs_url: str | None = DEFAULT_OVS
    sb_url: str | None = DEFAULT_SB
    prober_name: str = "raw"
    node: str | None = None  # this node: its NB is its own OVN zone (OpenShift 4.14's interconnect mode)
    # Where ovs-vswitchd's and ovn-controller's pidfiles and control sockets are (their liveness is asked there);
    # on OpenShift 4.14 (interconnect), ovnkube-node's ovn-controller runs from /var/run/ovn-ic.
    ovs_rundir: Path = Path("/var/run/openvswitch")
    ovn_rundir: Path = Path("/var/run/ovn-ic")
    name: str = "node"
    sees_every_workload: bool = False

    def __post_init__(self) -> None:
        self._locator = NodeLocator()
        self._served: dict[str, str] = {}  # database file -> the URL of its private server
        self._resources = ExitStack()

    def unavailable(self) -> str | None:
        return None  # each database says for itself whether it can be read

    def _url(self, value: str) -> str:
        """A server URL as given; a database file (a support bundle's) is served to us on first use."""
        if not is_database_file(value):
            return value
        if value not in self._served:
            self._served[value] = self._resources.enter_context(ServedDatabase(value))
        return self._served[value]

    def northbound(self, timeout: float = 5.0) -> SnapshotReader[NbSnapshot] | None:
        return NorthboundReader(self._url(self.nb_url), timeout=timeout) if self.nb_url else None

    def open_vswitch(self, timeout: float = 5.0) -> SnapshotReader[OvsSnapshot] | None:
        return OvsReader(self._url(self.ovs_url), timeout=timeout) if self.ovs_url else None

    def daemon_checks(self) -> list[LivenessCheck]:
        return [vswitchd_check(pidfile_socket(self.ovs_rundir / "ovs-vswitchd.pid", "ovs-vswitchd")),
                controller_check(pidfile_socket(self.ovn_rundir / "ovn-controller.pid", "ovn-controller"))]

    def close(self) -> None:
        """Stop the servers of database files."""
        self._resources.close()
        self._served.clear()

    def tracer(self) -> Tracer | None:
        return OvnTracer(self.sb_url) if self.sb_url else None

    def locator(self) -> Locator:
        return self._locator

    def prober(self) -> Prober:
        return make_prober(self.prober_name)

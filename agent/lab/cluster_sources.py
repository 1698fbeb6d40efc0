"""One node of the lab cluster as the sources of a check or an agent: that zone's NB and SB, that node's OVS, its
workloads found by OVS identity. A node sees only its own workloads (`sees_every_workload` is False), so the
runtime runs one agent per node, as the DaemonSet does."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .cluster import LabCluster
from .errors import LabUnavailable
from .sources import LabSources, manifest_topology


class LabNodeSources(LabSources):
    sees_every_workload = False

    def __init__(self, cluster: LabCluster, node: str, prober_name: str = "raw") -> None:
        if node not in cluster.nodes:
            raise KeyError(f"no node {node!r} in the lab cluster (have {', '.join(cluster.nodes)})")
        super().__init__(cluster.nodes[node], prober_name)
        self.cluster, self.node = cluster, node

    @classmethod
    def build_node(cls, state_dir: Path, node: str, paths: Sequence[str] = (),
                   prober_name: str = "raw") -> "LabNodeSources":
        """Node `node` of the cluster recorded in `state_dir`, its workloads as built from the manifests `paths`."""
        cluster = LabCluster.recorded(state_dir, topology=manifest_topology(paths))
        if cluster is None:
            raise LabUnavailable(f"no lab cluster in {state_dir}: run `segcheck lab up --nodes N`")
        return cls(cluster, node, prober_name)

    def unavailable(self) -> str | None:
        if self.cluster.is_healthy():
            return None
        return (f"the lab cluster in {self.cluster.state_dir} (prefix {self.cluster.prefix!r}) is not up: run "
                "`segcheck lab up --nodes N`")

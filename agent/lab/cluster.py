"""The lab as an OVN-Kubernetes interconnect cluster: one OVN zone per node, nodes joined by a physical segment.

Each node is a one-node `Lab` of its own (its namespace `<stem>w<i>-ovs` with OVS br-int/br-ex, the bridge
mapping, NB, SB, northd and ovn-controller) holding only the workloads placed on that node: its NB has only their
logical switch ports (on layer2 also the `remote` ones, below), and `apply` programs each zone with only its local
port-group members, as OVN-K does in interconnect mode (4.14's default). A remote workload has no port at all in a
zone's localnet switch. The nodes' br-ex are joined by `PhysicalSegment` (a Linux bridge, the PostgreSQL `db` on
it), so traffic between nodes really leaves one node's br-ex and enters the other's. The zones are interconnected
as OVN-K does (`interconnect`: each node a geneve chassis with its encap IP on br-ex, known to every other zone as
a remote chassis). A layer2
network has a switch in every zone with the same tunnel key; a zone holds its local workloads' ports and every
other node's workload as a `type=remote` port bound to that node's chassis, so traffic to it tunnels (geneve)
to its node over the same segment.

Placement: a workload's node from the manifests (a pod's `spec.nodeName`, a VMI's `status.nodeName`) when it
names one of the cluster's nodes (`worker-0` ... `worker-<N-1>`); the others are dealt round robin in the order
pods then VMs, by namespace/name (the seed: podclient on worker-0, vm-server on worker-1).

Layout under the state directory: `cluster.json` (written before anything is made, so `down` can undo a partial
`up`), `nodes/<node>/` (each node lab's own state directory), `segment/` (the physical hosts' files).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Mapping

from segcheck.agent.core.enforcement import DEFAULT_PROFILE, OvnkProfile
from segcheck.agent.core.inventory import Inventory
from segcheck.agent.core.model import Ref
from segcheck.agent.core.ovnk.desired import desired_state

from . import interconnect, netns, procs, state
from .controller import ApplyReport, LabController
from .errors import LabError, LabUnavailable
from .lab import DEFAULT_PREFIX, Lab
from .ovs_install import DEFAULT_CACHE_DIR
from .polling import require
from .postgres import PostgresServer
from .segment import PhysicalSegment
from .topology import LabTopology, PodAttachment, RemoteAttachment, VmAttachment, seed_topology

log = logging.getLogger(__name__)

CLUSTER_FILE = "cluster.json"
NODES_DIR = "nodes"
DEFAULT_NODES = 2
MAX_NODES = 8  # each node costs ~60 MiB and two OVSDB servers; more says nothing a small cluster does not
NODE_NAME = "worker-{}"
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,7}-$")  # the nodes' prefixes add `w<i>` and must stay Lab prefixes
READY_TIMEOUT = 30.0
INITDB_TIMEOUT = 120.0

Workload = PodAttachment | VmAttachment


def node_names(count: int) -> list[str]:
    return [NODE_NAME.format(i) for i in range(count)]


def place(topology: LabTopology, nodes: list[str], declared: Mapping[Ref, str | None]) -> dict[str, str]:
    """Workload name -> node. `declared` gives the node the manifests name (None: not placed by them)."""
    placement: dict[str, str] = {}
    unplaced: list[Workload] = []
    for att in topology.attachments:
        node = declared.get(att.ref)
        if node is None:
            unplaced.append(att)
        elif node not in nodes:
            raise ValueError(f"{att.ref} is on node {node!r}, which this lab does not have ({', '.join(nodes)}): "
                             f"bring it up with more --nodes or change the manifest")
        else:
            placement[att.name] = node
    for i, att in enumerate(sorted(unplaced, key=lambda a: (isinstance(a, VmAttachment), a.ref))):
        placement[att.name] = nodes[i % len(nodes)]
    return placement


def declared_nodes(inventory: Inventory, network: Ref) -> dict[Ref, str | None]:
    """The node each workload of `network` runs on, as the manifests say."""
    return {att.ref: att.node for att in inventory.attachments_on(network)}


class LabCluster:
    def __init__(self, state_dir: Path | str, prefix: str = DEFAULT_PREFIX, topology: LabTopology | None = None,
                 nodes: int = DEFAULT_NODES, placement: Mapping[str, str] | None = None,
                 ovs_cache_dir: Path | str = DEFAULT_CACHE_DIR) -> None:
        if not _PREFIX_RE.match(prefix):
            raise ValueError(f"bad cluster prefix {prefix!r}: lowercase letters/digits ending in '-', at most 9 chars")
        if not 1 <= nodes <= MAX_NODES:
            raise ValueError(f"--nodes must be between 1 and {MAX_NODES}")
        self.state_dir = Path(state_dir).absolute()
        self.prefix = prefix
        self.topology = topology or seed_topology()
        self.topology.validate()
        self.node_names = node_names(nodes)
        # Workloads `placement` leaves out (or a record that no longer fits the manifests) are dealt round robin.
        dealt = place(self.topology, self.node_names, {})
        given = placement or {}
        self.placement = {a.name: given[a.name] if given.get(a.name) in self.node_names else dealt[a.name]
                          for a in self.topology.attachments}
        self.nodes: dict[str, Lab] = {}
        for i, node in enumerate(self.node_names):
            # A layer2 zone also holds every other node's workload, as a `remote` port bound to that node.
            remotes = tuple(RemoteAttachment(a, self.placement[a.name]) for a in self.topology.attachments
                            if self.placement[a.name] != node) if self.topology.network.is_layer2 else ()
            local = dataclasses.replace(
                self.topology, hosts=(), remotes=remotes,
                pods=tuple(p for p in self.topology.pods if self.placement[p.name] == node),
                vms=tuple(v for v in self.topology.vms if self.placement[v.name] == node))
            self.nodes[node] = Lab(self.state_dir / NODES_DIR / node, self._node_prefix(i), local, ovs_cache_dir,
                                   node_name=node)
        self.segment = PhysicalSegment(self.state_dir / "segment", prefix, self.topology)

    # ----------------------------------------------------------------- names and accessors

    def _node_prefix(self, index: int) -> str:
        return f"{self.prefix[:-1]}w{index}-"

    def _stray_nodes(self) -> list[Lab]:
        """Node labs left on disk beyond the nodes this object knows (a record lost, another --nodes)."""
        known = {lab.state_dir for lab in self.nodes.values()}
        found = []
        for d in sorted((self.state_dir / NODES_DIR).glob("worker-*")):
            index = d.name.rpartition("-")[2]
            if d.absolute() not in known and index.isdigit() and int(index) < 10 * MAX_NODES:
                found.append(Lab(d, self._node_prefix(int(index)), dataclasses.replace(self.topology, pods=(),
                                                                                       vms=(), hosts=())))
        return found

    @classmethod
    def recorded(cls, state_dir: Path | str, ovs_cache_dir: Path | str = DEFAULT_CACHE_DIR,
                 topology: LabTopology | None = None) -> "LabCluster | None":
        """The cluster a state directory records (its prefix, nodes and placement), or None."""
        rec = state.load(Path(state_dir).absolute(), CLUSTER_FILE)
        if not rec.get("nodes"):
            return None
        return cls(state_dir, rec["prefix"], topology, len(rec["nodes"]), rec.get("placement"), ovs_cache_dir)

    @staticmethod
    def has_nodes_on_disk(state_dir: Path | str) -> bool:
        return (Path(state_dir) / NODES_DIR).is_dir()

    def node_of(self, name: str) -> str:
        """The node a pod or VM runs on."""
        try:
            return self.placement[name]
        except KeyError:
            raise KeyError(f"no pod or VM {name!r} in the lab") from None

    def lab_of(self, name: str) -> Lab:
        return self.nodes[self.node_of(name)]

    def netns(self, name: str) -> str:
        """The namespace where host `name` owns its address (a VM's guest, a pod's, a physical host's)."""
        if name in self.placement:
            return self.lab_of(name).netns(name)
        return self.segment.host_netns(name)

    def run_in(self, name: str, *argv: str, timeout: float = 10.0,
               check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command inside host `name`'s namespace (see `netns`)."""
        return procs.run(list(argv), netns=self.netns(name), timeout=timeout, check=check)

    def postgres(self) -> PostgresServer:
        return self.segment.postgres()

    def namespaces(self) -> list[str]:
        return [*self.segment.namespaces(), *(n for lab in self.nodes.values() for n in lab.namespaces())]

    def _record(self) -> dict[str, Any]:
        return state.load(self.state_dir, CLUSTER_FILE)

    def _save(self, record: dict[str, Any]) -> None:
        state.save(self.state_dir, record, CLUSTER_FILE)

    # ----------------------------------------------------------------- bring-up

    def up(self) -> dict[str, Any]:
        """Build the cluster; a healthy one is left alone, a broken or partial one torn down and rebuilt."""
        if os.geteuid() != 0:
            raise LabUnavailable("the lab needs root (network namespaces, veths, OVS): run as root")
        if (self.state_dir / state.STATE_FILE).exists():
            raise LabError(f"{self.state_dir} holds a one-node lab: `segcheck lab down` it first")
        current = self.status()
        if current["healthy"]:
            return current
        if self._has_remnants():
            log.info("cluster %s: tearing down a partial or broken cluster first", self.prefix)
            self.down()
        t0 = time.monotonic()
        phases: dict[str, float] = {}
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o755)  # PostgreSQL runs as user postgres and must reach its directory
        record: dict[str, Any] = {"prefix": self.prefix, "state_dir": str(self.state_dir), "phase": "starting",
                                  "nodes": self.node_names, "placement": self.placement, "namespaces": [],
                                  "pidfiles": {}}
        self._save(record)

        def made(namespace: str) -> None:
            record["namespaces"].append(namespace)
            self._save(record)

        def started(name: str, pidfile: Path) -> None:
            record["pidfiles"][name] = str(pidfile)
            self._save(record)

        try:
            for lab in self.nodes.values():
                lab.ovs  # noqa: B018 - locate (or provision) OVS once, before the nodes start side by side
            self.segment.make_dirs()
            (self.state_dir / NODES_DIR).mkdir(exist_ok=True)
            for d in (self.state_dir / NODES_DIR, *self.segment.owned_dirs()):
                os.chmod(d, 0o755)
            t = time.monotonic()
            self.segment.wire(made)
            phases["segment"] = procs.monotonic_ms(t)
            with ThreadPoolExecutor(max_workers=len(self.nodes) + 1, thread_name_prefix="cluster-up") as pool:
                initdb = [pool.submit(self.segment.postgres(h.name).init) for h in self.segment.hosts if h.postgres]
                t = time.monotonic()
                node_ups = {node: pool.submit(lab.up) for node, lab in self.nodes.items()}
                per_node = {}
                for node, future in node_ups.items():
                    future.result()
                    per_node[node] = (self.nodes[node].measurements().get("bringup") or {}).get("seconds")
                phases["nodes"] = procs.monotonic_ms(t)
                t = time.monotonic()
                for node, lab in self.nodes.items():
                    port = self.segment.uplink(node, lab.ovs_netns)
                    lab.run_vsctl("--may-exist", "add-port", lab.topology.network.bridge, port)
                phases["uplinks"] = procs.monotonic_ms(t)
                t = time.monotonic()
                interconnect.connect_zones(list(self.nodes.values()))
                if interconnect.bind_remote_ports(list(self.nodes.values())):
                    for lab in self.nodes.values():
                        lab.sync_hv(timeout=READY_TIMEOUT)
                phases["interconnect"] = procs.monotonic_ms(t)
                t = time.monotonic()
                for init in initdb:
                    init.result(timeout=INITDB_TIMEOUT)
                phases["initdb_wait"] = procs.monotonic_ms(t)
            t = time.monotonic()
            self.segment.start_services(started)
            for h in self.segment.hosts:
                if h.postgres:
                    require(self.segment.postgres(h.name).accepting, f"PostgreSQL on {h.name} accepting",
                            timeout=READY_TIMEOUT)
            phases["services"] = procs.monotonic_ms(t)
        except BaseException:
            state.undo_failed_bring_up(f"cluster {self.prefix}", self.state_dir, record, self.down, CLUSTER_FILE)
            raise
        record["phase"] = "up"
        record["bringup"] = {"seconds": round(time.monotonic() - t0, 3), "phases_ms": phases,
                             "node_seconds": per_node}
        self._save(record)
        log.info("cluster %s up in %.2fs", self.prefix, record["bringup"]["seconds"])
        return self.status()

    # ----------------------------------------------------------------- policies

    def apply(self, inventory: Inventory, network: Ref,
              profile: OvnkProfile = DEFAULT_PROFILE) -> dict[str, ApplyReport]:
        """Program every zone as OVN-K's interconnect controllers do: each zone's port groups hold only its
        local workloads' ports (address sets stay cluster-wide). Per node, what it wrote."""
        net = inventory.networks.get(network)
        if net is None:
            raise LabError(f"no NetworkAttachmentDefinition {network} in the manifests")
        placed = {str(a.ref) for a in self.topology.attachments}
        reports = {}
        for node, lab in self.nodes.items():
            local = {str(a.ref): lab.lsp_name(a.name) for a in lab.topology.attachments}
            desired = desired_state(inventory, network, local, profile)
            report = LabController(lab).apply_desired(desired, net.cni_name, profile.name)
            # A selected workload that runs on another node is remote here, not missing from the lab.
            reports[node] = dataclasses.replace(report, unplaced=tuple(u for u in report.unplaced if u not in placed))
        return reports

    # ----------------------------------------------------------------- status

    def is_healthy(self) -> bool:
        return self._record().get("phase") == "up" and bool(self.status()["healthy"])

    def _has_remnants(self) -> bool:
        made = (self.state_dir / CLUSTER_FILE, self.state_dir / NODES_DIR, self.segment.root)
        return any(p.exists() for p in made) or any(n.startswith(self.prefix) for n in netns.list_netns())

    def measurements(self) -> dict[str, Any]:
        """Bring-up time, and memory (RSS, and PSS with children) per node, for the segment and in total."""
        rec = self._record()
        per: dict[str, Any] = {}
        for node, lab in self.nodes.items():
            m = lab.measurements()
            per[node] = {"rss_total_bytes": m["rss_total_bytes"], "pss_total_bytes": m["pss_total_bytes"],
                         "rss_bytes": m["rss_bytes"]}
        seg = self.segment.processes(str(self.state_dir))
        per["segment"] = {"rss_total_bytes": sum(p["rss_bytes"] or 0 for p in seg.values()),
                          "pss_total_bytes": sum(p["tree_pss_bytes"] or 0 for p in seg.values()),
                          "rss_bytes": {n: p["rss_bytes"] for n, p in seg.items() if p["rss_bytes"]}}
        return {"bringup": rec.get("bringup"), "per_node": per,
                "rss_total_bytes": sum(v["rss_total_bytes"] for v in per.values()),
                "pss_total_bytes": sum(v["pss_total_bytes"] for v in per.values())}

    def status(self) -> dict[str, Any]:
        rec = self._record()
        present = set(netns.list_netns())
        nodes = {node: lab.status() for node, lab in self.nodes.items()}
        segment = self.segment.processes(str(self.state_dir))
        healthy = (rec.get("phase") == "up" and all(s["healthy"] for s in nodes.values())
                   and all(p["alive"] for p in segment.values())
                   and all(n in present for n in self.segment.namespaces()))
        rss = sum(s["measurements"]["rss_total_bytes"] for s in nodes.values()) + sum(
            p["rss_bytes"] or 0 for p in segment.values())
        return {
            "prefix": self.prefix, "state_dir": str(self.state_dir), "phase": rec.get("phase", "down"),
            "healthy": healthy, "placement": self.placement, "nodes": nodes,
            "segment": {"namespaces": {n: n in present for n in self.segment.namespaces()}, "daemons": segment},
            "measurements": {"bringup": rec.get("bringup"), "rss_total_bytes": rss},
        }

    # ----------------------------------------------------------------- teardown

    def down(self) -> dict[str, Any]:
        """Remove everything the cluster made: every node lab, the segment's processes (by PID) and namespaces.
        Works after a crash, a partial up, or with no state file at all."""
        if os.geteuid() != 0:
            raise LabUnavailable("tearing the lab down needs root: run as root")
        t0 = time.monotonic()
        rec = self._record()
        marker = str(self.state_dir)
        pidfiles = {**self.segment.pidfiles(), **{n: Path(p) for n, p in rec.get("pidfiles", {}).items()}}
        stopped = self.segment.stop(marker, pidfiles)
        nodes: dict[str, Any] = {}
        for node, lab in [*self.nodes.items(), *((lab.state_dir.name, lab) for lab in self._stray_nodes())]:
            result = lab.down()
            nodes[node] = result
            stopped += [f"{node}/{s}" for s in result["stopped"]]
        present = netns.list_netns()
        doomed = [n for n in dict.fromkeys([*rec.get("namespaces", []), *self.segment.namespaces(),
                                            *(n for n in present if n.startswith(self.prefix))]) if n in present]
        killed: list[int] = []
        for name in doomed:
            for pid in netns.pids(name):  # whatever still runs in a namespace we made is ours
                if procs.stop_pid(pid, sig=signal.SIGKILL, grace=2.0):
                    killed.append(pid)
            netns.delete(name)
        shutil.rmtree(self.segment.root, ignore_errors=True)
        shutil.rmtree(self.state_dir / NODES_DIR, ignore_errors=True)
        state.forget(self.state_dir, CLUSTER_FILE)
        seconds = round(time.monotonic() - t0, 3)
        log.info("cluster %s down in %.2fs", self.prefix, seconds)
        return {"seconds": seconds, "stopped": stopped, "killed_in_namespaces": killed,
                "namespaces_deleted": doomed + [n for r in nodes.values() for n in r["namespaces_deleted"]]}


__all__ = ["CLUSTER_FILE", "DEFAULT_NODES", "LabCluster", "MAX_NODES", "declared_nodes", "node_names", "place"]

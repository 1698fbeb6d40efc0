"""The lab as a two-node interconnect cluster: one OVN zone per node holding only its local ports and port-group
members, the nodes' br-ex joined by a physical segment that localnet traffic really crosses, each node checked
on its own (its NB, its OVS, its locator), and a clean teardown, also after a failed bring-up. (A layer2 network
across the nodes: test_lab_cluster_layer2.py.)"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from segcheck.agent.adapters.manifest_files import load_inventory
from segcheck.agent.adapters.probers.raw import RawSocketProber
from segcheck.agent.core.inventory import Inventory
from segcheck.agent.core.model import Verdict
from segcheck.agent.core.probe import Evidence, ProbeJob
from segcheck.agent.lab import devices, netns, procs
from segcheck.agent.lab.cluster import LabCluster, declared_nodes, node_names, place
from segcheck.agent.lab.cluster_sources import LabNodeSources
from segcheck.agent.lab.errors import LabError
from segcheck.agent.lab.seed import packaged_seed
from segcheck.agent.lab.segment import BRIDGE, PhysicalSegment
from segcheck.agent.lab.topology import topology_from_inventory
from segcheck.agent.core.enforcement import DEFAULT_PROFILE, PROFILES, OvnkProfile
from segcheck.agent.runtime.agent_setup import make_agent
from segcheck.agent.runtime.checker import Checker
from segcheck.agent.runtime.declared import FilesSource
from segcheck.agent.runtime.checks import read_programmed
from tests.builders import allow_client_to_server as allow_policy

from .planes import NET, seed_inventory

pytestmark = pytest.mark.lab

NODES = 2
ALLOW_CLIENT_TO_SERVER = allow_policy()


def new_cluster(inventory: Inventory, nodes: int = NODES) -> LabCluster:
    state_dir = Path(tempfile.mkdtemp(prefix="segcheck-cluster-", dir="/tmp"))
    os.chmod(state_dir, 0o755)  # PostgreSQL runs as user postgres
    topology = topology_from_inventory(inventory, NET)
    return LabCluster(state_dir, f"scc{secrets.token_hex(2)}-", topology, nodes,
                      place(topology, node_names(nodes), declared_nodes(inventory, NET)))


@contextmanager
def running_cluster(inventory: Inventory) -> Iterator[LabCluster]:
    """A cluster up with `inventory` programmed, taken down and its state dir removed afterwards (also on failure)."""
    instance = new_cluster(inventory)
    try:
        instance.up()
        instance.apply(inventory, NET)
        yield instance
    finally:
        instance.down()
        shutil.rmtree(instance.state_dir, ignore_errors=True)


def leftovers(cluster: LabCluster) -> tuple[list[str], list[int]]:
    """Namespaces of the cluster's prefixes still present, and processes whose command line names its state dir."""
    prefixes = (cluster.prefix, *(lab.prefix for lab in cluster.nodes.values()))
    namespaces = [n for n in netns.list_netns() if n.startswith(prefixes)]
    marker = str(cluster.state_dir)
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and procs.is_ours(int(p.name), marker)]
    return namespaces, pids


@pytest.fixture(scope="module")
def cluster() -> Iterator[LabCluster]:
    with running_cluster(seed_inventory()) as instance:
        yield instance


@pytest.fixture(params=["4.14", "current"])
def profile(request, cluster: LabCluster) -> Iterator[OvnkProfile]:
    """The seed programmed in the NB shapes of each OVN-K version (4.14's restored afterwards)."""
    chosen = PROFILES[request.param]
    cluster.apply(seed_inventory(), NET, chosen)
    try:
        yield chosen
    finally:
        cluster.apply(seed_inventory(), NET)


@pytest.fixture
def allow_client_to_server(cluster: LabCluster, tmp_path: Path) -> Iterator[Inventory]:
    (tmp_path / "60-allow.yaml").write_text(ALLOW_CLIENT_TO_SERVER)
    inventory, errors = load_inventory([packaged_seed(), tmp_path])
    assert not errors, errors
    cluster.apply(inventory, NET)
    try:
        yield inventory
    finally:
        cluster.apply(seed_inventory(), NET)


def lsps(cluster: LabCluster, node: str) -> set[str]:
    return set(cluster.nodes[node].run_nbctl("--bare", "--columns=name", "list", "Logical_Switch_Port").split())


def port_group_members(cluster: LabCluster, node: str) -> set[str]:
    lab = cluster.nodes[node]
    names = {u: n for u, n in (line.split() for line in lab.run_nbctl(
        "--bare", "--columns=_uuid,name", "--format=csv", "--no-headings", "list", "Logical_Switch_Port"
    ).replace(",", " ").splitlines() if line.strip())}
    doc = json.loads(lab.run_nbctl("--format=json", "--columns=ports", "list", "Port_Group"))
    members = set()
    for (ports,) in doc["data"]:
        atoms = ports[1] if ports[0] == "set" else [ports]
        members |= {names[uuid] for _, uuid in atoms}
    return members


def test_the_seed_puts_podclient_on_worker_0_and_vm_server_on_worker_1(cluster):
    assert cluster.placement == {"podclient": "worker-0", "vm-server": "worker-1"}


def test_each_zone_holds_only_its_local_ports_and_port_group_members(cluster, profile):
    w0, w1 = cluster.nodes["worker-0"], cluster.nodes["worker-1"]
    podclient, launcher = w0.lsp_name("podclient"), w1.lsp_name("vm-server")
    assert lsps(cluster, "worker-0") == {w0.localnet_port_name, podclient}
    assert lsps(cluster, "worker-1") == {w1.localnet_port_name, launcher}
    assert port_group_members(cluster, "worker-0") == {podclient}
    assert port_group_members(cluster, "worker-1") == {launcher}


def test_nodes_name_in_the_manifests_place_workloads(tmp_path):
    (tmp_path / "pod.yaml").write_text((packaged_seed() / "20-podclient.yaml").read_text().replace(
        "spec:\n", "spec:\n  nodeName: worker-1\n", 1))
    for name in ("10-nad.yaml", "30-vm-server.yaml", "40-endpoints.yaml"):
        shutil.copy(packaged_seed() / name, tmp_path / name)
    inventory, errors = load_inventory([tmp_path])
    assert not errors, errors
    topology = topology_from_inventory(inventory, NET)
    assert place(topology, node_names(2), declared_nodes(inventory, NET)) == {"podclient": "worker-1",
                                                                            "vm-server": "worker-0"}
    with pytest.raises(ValueError, match="worker-1"):
        place(topology, node_names(1), declared_nodes(inventory, NET))


def fdb(cluster: LabCluster) -> dict[str, str]:
    """MAC -> the segment port it was learnt on."""
    out = procs.run(["bridge", "-j", "fdb", "show", "br", BRIDGE], netns=cluster.segment.netns).stdout
    return {e["mac"]: e["ifname"] for e in json.loads(out or "[]") if not e.get("flags") or "self" not in e["flags"]}


def test_localnet_traffic_between_nodes_crosses_the_physical_segment(cluster, allow_client_to_server, tcp):
    assert tcp(cluster, "podclient", "192.168.200.20", 8080).startswith("segcheck-lab vm-server 8080")
    tcp(cluster, "podclient", "192.168.200.5", 5432, read=False)
    # The agent's own probes, sent from where worker-0's locator finds podclient.
    sources = LabNodeSources(cluster, "worker-0")
    try:
        client = next(a for a in allow_client_to_server.attachments if a.ref.name == "podclient")
        point = sources.locator().send_point(client)
        assert point is not None
        jobs = [ProbeJob(point, ipaddress.ip_address(ip), port) for ip, port in (("192.168.200.20", 8080),
                                                                               ("192.168.200.5", 5432))]
        results = RawSocketProber().run(jobs, timeout=1.0)
    finally:
        sources.close()
    assert [(r.verdict, r.evidence) for r in results] == [(Verdict.ALLOWED, Evidence.SYN_ACK)] * 2
    learnt = fdb(cluster)
    w0, w1 = cluster.nodes["worker-0"], cluster.nodes["worker-1"]
    assert learnt.get(w0.send_point("podclient").mac) == devices.ovs_side_port("nd", "worker-0")
    assert learnt.get(w1.send_point("vm-server").mac) == devices.ovs_side_port("nd", "worker-1")


def test_the_seed_denies_the_cross_node_pair_for_real(cluster, tcp):
    with pytest.raises(AssertionError):
        tcp(cluster, "podclient", "192.168.200.20", 8080, attempts=1)


def test_each_node_checks_its_local_sources_and_the_planes_agree(cluster, profile):
    inventory = seed_inventory()
    probed_from: dict[str, str] = {}
    for node in cluster.nodes:
        sources = LabNodeSources(cluster, node)
        assert sources.unavailable() is None and not sources.sees_every_workload
        try:
            programmed = read_programmed(sources)
            assert not programmed.errors, programmed.errors
            checker = Checker(inventory, NET, programmed.nb, programmed.ovs, RawSocketProber(), sources.locator(),
                              profile)
            cells, _ = checker.observe(checker.plan())
        finally:
            sources.close()
        local = {e.key for e in checker.expected.endpoints if sources.locator().send_point(e) is not None}
        assert local == {f"default/{name}" for name, where in cluster.placement.items() if where == node}
        for cell in cells:
            if cell.source in local and cell.observed is not None:
                probed_from.setdefault(cell.source, node)
                assert probed_from[cell.source] == node
                assert cell.observed.verdict is cell.expected.verdict, (node, cell)
            else:
                assert cell.observed is None, f"{node} probed {cell.source}, which is not local"
            if cell.source in local and cell.destination == "ext:db":
                assert cell.programmed is not None and cell.programmed.verdict is cell.expected.verdict
    assert probed_from == {"default/podclient": "worker-0", "default/vm-server": "worker-1"}


def test_one_agent_per_node_probes_only_its_own_workloads(cluster):
    agents = {node: make_agent(LabNodeSources(cluster, node), FilesSource([packaged_seed()], poll_seconds=0.5), node,
                               DEFAULT_PROFILE, interval=2.0, jitter=0.1) for node in cluster.nodes}
    for agent in agents.values():
        agent.start()
    try:
        for node, agent in agents.items():
            state = agent.wait_for(lambda s: s.rounds >= 1, timeout=30)
            assert state is not None, f"the agent of {node} made no probe round within 30 s"
            local = {f"default/{name}" for name, where in cluster.placement.items() if where == node}
            (network,) = state.networks
            assert network.cells and all(c.source in local or c.destination in local for c in network.cells)
            observed = [c for c in network.cells if c.observed is not None]
            assert observed and {c.source for c in observed} == local
            assert all(c.observed.verdict is c.expected.verdict for c in observed), node
    finally:
        for agent in agents.values():
            agent.stop()


def test_the_cluster_comes_up_and_goes_down_cleanly():
    """Three nodes for two workloads: worker-2 is a zone with no local port (and so no localnet patch ports)."""
    made = new_cluster(seed_inventory(), nodes=3)
    try:
        made.up()
        assert made.is_healthy()
        assert made.up()["healthy"], "a second up leaves a healthy cluster alone"
        assert lsps(made, "worker-2") == {made.nodes["worker-2"].localnet_port_name}
        m = made.measurements()
        assert set(m["per_node"]) == {"worker-0", "worker-1", "worker-2", "segment"}
        assert all(m["per_node"][n]["rss_total_bytes"] > 0 for n in m["per_node"])
    finally:
        made.down()
    assert leftovers(made) == ([], [])
    assert not made.state_dir.exists()


def test_a_failed_bring_up_leaves_nothing(monkeypatch):
    made = new_cluster(seed_inventory())

    def broken(self, record):
        raise LabError("injected failure after the nodes came up")

    monkeypatch.setattr(PhysicalSegment, "start_services", broken)
    try:
        with pytest.raises(LabError, match="injected"):
            made.up()
    finally:
        namespaces, pids = leftovers(made)
        made.down()
        shutil.rmtree(made.state_dir, ignore_errors=True)
    assert (namespaces, pids) == ([], [])


def test_the_recorded_cluster_is_found_again(cluster):
    again = LabCluster.recorded(cluster.state_dir)
    assert again is not None and again.placement == cluster.placement and again.is_healthy()
    sources = LabNodeSources.build_node(cluster.state_dir, "worker-1", [str(packaged_seed())])
    try:
        assert sources.unavailable() is None
        vm = next(a for a in seed_inventory().attachments if a.ref.name == "vm-server")
        client = next(a for a in seed_inventory().attachments if a.ref.name == "podclient")
        assert sources.locator().send_point(vm) is not None
        assert "no br-int interface" in (sources.locator().why_not(client) or "")
    finally:
        sources.close()


def segcheck_lab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "segcheck.cli", "lab", *args], capture_output=True, text=True,
                          timeout=240, check=False)


def test_lab_up_nodes_builds_the_cluster_and_lab_down_removes_it():
    state_dir = Path(tempfile.mkdtemp(prefix="segcheck-cluster-", dir="/tmp"))
    os.chmod(state_dir, 0o755)
    where = ["--state-dir", str(state_dir), "--prefix", f"scc{secrets.token_hex(2)}-"]
    try:
        up = segcheck_lab("up", "--nodes", *where, "-o", "json")  # --nodes alone: two nodes
        assert up.returncode == 0, up.stderr
        status = json.loads(up.stdout)
        assert status["healthy"] and status["placement"] == {"podclient": "worker-0", "vm-server": "worker-1"}
        assert set(status["policies"]) == {"worker-0", "worker-1"}
        assert all(not report["unplaced"] for report in status["policies"].values())
        one_node = segcheck_lab("up", *where)
        assert one_node.returncode == 4 and "lab cluster" in one_node.stderr
        shown = segcheck_lab("status", *where, "-o", "json")
        assert shown.returncode == 0 and json.loads(shown.stdout)["healthy"]
        table = segcheck_lab("status", *where).stdout
        assert "== worker-0 (workloads: podclient)" in table and "== worker-1 (workloads: vm-server)" in table
        applied = segcheck_lab("apply", *where, "-o", "json")
        assert applied.returncode == 0, applied.stderr
        assert {node: r["unchanged"] for node, r in json.loads(applied.stdout).items()} == {"worker-0": True,
                                                                                           "worker-1": True}
    finally:
        down = segcheck_lab("down", *where)
        shutil.rmtree(state_dir, ignore_errors=True)
    assert down.returncode == 0, down.stderr
    prefix = where[-1]
    assert not [n for n in netns.list_netns() if n.startswith((prefix, prefix[:-1] + "w"))]
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit() and procs.is_ours(int(p.name), str(state_dir))]


def test_lab_down_removes_a_cluster_whose_record_is_lost():
    made = new_cluster(seed_inventory())
    try:
        made.up()
        (made.state_dir / "cluster.json").unlink()
        down = segcheck_lab("down", "--state-dir", str(made.state_dir), "--prefix", made.prefix)
        assert down.returncode == 0, down.stderr
        assert leftovers(made) == ([], [])
    finally:
        made.down()
        shutil.rmtree(made.state_dir, ignore_errors=True)


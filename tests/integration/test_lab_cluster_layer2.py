"""A layer2 network across the 2-node lab, built from manifests (examples/seed-layer2, with and without the NAD's
`subnets`): each zone holds its own `<net>_ovn_layer2_switch` with the network's tunnel key, its local pod's port
and the other node's pod as a `remote` port requesting that node's chassis, port groups with local members only,
the ACLs in each OVN-K version's shapes. The cross-node cells agree on all planes, judged per node (egress at the
source's zone, ingress at the destination's) and observed by real probes through the geneve tunnel; a remote half
is never a leak; an ACL removed on worker-1 is controller drift on worker-1 and in the composed view only."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from segcheck.agent.adapters.agent_client import AgentClient
from segcheck.agent.adapters.auth import TokenFileAuth
from segcheck.agent.adapters.manifest_files import load_inventory
from segcheck.agent.adapters.probers.raw import RawSocketProber
from segcheck.agent.core.drift import DriftClass
from segcheck.agent.core.enforcement import DEFAULT_PROFILE, PROFILES, OvnkProfile
from segcheck.agent.core.inventory import Inventory
from segcheck.agent.core.model import Protocol, Ref, Verdict
from segcheck.agent.core.ovnk import ids, names, objects, ports
from segcheck.agent.lab import procs
from segcheck.agent.lab.cluster import LabCluster, declared_nodes, node_names, place
from segcheck.agent.lab.cluster_sources import LabNodeSources
from segcheck.agent.lab.interconnect import chassis_name
from segcheck.agent.lab.segment import BRIDGE
from segcheck.agent.lab.topology import pod_uid, topology_from_inventory
from segcheck.agent.runtime.agent_setup import make_agent
from segcheck.agent.runtime.checker import Checker
from segcheck.agent.runtime.checks import read_programmed
from segcheck.agent.runtime.cluster_view import cluster_view
from segcheck.agent.runtime.declared import FilesSource
from segcheck.agent.runtime.service import AgentService
from segcheck.agent.runtime.status import Status

pytestmark = pytest.mark.lab

SEED_L2 = Path(__file__).resolve().parents[2] / "examples" / "seed-layer2"
NET = Ref("default", "tenantgreen")
SUBNET = "10.100.0.0/24"
POD, VM = "default/podclient", "default/vm-server"
TCP = Protocol.TCP


def manifests(ipam: bool, where: Path) -> Path:
    """The layer2 seed; when `ipam`, its NAD with `subnets` and vm-server's ingress allowed from a podSelector peer
    (OVN-K resolves selectors only with IPAM: an address set every zone holds, with podclient's IP on worker-1 too)."""
    shutil.copytree(SEED_L2, where)
    if ipam:
        nad = where / "10-nad.yaml"
        text = nad.read_text()
        nad.write_text(text.replace('"topology": "layer2",', f'"topology": "layer2",\n      "subnets": "{SUBNET}",'))
        assert SUBNET in nad.read_text()
        policies = where / "50-policies.yaml"
        text = policies.read_text()
        policies.write_text(text.replace("- from: [{ipBlock: {cidr: 10.100.0.10/32}}]",
                                         "- from: [{podSelector: {matchLabels: {app: podclient}}}]"))
        assert "podSelector: {matchLabels" in policies.read_text()
    return where


def load(path: Path) -> Inventory:
    inventory, errors = load_inventory([path])
    assert not errors, errors
    return inventory


@pytest.fixture(scope="module", params=[False, True], ids=["no-subnets", "subnets"])
def l2(request, tmp_path_factory) -> Iterator[tuple[LabCluster, Path]]:
    """The 2-node lab of the layer2 seed, its policies applied in 4.14's shapes; and its manifests."""
    path = manifests(request.param, tmp_path_factory.mktemp("seed-l2") / "manifests")
    inventory = load(path)
    assert inventory.networks[NET].has_ipam is request.param
    state_dir = Path(tempfile.mkdtemp(prefix="segcheck-cluster-", dir="/tmp"))
    os.chmod(state_dir, 0o755)
    topology = topology_from_inventory(inventory, NET)
    cluster = LabCluster(state_dir, f"scl{secrets.token_hex(2)}-", topology, 2,
                         place(topology, node_names(2), declared_nodes(inventory, NET)))
    try:
        cluster.up()
        cluster.apply(inventory, NET)
        yield cluster, path
    finally:
        cluster.down()
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(params=["4.14", "current"])
def profile(request, l2) -> Iterator[OvnkProfile]:
    """The policies programmed in the NB shapes of each OVN-K version (4.14's restored afterwards)."""
    cluster, path = l2
    chosen = PROFILES[request.param]
    cluster.apply(load(path), NET, chosen)
    try:
        yield chosen
    finally:
        cluster.apply(load(path), NET)


def rows(cluster: LabCluster, node: str, table: str, columns: str) -> list[dict]:
    doc = json.loads(cluster.nodes[node].run_nbctl("--format=json", f"--columns={columns}", "list", table))
    return [dict(zip(doc["headings"], row)) for row in doc["data"]]


def as_map(value) -> dict[str, str]:
    return dict(value[1]) if isinstance(value, list) and value and value[0] == "map" else {}


def members(cluster: LabCluster, node: str) -> dict[str, set[str]]:
    """Port group -> the names of its ports."""
    by_uuid = {r["_uuid"][1]: r["name"] for r in rows(cluster, node, "Logical_Switch_Port", "_uuid,name")}
    out = {}
    for r in rows(cluster, node, "Port_Group", "name,ports"):
        atoms = r["ports"][1] if r["ports"][0] == "set" else [r["ports"]]
        out[r["name"]] = {by_uuid[u] for _, u in atoms}
    return out


def attachment(cluster: LabCluster, name: str):
    return next(a for a in cluster.topology.attachments if a.name == name)


def test_podclient_is_on_worker_0_and_vm_server_on_worker_1(l2):
    cluster, _ = l2
    assert cluster.placement == {"podclient": "worker-0", "vm-server": "worker-1"}


def test_each_zone_holds_the_switch_its_local_port_and_the_remote_one(l2, profile):
    cluster, path = l2
    ipam = load(path).networks[NET].has_ipam
    switch = names.network_switch("tenantgreen", names.LAYER2)
    lsp = {name: cluster.lab_of(name).lsp_name(name) for name in cluster.placement}
    keys: dict[str, dict[str, str]] = {}
    for node, lab in cluster.nodes.items():
        (sw,) = rows(cluster, node, "Logical_Switch", "name,other_config")
        config = as_map(sw["other_config"])
        assert sw["name"] == switch
        assert config[ports.REQUESTED_TNL_KEY] == str(ports.switch_tunnel_key(1)) and config["interconn-ts"] == switch
        assert (config.get("subnet") == SUBNET) is ipam
        found = {r["name"]: r for r in rows(cluster, node, "Logical_Switch_Port", "name,type,options")}
        assert set(found) == set(lsp.values())  # no localnet port on layer2
        for name, port in lsp.items():
            options, where = as_map(found[port]["options"]), cluster.node_of(name)
            assert found[port]["type"] == ("" if where == node else names.REMOTE_PORT_TYPE), (node, port)
            assert options[ports.REQUESTED_CHASSIS] == where
            assert options[ports.IFACE_ID_VER] == pod_uid(attachment(cluster, name).pod_ref)
            keys.setdefault(port, {})[node] = options[ports.REQUESTED_TNL_KEY]
        # Only local members in the port groups; the policy port groups in the chosen version's ids.
        local = {lsp[n] for n, where in cluster.placement.items() if where == node}
        groups = members(cluster, node)
        assert set().union(*groups.values()) == local
        pg_ids = [as_map(r["external_ids"]) for r in rows(cluster, node, "Port_Group", "external_ids")]
        for policy in ("default-deny", "allow-client-to-server"):
            assert objects.policy_port_group(profile.nb_shapes, "tenantgreen", Ref("default", policy)).name in groups
        if profile.name == "4.14":
            assert all(ids.OWNER_CONTROLLER not in i for i in pg_ids)
        else:
            assert all(i[ids.OWNER_CONTROLLER] == names.network_controller("tenantgreen") for i in pg_ids)
        # With IPAM the selector peer is an address set, cluster-wide: podclient's IP in every zone.
        sets = [r["addresses"] for r in rows(cluster, node, "Address_Set", "addresses")]
        assert any("10.100.0.10" in json.dumps(addresses) for addresses in sets) is ipam, sets
        # The remote port is bound to its node's chassis in this zone's SB.
        for name, where in cluster.placement.items():
            if where != node:
                chassis = lab.run_sbctl("--bare", "--columns=chassis", "find", "Port_Binding",
                                        f"logical_port={lsp[name]}").strip()
                assert chassis and lab.run_sbctl("get", "Chassis", chassis, "name").strip().strip('"') == \
                    chassis_name(cluster.nodes[where])
    # One tunnel key per port, the same in both zones, distinct between ports.
    assert all(len(set(per.values())) == 1 for per in keys.values()), keys
    assert len({next(iter(per.values())) for per in keys.values()}) == len(keys)


def test_the_cni_side_writes_the_pods_uid_on_its_ovs_interface(l2):
    cluster, _ = l2
    for name in cluster.placement:
        lab = cluster.lab_of(name)
        port = lab.lsp_name(name)
        iface = lab.run_vsctl("--bare", "--columns=name", "find", "Interface", f"external_ids:iface-id={port}").strip()
        assert lab.run_vsctl("get", "Interface", iface, "external_ids:iface-id-ver").strip().strip('"') == \
            pod_uid(attachment(cluster, name).pod_ref)
        # ... which ovn-controller checked against the port's iface-id-ver before binding it.
        assert lab.run_nbctl("get", "Logical_Switch_Port", port, "up").strip() == "true"


def geneve_tx_packets(cluster: LabCluster, node: str) -> int:
    """Packets the node's geneve ports sent, read live from the datapath (`ovs-ofctl dump-ports`): the
    Interface table's `statistics` column is refreshed only every stats-update-interval (5 s), so it can lag a
    short probe run."""
    lab = cluster.nodes[node]
    names = lab.run_vsctl("--bare", "--columns=name", "find", "Interface", "type=geneve").split()
    assert names, f"{node} has no geneve port"
    total = 0
    for name in names:
        out = lab.run_ofctl("dump-ports", "br-int", name)
        found = re.search(r"tx pkts=(\d+)", out)
        assert found, out
        total += int(found.group(1))
    return total


def segment_macs(cluster: LabCluster) -> set[str]:
    out = procs.run(["bridge", "-j", "fdb", "show", "br", BRIDGE], netns=cluster.segment.netns).stdout
    return {e["mac"] for e in json.loads(out or "[]")}


def test_cross_node_cells_agree_on_all_planes_through_geneve(l2, profile):
    cluster, path = l2
    inventory = load(path)
    before = {node: geneve_tx_packets(cluster, node) for node in cluster.nodes}
    observed: dict[tuple[str, str, int], Verdict] = {}
    for node in cluster.nodes:
        sources = LabNodeSources(cluster, node)
        try:
            programmed = read_programmed(sources)
            assert not programmed.errors, programmed.errors
            checker = Checker(inventory, NET, programmed.nb, programmed.ovs, RawSocketProber(), sources.locator(),
                              profile, zone=node)
            cells, _ = checker.observe(checker.plan())
        finally:
            sources.close()
        assert not checker.programmed.findings, checker.programmed.findings
        for cell in cells:
            assert not cell.drift, (node, cell)
            if cell.observed is not None:
                assert cell.source in {f"default/{n}" for n, w in cluster.placement.items() if w == node}
                assert cell.observed.verdict is cell.expected.verdict, (node, cell)
                observed[(cell.source, cell.destination, cell.ports.first)] = cell.observed.verdict
            if cell.programmed is not None and cell.programmed.verdict is not Verdict.REMOTE:
                assert cell.programmed.verdict is cell.expected.verdict, (node, cell)
    assert observed[(POD, VM, 8080)] is Verdict.ALLOWED  # podclient's egress on worker-0, vm-server's ingress on 1
    assert Verdict.DENIED in {v for (s, d, p), v in observed.items() if (s, d) == (POD, VM) and p != 8080}
    assert {v for (s, d, _), v in observed.items() if s == VM} == {Verdict.DENIED}
    # Through the tunnel: both nodes sent geneve packets, and no workload MAC ever crossed the segment bare.
    after = {node: geneve_tx_packets(cluster, node) for node in cluster.nodes}
    assert all(after[n] > before[n] for n in cluster.nodes), (before, after)
    workload_macs = {a.mac for lab in cluster.nodes.values() for a in lab.topology.attachments}
    assert not workload_macs & segment_macs(cluster)


def test_the_cli_checks_one_node_of_the_layer2_cluster(l2):
    """`verify --lab --node` finds the cluster's layer2 network from the manifests and judges that node's halves."""
    cluster, path = l2
    done = subprocess.run([sys.executable, "-m", "segcheck.cli", "verify", "--lab", "--state-dir",
                           str(cluster.state_dir), "--prefix", cluster.prefix, "--node", "worker-1", "-f", str(path),
                           "-o", "json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    (network,) = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]  # JSON Lines
    assert network["network"] == str(NET)
    cells = {(c["from"], c["to"], c["sample_port"]): c for c in network["cells"] if c["protocol"] == "TCP"}
    allowed = cells[(POD, VM, 8080)]
    assert allowed["expected"] == "allowed" and allowed["programmed"]["verdict"] == "remote"  # egress: worker-0
    back = next(c for (s, d, _), c in cells.items() if (s, d) == (VM, POD))
    assert back["observed"]["verdict"] == "denied" and not back["drift"]  # vm-server probes from worker-1


# ----------------------------------------------------------------------------- one agent per node, composed

@pytest.fixture(scope="module")
def agents(l2, tmp_path_factory) -> Iterator[tuple[dict[str, AgentService], list[AgentClient]]]:
    cluster, path = l2
    token = secrets.token_hex(16)
    token_file = tmp_path_factory.mktemp("agents") / "token"
    token_file.write_text(token)
    services = {node: AgentService(make_agent(LabNodeSources(cluster, node), FilesSource([path], poll_seconds=0.5),
                                              node, DEFAULT_PROFILE, interval=2.0, jitter=0.1),
                                   "127.0.0.1", 0, TokenFileAuth(token_file)) for node in cluster.nodes}
    for svc in services.values():
        svc.start()
    try:
        for node, svc in services.items():
            assert svc.agent.wait_for(lambda s: s.rounds >= 1, timeout=30), f"no probe round on {node}"
        yield services, [AgentClient(f"http://127.0.0.1:{svc.port}", token) for svc in services.values()]
    finally:
        for svc in services.values():
            svc.stop()


def cell(cells, source, destination, port):
    return next(c for c in cells if (c.source, c.destination, c.protocol) == (source, destination, TCP)
                and c.ports.first <= port <= c.ports.last)


def own_cells(svc: AgentService):
    (network,) = svc.agent.state.networks
    return network.cells


def test_the_composed_view_agrees_and_no_remote_half_is_a_leak(agents):
    services, clients = agents
    for svc in services.values():
        assert not [c for c in own_cells(svc) if c.drift], svc.agent.node
    # On worker-1, podclient's egress half runs elsewhere: 8080's local half allows and is remote, not a leak.
    here = cell(own_cells(services["worker-1"]), POD, VM, 8080)
    assert here.programmed.verdict is Verdict.REMOTE and not here.drift
    view = cluster_view(clients)
    assert view.status is Status.MATCH, [c for c in view.checked if c.drift]
    allowed, denied = cell(view.checked, POD, VM, 8080), cell(view.checked, POD, VM, 9090)
    assert allowed.programmed.verdict is Verdict.ALLOWED and denied.programmed.verdict is Verdict.DENIED
    assert dict(allowed.judged_by) == {"egress": "worker-0", "ingress": "worker-1"}
    assert allowed.observed is not None and allowed.observed.verdict is Verdict.ALLOWED


def test_an_acl_removed_on_worker_1_is_drift_there_and_in_the_composed_view_only(l2, agents):
    cluster, path = l2
    services, clients = agents
    lab = cluster.nodes["worker-1"]
    # vm-server's ingress default deny, as worker-1's zone holds it.
    uuid = lab.run_nbctl("--bare", "--columns=_uuid", "find", "ACL", "action=drop", "direction=to-lport").split()[0]
    group = lab.run_nbctl("--bare", "--columns=name", "find", "Port_Group", f"acls{{>=}}{uuid}").strip()
    lab.run_nbctl("remove", "Port_Group", group, "acls", uuid)
    try:
        state = services["worker-1"].agent.wait_for(lambda s: any(
            DriftClass.CONTROLLER in c.drift for n in s.networks for c in n.cells), timeout=30)
        assert state is not None, "worker-1's agent never saw the removed ACL"
        (network,) = state.networks
        tampered = cell(network.cells, POD, VM, 9090)
        assert tampered.drift == (DriftClass.CONTROLLER,) and tampered.programmed.verdict is Verdict.REMOTE
        assert not any(c.drift for c in own_cells(services["worker-0"]))
        whole = cell(cluster_view(clients).checked, POD, VM, 9090)
        assert whole.programmed.verdict is Verdict.DENIED and whole.drift == (DriftClass.CONTROLLER,)
        # ... and the CLI says the same through the agents' HTTP API.
        urls = [a for c in clients for a in ("--agent", c.url)]
        done = subprocess.run([sys.executable, "-m", "segcheck.cli", "verify", "--cluster", *urls, "--token",
                               clients[0].token, "-o", "json"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 1, done.stderr
        drifting = [c for c in json.loads(done.stdout)["cells"] if c.get("drift")]
        assert drifting and all(c["drift"] == ["controller"] and (c["from"], c["to"]) == (POD, VM) for c in drifting)
    finally:
        cluster.apply(load(path), NET)
    assert services["worker-1"].agent.wait_for(
        lambda s: not any(c.drift for n in s.networks for c in n.cells), timeout=30) is not None
